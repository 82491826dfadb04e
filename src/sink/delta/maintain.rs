//! Maintenance of Delta tables: compaction of small files and vacuum of files no version in
//! the retention period needs. Both are Delta commits (`OPTIMIZE`, `VACUUM END`), so readers
//! of any version see the same rows before and after.
//!
//! Compaction merges a partition's small files whatever their source (the days of `spend`,
//! the runs of `_runs`); the merged file records which published file each of its rows came
//! from, so that a later run replacing one of them rewrites it without those rows.
//! Vacuum deletes only the log's own immutable files (`….delta.parquet`); the working copies
//! the pipeline merges with and the `_runs` files its bookkeeping reads stay.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use delta_kernel::committer::FileSystemCommitter;
use delta_kernel::transaction::{CommitResult, UpdateTableOperation};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use super::kernel::{self, ActiveFile, DeltaError, ScanRow};
use super::members::Add;
use super::members::{COMPACTED_SUFFIX, Member, members_of, relabel, with_members};
use super::names::DATA_SUFFIX;
use super::publish::{ENGINE_INFO, add_batch};
use super::settings::DeltaSettings;
use crate::error::{Error, Result};
use crate::sink::parquet::{read_parquet_rows, write_batches};

/// What maintenance did to one table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Maintained {
    /// The table.
    pub table: String,
    /// Small files merged away.
    pub compacted_files: usize,
    /// Files compaction wrote.
    pub written_files: usize,
    /// Data files vacuum deleted.
    pub vacuumed_files: usize,
}

/// Every Delta table of the warehouse (a top-level folder with a `_delta_log/`).
pub async fn delta_tables(store: &Arc<dyn ObjectStore>) -> Result<Vec<String>> {
    let root = store
        .list_with_delimiter(None)
        .await
        .map_err(|e| Error::storage("/", e))?;
    let mut tables = Vec::new();
    for folder in root.common_prefixes {
        let Some(name) = folder.filename() else {
            continue;
        };
        if kernel::exists(store, name).await? {
            tables.push(name.to_string());
        }
    }
    Ok(tables)
}

/// Compact, then vacuum, each of `tables`; `now` is the clock vacuum's retention counts from.
pub async fn maintain(
    store: &Arc<dyn ObjectStore>,
    tables: &[String],
    settings: &DeltaSettings,
    now: DateTime<Utc>,
) -> Result<Vec<Maintained>> {
    let engine = kernel::engine(store);
    let mut done = Vec::new();
    for table in tables {
        let mut report = Maintained {
            table: table.clone(),
            ..Maintained::default()
        };
        if settings.compact_below_bytes > 0 {
            let (merged, written) =
                compact(store, &engine, table, settings.compact_below_bytes).await?;
            report.compacted_files = merged;
            report.written_files = written;
        }
        let retention = chrono::Duration::hours(
            i64::try_from(settings.vacuum_retention_hours).unwrap_or(i64::MAX / 3_600_000),
        );
        report.vacuumed_files = vacuum(store, &engine, table, now - retention).await?;
        tracing::info!(
            table,
            compacted = report.compacted_files,
            vacuumed = report.vacuumed_files,
            "Delta maintenance"
        );
        done.push(report);
    }
    Ok(done)
}

/// A partition's `(column, value)` pairs.
type Partition = Vec<(String, String)>;

/// The files of one partition and schema to merge.
struct SchemaGroup {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    rows: Vec<ScanRow>,
    members: Vec<Member>,
    count: u64,
}

/// Merge the small files of each partition of `table` into one, recording what each held
/// (see [`super::members`]); one `OPTIMIZE` commit.
/// Returns (files merged away, files written).
async fn compact(
    store: &Arc<dyn ObjectStore>,
    engine: &Arc<kernel::Engine>,
    table: &str,
    below: u64,
) -> Result<(usize, usize)> {
    let (snapshot_files, version) = {
        let engine = Arc::clone(engine);
        let name = table.to_string();
        kernel::blocking(table, move || {
            let snapshot = kernel::snapshot(&engine, &name, None)?;
            let files = kernel::active_files(&engine, &name, &snapshot)?;
            Ok((files, snapshot.version()))
        })
        .await?
    };
    // Partition → files; merged below per schema, so that only files of one schema merge.
    let mut groups: BTreeMap<Partition, Vec<(ActiveFile, ScanRow)>> = BTreeMap::new();
    for (file, row) in snapshot_files {
        if file.size < below {
            groups
                .entry(file.partition.clone())
                .or_default()
                .push((file, row));
        }
    }
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%6fZ").to_string();
    let mut removed = Vec::new();
    let mut adds = Vec::new();
    for (partition, files) in groups {
        let mut by_schema: Vec<SchemaGroup> = Vec::new();
        for (file, row) in files {
            let path = Path::from(format!("{table}/{}", file.path));
            let batches = read_parquet_rows(store, &path).await?;
            let Some(schema) = batches.first().map(RecordBatch::schema) else {
                continue;
            };
            let footer = super::footer::arrow_schema(store, &path).await?;
            let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
            let members = members_of(&file.path, &footer, rows);
            match by_schema
                .iter_mut()
                .find(|g| g.schema.fields() == schema.fields())
            {
                Some(group) => {
                    group.batches.extend(batches);
                    group.rows.push(row);
                    group.members.extend(members);
                    group.count += rows;
                }
                None => by_schema.push(SchemaGroup {
                    schema,
                    batches,
                    rows: vec![row],
                    members,
                    count: rows,
                }),
            }
        }
        for (n, group) in by_schema.into_iter().enumerate() {
            let SchemaGroup {
                schema,
                batches,
                rows,
                members,
                count,
            } = group;
            if rows.len() < 2 {
                continue;
            }
            let folder: String = partition.iter().map(|(k, v)| format!("{k}={v}/")).collect();
            let name = format!("{folder}part-{stamp}-{n}{COMPACTED_SUFFIX}");
            let path = Path::from(format!("{table}/{name}"));
            let schema = with_members(&schema, &members);
            let batches = relabel(&schema, batches)?;
            let size = write_batches(store, &path, schema, &batches).await?.bytes;
            adds.push(Add {
                path: name,
                partition: partition.clone(),
                size,
                rows: count,
            });
            removed.extend(rows);
        }
    }
    if adds.is_empty() {
        return Ok((0, 0));
    }
    let (merged, written) = (removed.len(), adds.len());
    let engine = Arc::clone(engine);
    let name = table.to_string();
    let committed = kernel::blocking(table, move || {
        let snapshot = kernel::snapshot(&engine, &name, Some(version))?;
        let mut txn = snapshot
            .update_table(UpdateTableOperation::Optimize, ENGINE_INFO, false)
            .build(engine.as_ref(), Box::new(FileSystemCommitter::new()))
            .map_err(kernel::kernel(&name, "starting a compaction"))?;
        for removal in kernel::removal(&removed) {
            txn.remove_files(removal);
        }
        txn.add_files(add_batch(&name, &adds)?);
        let result = txn
            .commit(engine.as_ref())
            .map_err(kernel::kernel(&name, "committing a compaction"))?;
        Ok(matches!(result, CommitResult::Committed(_)))
    })
    .await?;
    if !committed {
        // A run committed meanwhile; the next maintenance compacts. Its files are unnamed
        // by any version, so the next vacuum past the retention removes them.
        tracing::info!(table, "compaction lost to a concurrent commit; skipped");
        return Ok((0, 0));
    }
    Ok((merged, written))
}

/// Delete the data files of `table` that no version current at or after `cutoff` names and
/// that were written before it; one `VACUUM END` commit when any went. Returns how many.
async fn vacuum(
    store: &Arc<dyn ObjectStore>,
    engine: &Arc<kernel::Engine>,
    table: &str,
    cutoff: DateTime<Utc>,
) -> Result<usize> {
    let log = Path::from(format!("{table}/_delta_log"));
    let commits: Vec<(u64, DateTime<Utc>)> = store
        .list(Some(&log))
        .try_collect::<Vec<_>>()
        .await
        .map_err(|e| Error::storage(log.to_string(), e))?
        .into_iter()
        .filter_map(|m| {
            let name = m.location.filename()?;
            let version = name.strip_suffix(".json")?.parse::<u64>().ok()?;
            Some((version, m.last_modified))
        })
        .collect::<BTreeMap<_, _>>()
        .into_iter()
        .collect();
    let Some(&(latest, _)) = commits.last() else {
        return Ok(0);
    };
    // A version is needed when it was current at some instant after the cutoff: it is the
    // latest, or the version after it came later than the cutoff.
    let needed: Vec<u64> = commits
        .windows(2)
        .filter(|w| w[1].1 > cutoff)
        .map(|w| w[0].0)
        .chain([latest])
        .collect();
    let keep: BTreeSet<String> = {
        let engine = Arc::clone(engine);
        let name = table.to_string();
        kernel::blocking(table, move || {
            let mut keep = BTreeSet::new();
            for version in needed {
                let snapshot = kernel::snapshot(&engine, &name, Some(version))?;
                for (file, _) in kernel::active_files(&engine, &name, &snapshot)? {
                    keep.insert(file.path);
                }
            }
            Ok::<_, DeltaError>(keep)
        })
        .await?
    };
    let root = Path::from(table);
    let listed: Vec<_> = store
        .list(Some(&root))
        .try_collect()
        .await
        .map_err(|e| Error::storage(root.to_string(), e))?;
    let mut deleted = 0;
    for meta in listed {
        let full = meta.location.to_string();
        let relative = super::names::in_table(table, &full);
        if !relative.ends_with(DATA_SUFFIX)
            || relative.starts_with("_delta_log/")
            || keep.contains(relative)
            || meta.last_modified >= cutoff
        {
            continue;
        }
        match store.delete(&meta.location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => deleted += 1,
            Err(e) => return Err(Error::storage(full, e)),
        }
    }
    if deleted > 0 {
        let engine = Arc::clone(engine);
        let name = table.to_string();
        kernel::blocking(table, move || {
            let snapshot = kernel::snapshot(&engine, &name, None)?;
            let txn = snapshot
                .update_table(
                    UpdateTableOperation::Custom("VACUUM END".to_string()),
                    ENGINE_INFO,
                    false,
                )
                .with_operation_metrics([("numDeletedFiles", Some(deleted.to_string()))])
                .build(engine.as_ref(), Box::new(FileSystemCommitter::new()))
                .map_err(kernel::kernel(&name, "recording a vacuum"))?;
            // Losing the race only loses the record of the vacuum, not files anyone needs.
            let result = txn
                .commit(engine.as_ref())
                .map_err(kernel::kernel(&name, "recording a vacuum"))?;
            if !matches!(result, CommitResult::Committed(_)) {
                tracing::info!(table = %name, "vacuum record lost to a concurrent commit");
            }
            Ok(())
        })
        .await?;
    }
    Ok(deleted)
}
