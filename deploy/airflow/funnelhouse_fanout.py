"""funnelhouse past one machine, on Airflow: the pull jobs as parallel tasks, then the
metrics step over all of them — each task a container run of the same image, the same
commands as deploy/kubernetes/fanout.yaml (see "Past one machine" in the README).

Copy this file into the DAGs folder of an Airflow with the cncf.kubernetes provider. The job
files come from the funnelhouse-jobs ConfigMap and the credentials from the
funnelhouse-secrets Secret (deploy/kubernetes/). With Docker instead of Kubernetes, swap
KubernetesPodOperator for DockerOperator(image=IMAGE, command=<the same arguments>).

The metrics task runs once every pull succeeded (trigger rule all_success), so it never
publishes figures that miss an account's night; a pull retried later commits on its own and
the next metrics run picks it up. funnelhouse exits 2 on a bad job file or command line:
fix the file, retrying will not help.
"""

from datetime import datetime, timedelta

from airflow import DAG
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from kubernetes.client import models as k8s

IMAGE = "funnelhouse:0.1.0"
JOBS_DIR = "/etc/funnelhouse/jobs"

SECRETS = [k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name="funnelhouse-secrets"))]
JOB_FILES = k8s.V1Volume(
    name="jobs", config_map=k8s.V1ConfigMapVolumeSource(name="funnelhouse-jobs")
)
JOB_FILES_MOUNT = k8s.V1VolumeMount(name="jobs", mount_path=JOBS_DIR, read_only=True)
POD = dict(
    image=IMAGE,
    env_from=SECRETS,
    env_vars={"AWS_REGION": "eu-central-1"},
    volumes=[JOB_FILES],
    volume_mounts=[JOB_FILES_MOUNT],
    security_context=k8s.V1PodSecurityContext(run_as_non_root=True, run_as_user=10001),
    automount_service_account_token=False,
    get_logs=True,
    on_finish_action="delete_pod",
)

with DAG(
    dag_id="funnelhouse_fanout",
    description="Pull every account in parallel, then compute the metric tables once",
    schedule="0 2 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    # One night at a time: the next night's pulls never overlap this night's metrics step.
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=5)},
    tags=["funnelhouse"],
) as dag:
    pull_hubspot = KubernetesPodOperator(
        task_id="pull_hubspot",
        name="funnelhouse-pull-hubspot",
        arguments=["--log-format", "json", "run", "/etc/funnelhouse/jobs/pull-hubspot.toml"],
        execution_timeout=timedelta(hours=3),
        **POD,
    )
    pull_google_ads = KubernetesPodOperator(
        task_id="pull_google_ads",
        name="funnelhouse-pull-google-ads",
        arguments=["--log-format", "json", "run", "/etc/funnelhouse/jobs/pull-google-ads.toml"],
        execution_timeout=timedelta(hours=3),
        **POD,
    )
    metrics = KubernetesPodOperator(
        task_id="metrics",
        name="funnelhouse-metrics-company",
        arguments=["--log-format", "json", "metrics", "/etc/funnelhouse/jobs/metrics-company.toml"],
        execution_timeout=timedelta(hours=1),
        **POD,
    )

    [pull_hubspot, pull_google_ads] >> metrics
