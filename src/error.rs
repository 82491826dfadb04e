//! The crate's error type: a small set of variants callers can match, each carrying the
//! context an operator needs (job, source, URL, object path, record) and never a secret.

use std::path::PathBuf;

/// Everything that can fail in funnelhouse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The job file could not be read, parsed or validated; every problem is listed.
    #[error("job file {path} is invalid:\n{report}")]
    Config { path: PathBuf, report: String },

    /// The job file itself could not be read: missing, a folder, not readable. The path is
    /// shown as given and, when relative, where it was looked for.
    #[error("job file {path} {problem}")]
    JobFileUnreadable { path: String, problem: String },

    /// A vendor API answered with an error that retrying will not fix, or retries ran out.
    #[error("source `{source_name}`: {message} ({url})")]
    Http {
        source_name: String,
        /// The request URL without query string or credentials.
        url: String,
        message: String,
        /// HTTP status, when the server answered at all.
        status: Option<u16>,
    },

    /// A vendor response body was not the shape its API documents.
    #[error("source `{source_name}`: unexpected response from {url}: {message}")]
    Protocol {
        source_name: String,
        url: String,
        message: String,
    },

    /// A recording being replayed cannot stand for what the run would have received: a
    /// page is missing, or a page is not the answer to the request it stands for.
    #[error("source `{source_name}`: the recording of `{endpoint}` {message}")]
    Recording {
        source_name: String,
        /// The endpoint's fixed name, e.g. `hubspot/contacts`.
        endpoint: String,
        message: String,
    },

    /// Reading or writing the warehouse failed.
    #[error("warehouse object `{path}`: {message}")]
    Storage { path: String, message: String },

    /// Building Arrow batches or Parquet files failed.
    #[error("{table}: {message}")]
    Encode { table: String, message: String },

    /// One or more sources failed; the run did not commit their data.
    #[error("job `{job}`: {message}")]
    Run { job: String, message: String },

    /// Another run of the same job holds the job's lock; this run wrote nothing.
    #[error(
        "job `{job}` is already running: {holder}. This run stopped without touching the warehouse; if that run was killed, its lock expires when the lease runs out"
    )]
    Locked { job: String, holder: String },

    /// A local file or socket operation failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Wrap an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Wrap an object-store error with the object path it concerns.
    pub fn storage(path: impl Into<String>, err: impl std::fmt::Display) -> Self {
        Error::Storage {
            path: path.into(),
            message: err.to_string(),
        }
    }

    /// Wrap an Arrow or Parquet error with the table it concerns.
    pub fn encode(table: impl Into<String>, err: impl std::fmt::Display) -> Self {
        Error::Encode {
            table: table.into(),
            message: err.to_string(),
        }
    }

    /// Is this a usage or configuration problem (exit code 2) rather than a failed run (1)?
    pub fn is_config(&self) -> bool {
        matches!(self, Error::Config { .. } | Error::JobFileUnreadable { .. })
    }

    /// Path of a job file, for messages.
    pub fn config(path: impl Into<PathBuf>, report: impl Into<String>) -> Self {
        Error::Config {
            path: path.into(),
            report: report.into(),
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
