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
        /// The HTTP library's error (without the URL), when one caused this.
        #[source]
        source: Option<Cause>,
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
    Storage {
        path: String,
        message: String,
        /// The object store's (or decoder's) own error, when one caused this.
        #[source]
        source: Option<Cause>,
    },

    /// A file a source reads whole (`costs`, `intent`) could not be read from its object
    /// store (`s3://`): missing, or the store refused or could not be reached.
    #[error("source `{source_name}`: {what} {url} {message}")]
    SourceFile {
        source_name: String,
        /// What the file is, e.g. `costs file`.
        what: String,
        /// The file's URL without query string or credentials.
        url: String,
        message: String,
        /// The object store's error, when one caused this.
        #[source]
        source: Option<Cause>,
    },

    /// Building Arrow batches or Parquet files failed.
    #[error("{table}: {message}")]
    Encode {
        table: String,
        message: String,
        /// The Arrow or Parquet error, when one caused this.
        #[source]
        source: Option<Cause>,
    },

    /// One or more sources failed; the run did not commit their data.
    #[error("job `{job}`: {message}")]
    Run { job: String, message: String },

    /// The scheduler's run slots were closed while a fired run waited for one; the run did
    /// not start.
    #[error("job `{job}`: run slots closed: {source}")]
    RunSlotsClosed {
        job: String,
        #[source]
        source: tokio::sync::AcquireError,
    },

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

    /// Wrap an object-store error (or say what is wrong) with the object path it concerns.
    pub fn storage(path: impl Into<String>, detail: impl Into<Detail>) -> Self {
        let Detail { message, source } = detail.into();
        Error::Storage {
            path: path.into(),
            message,
            source,
        }
    }

    /// Wrap an object-store error (or say what is wrong) reading the file `url` that source
    /// `source_name` reads whole; `what` names the file (`costs file`).
    pub fn source_file(
        source_name: impl Into<String>,
        what: impl Into<String>,
        url: impl Into<String>,
        detail: impl Into<Detail>,
    ) -> Self {
        let Detail { message, source } = detail.into();
        Error::SourceFile {
            source_name: source_name.into(),
            what: what.into(),
            url: url.into(),
            message,
            source,
        }
    }

    /// Wrap an Arrow or Parquet error (or say what is wrong) with the table it concerns.
    pub fn encode(table: impl Into<String>, detail: impl Into<Detail>) -> Self {
        let Detail { message, source } = detail.into();
        Error::Encode {
            table: table.into(),
            message,
            source,
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

/// A library error kept as the cause of one of ours, reachable through
/// [`std::error::Error::source`] so a caller can still ask what it was.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// What went wrong beneath a storage or encoding error: our own words, or a library's error.
/// The message is the error's text either way, so the one-line message reads the same; a
/// library error is also kept whole as the cause.
#[derive(Debug)]
pub struct Detail {
    message: String,
    source: Option<Cause>,
}

impl Detail {
    /// A library error as the cause, its text as the message.
    pub fn caused_by(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Detail::new(error.to_string(), error)
    }

    /// Our words (which quote the error when it helps) with the library error as the cause.
    pub fn new(message: String, error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Detail {
            message,
            source: Some(Box::new(error)),
        }
    }
}

impl From<String> for Detail {
    fn from(message: String) -> Self {
        Detail {
            message,
            source: None,
        }
    }
}

impl From<&str> for Detail {
    fn from(message: &str) -> Self {
        Detail::from(message.to_string())
    }
}

/// `From` for each library error type named here (others: [`Detail::caused_by`]). A blanket impl over every
/// `std::error::Error` cannot sit beside the `String` one (coherence: `String` might implement
/// `Error` one day), so the error types met below storage and encoding are listed.
macro_rules! detail_from_errors {
    ($($error:ty),+ $(,)?) => {$(
        impl From<$error> for Detail {
            fn from(error: $error) -> Self {
                Detail::caused_by(error)
            }
        }
    )+};
}

detail_from_errors!(
    object_store::Error,
    object_store::path::Error,
    arrow::error::ArrowError,
    parquet::errors::ParquetError,
    serde_json::Error,
    std::io::Error,
    tokio::task::JoinError,
    url::ParseError,
);

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::{Detail, Error};

    #[test]
    fn a_storage_error_keeps_the_object_stores_error_as_its_cause_and_reads_as_before() {
        let missing = object_store::Error::NotFound {
            path: "_state/job/crm.json".into(),
            source: "no such object".into(),
        };
        let text = missing.to_string();
        let e = Error::storage("_state/job/crm.json", missing);
        assert_eq!(
            e.to_string(),
            format!("warehouse object `_state/job/crm.json`: {text}")
        );
        let cause = e.source().expect("the cause is kept");
        assert!(matches!(
            cause.downcast_ref::<object_store::Error>(),
            Some(object_store::Error::NotFound { .. })
        ));
    }

    #[test]
    fn our_words_have_no_cause_and_quoted_errors_keep_theirs() {
        let e = Error::encode("lead_stages", "too many previous stage dates");
        assert_eq!(e.to_string(), "lead_stages: too many previous stage dates");
        assert!(e.source().is_none());

        let bad = serde_json::from_slice::<u8>(b"{").unwrap_err();
        let e = Error::storage(
            "_locks/job.json",
            Detail::new(format!("unreadable job lock ({bad})"), bad),
        );
        assert!(
            e.to_string()
                .starts_with("warehouse object `_locks/job.json`: unreadable job lock (")
        );
        assert!(
            e.source()
                .and_then(|c| c.downcast_ref::<serde_json::Error>())
                .is_some()
        );
    }

    #[tokio::test]
    async fn closed_run_slots_name_the_job_and_keep_the_semaphores_error() {
        let slots = tokio::sync::Semaphore::new(0);
        slots.close();
        let closed = slots.acquire().await.unwrap_err();
        let text = closed.to_string();
        let e = Error::RunSlotsClosed {
            job: "demo".into(),
            source: closed,
        };
        assert_eq!(
            e.to_string(),
            format!("job `demo`: run slots closed: {text}")
        );
        assert!(
            e.source()
                .and_then(|c| c.downcast_ref::<tokio::sync::AcquireError>())
                .is_some()
        );
    }
}
