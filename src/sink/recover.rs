//! What killed runs leave besides an interrupted publish (that one is `commit::roll_forward`'s):
//! the raw pages of runs that never committed, and the temporary files a local filesystem
//! leaves when a write is cut short (`<name>#<n>`: object_store writes there, then renames,
//! and hides such names from every listing, so no object call can find them). Both are
//! removed at the start of every run, under the job's lock, so nothing of this job is being
//! written meanwhile. S3 and memory stores have no such temporary objects (an unfinished
//! upload is never an object).

use std::collections::HashSet;
use std::path::{Path as FsPath, PathBuf};

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use super::layout::{raw_prefix, runs_file_run_id, runs_prefix};
use super::store::{Warehouse, WarehouseUrl};
use crate::error::{Error, Result};

/// What a sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// `_raw/<job>/<run_id>/` folders of runs that never committed.
    pub raw_runs: usize,
    /// Temporary files of cut-short writes.
    pub temporary: usize,
}

/// Remove the job's leftovers: raw run folders with no `_runs` row (the run never committed;
/// `keep` names a run whose pages are still wanted, e.g. the one being reprocessed) and,
/// on a local warehouse, temporary files under the job's folders and among its files in
/// shared folders. Called by the lock's holder, so every such file belongs to a run that
/// died (or lost the lock). The one writer that may be live is another start of the job
/// creating the lock this instant; losing its temporary file fails that start with a
/// storage error instead of "already running", and it would have been refused anyway.
pub async fn sweep_leftovers(
    warehouse: &Warehouse,
    job: &str,
    keep: Option<&str>,
) -> Result<Swept> {
    let store = &warehouse.store;
    let committed = committed_runs(store, job).await?;
    let root = raw_prefix(job);
    let landed = store
        .list_with_delimiter(Some(&root))
        .await
        .map_err(|e| Error::storage(root.to_string(), e))?;
    let mut swept = Swept::default();
    for run in landed.common_prefixes {
        let Some(run_id) = run.filename() else {
            continue;
        };
        if committed.contains(run_id) || keep == Some(run_id) {
            continue;
        }
        remove_prefix(warehouse, &run).await?;
        swept.raw_runs += 1;
    }
    if let WarehouseUrl::Local(dir) = &warehouse.url {
        let (dir, job) = (dir.clone(), job.to_string());
        swept.temporary = tokio::task::spawn_blocking(move || sweep_temporary(&dir, &job))
            .await
            .map_err(|e| Error::io("sweeping temporary files", std::io::Error::other(e)))?;
    }
    Ok(swept)
}

/// Remove every object under `prefix` (on a local warehouse, the folder itself too, with
/// any temporary file in it).
pub async fn remove_prefix(warehouse: &Warehouse, prefix: &Path) -> Result<()> {
    if let WarehouseUrl::Local(dir) = &warehouse.url {
        let folder = local_path(dir, prefix);
        return match tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&folder)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Ok(Err(e)) => Err(Error::storage(prefix.to_string(), e)),
            Err(e) => Err(Error::storage(prefix.to_string(), e)),
        };
    }
    let store = &warehouse.store;
    let objects: Vec<_> = store
        .list(Some(prefix))
        .try_collect()
        .await
        .map_err(|e| Error::storage(prefix.to_string(), e))?;
    for meta in objects {
        match store.delete(&meta.location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(Error::storage(meta.location.to_string(), e)),
        }
    }
    Ok(())
}

/// The run ids of `job` that have a `_runs` row (`_runs/<job>.<run_id>.parquet`).
async fn committed_runs(
    store: &std::sync::Arc<dyn ObjectStore>,
    job: &str,
) -> Result<HashSet<String>> {
    let root = runs_prefix();
    let listing = store
        .list_with_delimiter(Some(&root))
        .await
        .map_err(|e| Error::storage(root.to_string(), e))?;
    Ok(listing
        .objects
        .iter()
        .filter_map(|m| runs_file_run_id(m.location.filename()?, job).map(str::to_string))
        .collect())
}

/// Where object `path` lives under a local warehouse `root` (object_store keeps each path
/// segment as the file name, as written).
fn local_path(root: &FsPath, path: &Path) -> PathBuf {
    let mut out = root.to_path_buf();
    for part in path.parts() {
        out.push(part.as_ref());
    }
    out
}

/// Is this the name object_store's local store gives a file while writing it (`name#3`)?
fn is_temporary(name: &str) -> bool {
    name.rsplit_once('#')
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Temporary files of `job` in a local warehouse: anywhere under a `_<folder>/<job>/`, and
/// among the `<job>.…` files directly in a `_<folder>/` (`_runs`, `_rejects`, `_locks`).
/// Folders under `_<folder>/<job>/` left empty are removed too. Returns how many files.
fn sweep_temporary(root: &FsPath, job: &str) -> usize {
    let mut removed = 0;
    let Ok(top) = std::fs::read_dir(root) else {
        return 0;
    };
    let own = format!("{job}.");
    for folder in top.flatten() {
        let name = folder.file_name().to_string_lossy().into_owned();
        if !name.starts_with('_') || !folder.path().is_dir() {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(folder.path()) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let file = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if file == job {
                    removed += sweep_tree(&path);
                }
            } else if file.starts_with(&own)
                && is_temporary(&file)
                && std::fs::remove_file(&path).is_ok()
            {
                removed += 1;
            }
        }
    }
    removed
}

/// Remove the temporary files under `dir` and the folders left empty; returns how many files.
fn sweep_tree(dir: &FsPath) -> usize {
    let mut removed = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            removed += sweep_tree(&path);
            // Fails, as it should, unless empty.
            std::fs::remove_dir(&path).ok();
        } else if is_temporary(&entry.file_name().to_string_lossy())
            && std::fs::remove_file(&path).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_are_those_object_store_writes_to() {
        assert!(is_temporary("page-000001.json.zst#1"));
        assert!(is_temporary("hubspot.json#12"));
        assert!(!is_temporary("page-000001.json.zst"));
        assert!(!is_temporary("odd#name"));
        assert!(!is_temporary("trailing#"));
    }

    #[tokio::test]
    async fn raw_folders_of_uncommitted_runs_and_temporary_files_go() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("w h");
        let warehouse = Warehouse::open(WarehouseUrl::Local(root.clone())).unwrap();
        let write = |rel: &str| {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x").unwrap();
        };
        for rel in [
            "_runs/j.committed.parquet",
            "_raw/j/committed/hs/contacts/page-000001.json.zst",
            "_raw/j/committed/hs/contacts/page-000002.json.zst#1",
            "_raw/j/killed/hs/contacts/page-000001.json.zst",
            "_raw/j/killed-early/hs/contacts/page-000001.json.zst#1",
            "_raw/j/reprocessed/hs/contacts/page-000001.json.zst",
            "_raw/other/killed/hs/contacts/page-000001.json.zst",
            "_state/j/hs.json#1",
            "_state/j/hs.json",
            "_state/other/hs.json#1",
            "_runs/j.killed.parquet#2",
            "_locks/j.json#1",
        ] {
            write(rel);
        }
        let swept = sweep_leftovers(&warehouse, "j", Some("reprocessed"))
            .await
            .unwrap();
        assert_eq!(
            swept,
            Swept {
                raw_runs: 2,
                temporary: 4
            }
        );
        let mut left: Vec<String> = walk(&root)
            .into_iter()
            .map(|p| p.strip_prefix(&root).unwrap().display().to_string())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "_raw/j/committed/hs/contacts/page-000001.json.zst",
                "_raw/j/reprocessed/hs/contacts/page-000001.json.zst",
                "_raw/other/killed/hs/contacts/page-000001.json.zst",
                "_runs/j.committed.parquet",
                "_state/j/hs.json",
                "_state/other/hs.json#1",
            ]
        );
        assert!(!root.join("_raw/j/killed").exists(), "folder itself gone");
    }

    fn walk(dir: &FsPath) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.path().is_dir() {
                out.extend(walk(&entry.path()));
            } else {
                out.push(entry.path());
            }
        }
        out
    }
}
