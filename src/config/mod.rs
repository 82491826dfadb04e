//! Job files: the typed model, `${ENV}` templates and secrets, and the loader that parses and
//! validates a file, reporting every mistake with its line and key path before any network call.

mod load;
mod model;
mod paths;
mod template;

pub use load::{Diagnostic, load_job, load_job_with, parse_job, render_diagnostics};
pub use model::{FanInConfig, JobConfig, SOURCE_KINDS, SourceConfig, cron_schedule};
pub use paths::{file_problem, resolve_job_path};
pub use template::{EnvLookup, Secret, Template, process_env};
