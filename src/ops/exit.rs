//! How a command ends: the exit codes every command returns (0 ok, 1 the run failed, 2 a usage
//! or configuration error), an error printed with its code, and a finished run's summary.
//! Below the command modules so `cli`, `demo`, `runs`, `report` and `schedule` share one
//! contract without importing each other.

use std::process::ExitCode;

use crate::error::Error;
use crate::pipeline::RunReport;

/// Exit code of a run that did not commit everything.
pub const EXIT_RUN_FAILED: u8 = 1;
/// Exit code of a usage or configuration error.
pub const EXIT_CONFIG: u8 = 2;

/// Print an error and return its exit code.
pub fn report_error(e: &Error) -> ExitCode {
    eprintln!("error: {e}");
    if e.is_config() {
        ExitCode::from(EXIT_CONFIG)
    } else {
        ExitCode::from(EXIT_RUN_FAILED)
    }
}

/// The end-of-run summary (see `ops::summary`).
pub fn print_report(report: &RunReport) {
    print!("{}", super::summary::render(report));
}

/// 0 when the run committed everything, [`EXIT_RUN_FAILED`] otherwise.
pub fn run_exit_code(report: &RunReport) -> ExitCode {
    if report.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_RUN_FAILED)
    }
}
