//! What a `[fan_in]` metrics step reads: a [`Snapshot`] of the input files other jobs
//! published, with each file's version when listed, and the per-job metric files around
//! them. Plain data; `super::fanin` takes it, `super::metrics` reads through it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use object_store::path::Path;

use crate::sink::layout::{metric_file, metric_file_owner, table_file_owner};

/// What a listed object was when listed: changes whenever it is replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Version {
    pub(super) e_tag: Option<String>,
    pub(super) size: u64,
    pub(super) last_modified: DateTime<Utc>,
}

/// A file an input table is read from now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    /// Where to read it: the published path, or the staged file replacing it this run.
    pub location: String,
    /// Its size in bytes.
    pub bytes: u64,
}

/// The published files a metrics step reads, and the per-job metric files around them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Input table → file path → version (`<table>/[<partition>/]<job>.<source>.parquet`).
    pub(super) inputs: BTreeMap<String, BTreeMap<String, Version>>,
    /// Metric files named after this job or a covered job (`<table>/<job>.parquet`).
    pub(super) metric_files: BTreeMap<String, Version>,
    /// The metrics job itself.
    pub(super) me: String,
    /// The pull jobs read: the named ones, or every job with input files.
    pub(super) jobs: BTreeSet<String>,
}

impl Snapshot {
    /// The snapshot's files of an input table: path → the file (read where published).
    pub fn files(&self, table: &str) -> BTreeMap<String, InputFile> {
        self.inputs
            .get(table)
            .into_iter()
            .flatten()
            .map(|(path, version)| {
                let file = InputFile {
                    location: path.clone(),
                    bytes: version.size,
                };
                (path.clone(), file)
            })
            .collect()
    }

    /// The earlier files of a metric table to carry forward: this job's own, once it has
    /// one; before its first commit, the covered jobs' per-job files (a warehouse moving
    /// from one job computing its own metrics to a fan-in keeps its stage history).
    pub fn history(&self, table: &str) -> Vec<Path> {
        let own = metric_file(table, &self.me);
        if self.metric_files.contains_key(own.as_ref()) {
            return vec![own];
        }
        self.legacy_files()
            .into_iter()
            .filter(|p| p.as_ref().starts_with(&format!("{table}/")))
            .collect()
    }

    /// The covered jobs' own metric files (`<table>/<pull job>.parquet`): left from before
    /// the fan-out, or written by a pull job that still computes metrics. Each metrics
    /// commit removes them, so readers of a metric folder see one set of figures.
    pub(super) fn legacy_files(&self) -> Vec<Path> {
        self.metric_files
            .keys()
            .filter(|p| {
                metric_file_owner(p.rsplit('/').next().unwrap_or(p)) != Some(self.me.as_str())
            })
            .map(|p| Path::from(p.as_str()))
            .collect()
    }

    /// The pull jobs this snapshot covers.
    pub fn jobs(&self) -> &BTreeSet<String> {
        &self.jobs
    }

    /// How many input files it holds.
    pub fn input_files(&self) -> usize {
        self.inputs.values().map(BTreeMap::len).sum()
    }
}

/// `<job>.<source>.parquet` → `job`.
pub(super) fn input_file_job(name: &str) -> Option<&str> {
    table_file_owner(name).map(|(job, _)| job)
}
