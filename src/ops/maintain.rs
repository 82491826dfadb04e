//! `funnelhouse maintain JOB`: compaction and vacuum of every Delta table of the job's
//! warehouse, under the job's lock (after rolling forward a publish a killed run left).

use std::path::Path;
use std::process::ExitCode;

use crate::config::{JobConfig, load_job, process_env};
use crate::error::Result;
use crate::lock::JobLock;
use crate::ops::exit::report_error;
use crate::sink::delta::{Maintained, delta_tables, maintain};

/// Maintain every Delta table of `job`'s warehouse; returns what was done per table.
pub async fn maintain_job(job: &JobConfig) -> Result<Vec<Maintained>> {
    let warehouse = crate::pipeline::open_warehouse(job, &process_env)?;
    let store = &warehouse.store;
    let now = chrono::Utc::now();
    let holder = format!("maintain-{}", crate::pipeline::new_run_id(now));
    let lease = std::time::Duration::from_secs(job.lock_lease_secs);
    let lock = JobLock::acquire(store, &job.name, &holder, lease).await?;
    let outcome = async {
        crate::sink::roll_forward(store, &job.name).await?;
        let tables = delta_tables(store).await?;
        maintain(store, &tables, &job.delta, now).await
    }
    .await;
    let released = lock.release().await;
    let done = outcome?;
    released?;
    Ok(done)
}

/// The command: one line per table; exit 0 when every table was maintained.
pub async fn maintain_command(path: &Path) -> ExitCode {
    let job = match load_job(path) {
        Ok(job) => job,
        Err(e) => return report_error(&e),
    };
    match maintain_job(&job).await {
        Ok(done) if done.is_empty() => {
            println!("no Delta tables in the warehouse of `{}`", job.name);
            ExitCode::SUCCESS
        }
        Ok(done) => {
            for t in done {
                println!(
                    "{}: {} small files compacted into {}, {} unneeded files vacuumed",
                    t.table, t.compacted_files, t.written_files, t.vacuumed_files
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => report_error(&e),
    }
}
