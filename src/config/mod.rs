//! Job files: the typed model, `${ENV}` templates and secrets, and the loader that parses and
//! validates a file, reporting every mistake with its line and key path before any network call.

mod cron;
mod load;
mod model;
mod paths;
mod schema;
mod template;
mod words;

pub use cron::cron_schedule;
pub use load::{
    Diagnostic, EnvCheck, MAX_JOB_FILE_BYTES, load_job, load_job_checked, load_job_with, parse_job,
    parse_job_checked, process_env_names, render_diagnostics,
};
pub use model::{FanInConfig, JobConfig, SOURCE_KINDS, SourceConfig};
pub use paths::{file_problem, resolve_job_path};
pub use schema::job_schema;
pub use template::{EnvLookup, Secret, Template, process_env};
pub use words::{check_currency, is_iso_currency};
