//! The `schedule` command: load every job, start the metrics endpoint when asked, run the
//! daemon until SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use super::{Daemon, DaemonOptions, Metrics, PipelineRunner, ScheduledJob, SystemClock};
use crate::config::load_job;
use crate::ops::exit::{EXIT_RUN_FAILED, report_error};

/// Arguments of `funnelhouse schedule`.
#[derive(Debug, Clone, clap::Args)]
pub struct ScheduleArgs {
    /// Job files; each needs a `schedule`.
    #[arg(required = true)]
    pub jobs: Vec<PathBuf>,
    /// Serve `/healthz` and Prometheus `/metrics` on this address (e.g. 127.0.0.1:9464).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Runs of different jobs allowed at the same time.
    #[arg(long, default_value_t = 2)]
    pub max_concurrent: usize,
    /// Seconds runs in flight get to finish after SIGTERM/SIGINT before they are aborted.
    #[arg(long, default_value_t = 300)]
    pub grace_secs: u64,
}

/// Run the daemon until a termination signal; 0 after a clean stop, 2 for a bad job file.
pub async fn schedule_command(args: ScheduleArgs) -> ExitCode {
    let mut jobs = Vec::with_capacity(args.jobs.len());
    for path in &args.jobs {
        match load_job(path).and_then(ScheduledJob::new) {
            Ok(job) => jobs.push(job),
            Err(e) => return report_error(&e),
        }
    }
    let metrics = Metrics::default();
    let daemon = match Daemon::new(
        jobs,
        Arc::new(SystemClock),
        Arc::new(PipelineRunner),
        metrics.clone(),
        DaemonOptions {
            max_concurrent: args.max_concurrent,
            grace: Duration::from_secs(args.grace_secs),
            ..DaemonOptions::default()
        },
    ) {
        Ok(d) => d,
        Err(e) => return report_error(&e),
    };
    let server = match args.listen {
        Some(addr) => match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => {
                let bound = listener.local_addr().map_or(addr, |a| a);
                tracing::info!(addr = %bound, "serving /healthz and /metrics");
                Some(tokio::spawn(super::serve_metrics(listener, metrics)))
            }
            Err(e) => {
                eprintln!("error: cannot listen on {addr}: {e}");
                return ExitCode::from(EXIT_RUN_FAILED);
            }
        },
        None => None,
    };
    // Handlers are installed now, before the first fire: a signal during a run must reach
    // the daemon, not the default action (which would kill it mid-run).
    let (shutdown, force) = match termination() {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("error: cannot install the SIGTERM/SIGINT handlers: {e}");
            return ExitCode::from(EXIT_RUN_FAILED);
        }
    };
    let summary = daemon.run_until(shutdown, force).await;
    if let Some(server) = server {
        server.abort();
    }
    if summary.aborted > 0 {
        ExitCode::from(EXIT_RUN_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}

/// Two futures: the first resolves on the first SIGTERM (what Kubernetes and systemd send) or
/// SIGINT (Ctrl-C), the second on the next one. The handlers are installed when this is
/// called, not when a future is first polled.
type Signalled = futures::future::BoxFuture<'static, ()>;

fn termination() -> std::io::Result<(Signalled, Signalled)> {
    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<()>();
    let (second_tx, second_rx) = tokio::sync::oneshot::channel::<()>();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::spawn(async move {
            let mut senders = [Some(first_tx), Some(second_tx)].into_iter().flatten();
            loop {
                let name = tokio::select! {
                    _ = term.recv() => "SIGTERM",
                    _ = int.recv() => "SIGINT",
                };
                match senders.next() {
                    Some(tx) => {
                        tracing::info!(signal = name, "shutdown requested");
                        tx.send(()).ok();
                    }
                    None => tracing::info!(signal = name, "already stopping"),
                }
            }
        });
    }
    #[cfg(not(unix))]
    {
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::info!(signal = "SIGINT", "shutdown requested");
                first_tx.send(()).ok();
            }
            if tokio::signal::ctrl_c().await.is_ok() {
                second_tx.send(()).ok();
            }
        });
    }
    // A dropped sender (the task ended) must not read as a signal.
    let wait = |rx: tokio::sync::oneshot::Receiver<()>| -> Signalled {
        Box::pin(async move {
            if rx.await.is_err() {
                futures::future::pending::<()>().await;
            }
        })
    };
    Ok((wait(first_rx), wait(second_rx)))
}
