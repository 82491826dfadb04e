//! A run's Delta commits: one per table, made from the run's commit record after its files
//! are published, so that rolling the record forward after a kill makes them too.
//!
//! Each commit adds the run's files and removes the files they replace (the same published
//! name: a full replace, each day partition of a look-back window, a merged current-state
//! file) and those of the partitions a backfill emptied. It carries the run id and job in
//! `commitInfo` and one `txn` per job and source, at a version fixed in the commit record
//! before publishing: a table whose log already holds that version for the job got this
//! commit before a kill, and is left alone.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Int64Array, MapBuilder, MapFieldNames, RecordBatch, StringArray, StringBuilder,
    StructArray,
};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use delta_kernel::committer::FileSystemCommitter;
use delta_kernel::engine::arrow_conversion::TryFromArrow;
use delta_kernel::engine::arrow_data::ArrowEngineData;
use delta_kernel::expressions::ColumnName;
use delta_kernel::schema::{DataType as KernelType, StructField, StructType};
use delta_kernel::transaction::create_table::create_table;
use delta_kernel::transaction::data_layout::DataLayout;
use delta_kernel::transaction::{CommitResult, UpdateTableOperation};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use super::kernel::{self, DeltaError, Engine, arrow_err};
use super::members::{Add, COMPACTED_SUFFIX, rewrite_without};
use super::names::{app_id, data_file, in_table, logical_target, table_of};
use crate::error::{Error, Result};
use crate::sink::commit::{PendingCommit, StagedFile};
use crate::sink::partition::partition_values;

/// What the log records as the writer.
pub const ENGINE_INFO: &str = concat!("funnelhouse/", env!("CARGO_PKG_VERSION"));

/// How often a commit that lost the race for a version is tried again on the newer one.
const ATTEMPTS: usize = 20;

/// One table's part of a run's commit.
#[derive(Debug, Clone, Default)]
struct TablePlan {
    adds: Vec<Add>,
    /// Published names (relative to the table) whose current files this commit replaces.
    replaced: BTreeSet<String>,
    /// `txn` application ids.
    app_ids: BTreeSet<String>,
}

fn plans(commit: &PendingCommit) -> BTreeMap<String, TablePlan> {
    let mut plans: BTreeMap<String, TablePlan> = BTreeMap::new();
    for file in commit
        .files
        .iter()
        .filter(|f| f.target.ends_with(".parquet"))
    {
        let table = table_of(&file.target);
        let plan = plans.entry(table.to_string()).or_default();
        let data = data_file(&file.target, &commit.run_id);
        plan.adds.push(Add {
            path: in_table(table, &data).to_string(),
            partition: partition_values(&file.target)
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            size: file.bytes,
            rows: file.rows,
        });
        plan.replaced
            .insert(in_table(table, &file.target).to_string());
        plan.app_ids
            .insert(app_id(&commit.job, &file.target, &commit.run_id));
    }
    for gone in commit.deletes.iter().filter(|d| d.ends_with(".parquet")) {
        let table = table_of(gone);
        let plan = plans.entry(table.to_string()).or_default();
        plan.replaced.insert(in_table(table, gone).to_string());
    }
    for plan in plans.values_mut() {
        if plan.app_ids.is_empty() {
            plan.app_ids.insert(format!("funnelhouse:{}", commit.job));
        }
    }
    plans
}

/// The `txn` version a new commit of `commit`'s tables carries: one past the highest any
/// of its application ids has reached in any of them (the job holds its lock, so no other
/// writer moves these ids meanwhile).
pub async fn next_txn_version(store: &Arc<dyn ObjectStore>, commit: &PendingCommit) -> Result<i64> {
    let engine = kernel::engine(store);
    let mut highest = 0;
    for (table, plan) in plans(commit) {
        if !kernel::exists(store, &table).await? {
            continue;
        }
        let engine = Arc::clone(&engine);
        let name = table.clone();
        let reached = kernel::blocking(&table, move || {
            let snapshot = kernel::snapshot(&engine, &name, None)?;
            let mut reached = 0;
            for app in &plan.app_ids {
                let v = snapshot
                    .get_app_id_version(app, engine.as_ref())
                    .map_err(kernel::kernel(&name, "reading txn versions"))?;
                reached = reached.max(v.unwrap_or(0));
            }
            Ok(reached)
        })
        .await?;
        highest = highest.max(reached);
    }
    Ok(highest + 1)
}

/// Publish step for one file of a Delta job, before its rename: the immutable copy of the
/// staged file that the log will name. Done again harmlessly by a roll-forward; once the
/// staged file is renamed away its copy is there already.
pub async fn keep_data_file(
    store: &Arc<dyn ObjectStore>,
    commit: &PendingCommit,
    file: &StagedFile,
) -> Result<()> {
    if !file.target.ends_with(".parquet") {
        return Ok(());
    }
    let data = data_file(&file.target, &commit.run_id);
    if data == file.target {
        return Ok(());
    }
    let (staged, data) = (Path::from(file.staged.as_str()), Path::from(data));
    match store.copy(&staged, &data).await {
        Ok(()) => Ok(()),
        Err(object_store::Error::NotFound { .. }) if store.head(&data).await.is_ok() => Ok(()),
        Err(e) => Err(Error::storage(data.to_string(), e)),
    }
}

/// The Delta commit of every table of `commit` not yet holding it.
pub async fn commit_tables(store: &Arc<dyn ObjectStore>, commit: &PendingCommit) -> Result<()> {
    let Some(version) = commit.txn_version else {
        return Err(Error::storage(
            format!("_commits/{}/{}.json", commit.job, commit.run_id),
            "a Delta job's commit record has no txn version",
        ));
    };
    let engine = kernel::engine(store);
    for (table, plan) in plans(commit) {
        let schema = if kernel::exists(store, &table).await? {
            None
        } else {
            Some(table_schema(store, &table, &plan.adds).await?)
        };
        let job = CommitOf {
            table: table.clone(),
            plan,
            version,
            job: commit.job.clone(),
            run_id: commit.run_id.clone(),
            files_schema: schema.clone(),
            schema,
            read_version: None,
            rewritten: Vec::new(),
            rewrites: Vec::new(),
        };
        commit_table(store, &engine, job).await?;
        crate::pause::point("delta").await;
    }
    Ok(())
}

struct CommitOf {
    table: String,
    plan: TablePlan,
    version: i64,
    job: String,
    run_id: String,
    /// The table's schema when it has no log yet.
    schema: Option<SchemaRef>,
    /// The merged schema of this commit's files: columns the table lacks are added.
    files_schema: Option<SchemaRef>,
    /// The version the compacted files to rewrite were found in (the commit follows it).
    read_version: Option<u64>,
    /// Compacted files that held a replaced member (paths relative to the table).
    rewritten: Vec<String>,
    /// Their rewrites without those members' rows.
    rewrites: Vec<Add>,
}

enum Outcome {
    Committed,
    AlreadyThere,
    Lost,
}

async fn commit_table(
    store: &Arc<dyn ObjectStore>,
    engine: &Arc<Engine>,
    mut job: CommitOf,
) -> Result<()> {
    for _ in 0..ATTEMPTS {
        let exists = kernel::exists(store, &job.table).await?;
        if exists {
            job.schema = None;
            if job.files_schema.is_none() && !job.plan.adds.is_empty() {
                job.files_schema = Some(table_schema(store, &job.table, &job.plan.adds).await?);
            }
            if !rewrite_compacted(store, engine, &mut job).await? {
                tracing::info!(table = %job.table, run_id = %job.run_id, "Delta commit was made before: skipped");
                return Ok(());
            }
        } else if job.schema.is_none() {
            job.schema = Some(table_schema(store, &job.table, &job.plan.adds).await?);
        }
        let engine = Arc::clone(engine);
        let (table, outcome) = {
            let table = job.table.clone();
            let (back, outcome) = kernel::blocking(&table, move || {
                let outcome = commit_once(&engine, &job)?;
                Ok((job, outcome))
            })
            .await?;
            job = back;
            (table, outcome)
        };
        match outcome {
            Outcome::Committed => {
                tracing::info!(table, run_id = %job.run_id, "Delta commit");
                return Ok(());
            }
            Outcome::AlreadyThere => {
                tracing::info!(table, run_id = %job.run_id, "Delta commit was made before: skipped");
                return Ok(());
            }
            Outcome::Lost => continue,
        }
    }
    Err(DeltaError::Contended {
        table: job.table,
        attempts: ATTEMPTS,
    }
    .into())
}

fn commit_once(engine: &Engine, job: &CommitOf) -> std::result::Result<Outcome, DeltaError> {
    let table = job.table.as_str();
    let (info, info_schema) = commit_info(table, &job.job, &job.run_id)?;
    let all: Vec<Add> = job.plan.adds.iter().chain(&job.rewrites).cloned().collect();
    let adds = add_batch(table, &all)?;
    let result = match &job.schema {
        Some(schema) => {
            let partition_columns: Vec<String> = job
                .plan
                .adds
                .first()
                .map(|a| a.partition.iter().map(|(k, _)| k.clone()).collect())
                .unwrap_or_default();
            let kernel_schema = Arc::new(
                StructType::try_from_arrow(schema.as_ref())
                    .map_err(arrow_err(table, "converting the schema"))?,
            );
            let mut builder = create_table(
                kernel::table_url(table).as_str(),
                kernel_schema,
                ENGINE_INFO,
                true,
            );
            if !partition_columns.is_empty() {
                builder = builder.with_data_layout(DataLayout::partitioned(partition_columns));
            }
            for app in &job.plan.app_ids {
                builder = builder.with_transaction_id(app.clone(), job.version);
            }
            let mut txn = builder
                .with_commit_info(info, info_schema)
                .build(engine, Box::new(FileSystemCommitter::new()))
                .map_err(kernel::kernel(table, "creating the table"))?;
            txn.add_files(adds);
            match txn
                .commit(engine)
                .map_err(kernel::kernel(table, "committing"))?
            {
                CommitResult::Committed(_) => Outcome::Committed,
                _ => Outcome::Lost,
            }
        }
        None => {
            let snapshot = kernel::snapshot(engine, table, job.read_version)?;
            for app in &job.plan.app_ids {
                let reached = snapshot
                    .get_app_id_version(app, engine)
                    .map_err(kernel::kernel(table, "reading txn versions"))?;
                if reached.is_some_and(|v| v >= job.version) {
                    return Ok(Outcome::AlreadyThere);
                }
            }
            let replaced: Vec<kernel::ScanRow> = kernel::active_files(engine, table, &snapshot)?
                .into_iter()
                .filter(|(file, _)| {
                    job.plan.replaced.contains(&logical_target(&file.path))
                        || job.rewritten.contains(&file.path)
                })
                .map(|(_, row)| row)
                .collect();
            let mut builder =
                Arc::clone(&snapshot).update_table(UpdateTableOperation::Write, ENGINE_INFO, true);
            if let Some(files) = &job.files_schema {
                let files = StructType::try_from_arrow(files.as_ref())
                    .map_err(arrow_err(table, "converting the schema"))?;
                for (parent, field) in missing_fields(&snapshot.schema(), &files, &[]) {
                    builder = builder.add_column_at(ColumnName::new(parent), field);
                }
            }
            for app in &job.plan.app_ids {
                builder = builder.with_transaction_id(app.clone(), job.version);
            }
            let mut txn = builder
                .with_commit_info(info, info_schema)
                .build(engine, Box::new(FileSystemCommitter::new()))
                .map_err(kernel::kernel(table, "starting a commit"))?;
            for removal in kernel::removal(&replaced) {
                txn.remove_files(removal);
            }
            txn.add_files(adds);
            match txn
                .commit(engine)
                .map_err(kernel::kernel(table, "committing"))?
            {
                CommitResult::Committed(_) => Outcome::Committed,
                _ => Outcome::Lost,
            }
        }
    };
    Ok(result)
}

/// Whether `job`'s table still needs this commit (its `txn` version is not in the log); if
/// so, rewrite each compacted file of a touched partition that holds a replaced member
/// without that member's rows, recording what the commit removes and adds for it.
async fn rewrite_compacted(
    store: &Arc<dyn ObjectStore>,
    engine: &Arc<Engine>,
    job: &mut CommitOf,
) -> Result<bool> {
    let (version, needed, candidates) = {
        let engine = Arc::clone(engine);
        let table = job.table.clone();
        let apps = job.plan.app_ids.clone();
        let txn = job.version;
        let dirs: BTreeSet<String> = job.plan.replaced.iter().map(|r| folder(r)).collect();
        kernel::blocking(&job.table, move || {
            let snapshot = kernel::snapshot(&engine, &table, None)?;
            for app in &apps {
                let reached = snapshot
                    .get_app_id_version(app, engine.as_ref())
                    .map_err(kernel::kernel(&table, "reading txn versions"))?;
                if reached.is_some_and(|v| v >= txn) {
                    return Ok((snapshot.version(), false, Vec::new()));
                }
            }
            let candidates: Vec<_> = kernel::active_files(&engine, &table, &snapshot)?
                .into_iter()
                .map(|(file, _)| file)
                .filter(|f| f.path.ends_with(COMPACTED_SUFFIX) && dirs.contains(&folder(&f.path)))
                .collect();
            Ok((snapshot.version(), true, candidates))
        })
        .await?
    };
    job.read_version = Some(version);
    job.rewritten.clear();
    job.rewrites.clear();
    if !needed {
        return Ok(false);
    }
    // A name no version uses yet, also when an attempt is retried.
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%6fZ");
    for (n, file) in candidates.into_iter().enumerate() {
        let dir = folder(&file.path);
        let name = if dir.is_empty() {
            format!("part-{stamp}-r{n}{COMPACTED_SUFFIX}")
        } else {
            format!("{dir}/part-{stamp}-r{n}{COMPACTED_SUFFIX}")
        };
        if let Some(rewrite) = rewrite_without(
            store,
            &job.table,
            &file.path,
            &file.partition,
            &job.plan.replaced,
            &name,
        )
        .await?
        {
            job.rewritten.push(file.path);
            job.rewrites.extend(rewrite);
        }
    }
    Ok(true)
}

/// The folder part of a path relative to a table (`date=…` or empty).
fn folder(path: &str) -> String {
    path.rsplit_once('/')
        .map(|(dir, _)| dir.to_string())
        .unwrap_or_default()
}

/// The fields of `new` that `table` lacks, each with the path of the struct it belongs in
/// (empty: top level), outermost first; every one nullable, since earlier files lack it.
fn missing_fields(
    table: &StructType,
    new: &StructType,
    parent: &[String],
) -> Vec<(Vec<String>, StructField)> {
    let mut missing = Vec::new();
    for field in new.fields() {
        let existing = table
            .fields()
            .find(|f| f.name().eq_ignore_ascii_case(field.name()));
        match (existing, field.data_type()) {
            (None, _) => missing.push((
                parent.to_vec(),
                StructField::nullable(field.name().clone(), field.data_type().clone()),
            )),
            (Some(have), KernelType::Struct(inner)) => {
                if let KernelType::Struct(have_inner) = have.data_type() {
                    let mut path = parent.to_vec();
                    path.push(have.name().clone());
                    missing.extend(missing_fields(have_inner, inner, &path));
                }
            }
            _ => {}
        }
    }
    missing
}

/// The run's own fields in `commitInfo`.
fn commit_info(
    table: &str,
    job: &str,
    run_id: &str,
) -> std::result::Result<
    (
        Box<dyn delta_kernel::EngineData>,
        delta_kernel::schema::SchemaRef,
    ),
    DeltaError,
> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("runId", DataType::Utf8, true),
        Field::new("job", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(StringArray::from(vec![run_id])) as ArrayRef,
            Arc::new(StringArray::from(vec![job])),
        ],
    )
    .map_err(arrow_err(table, "building commitInfo"))?;
    let kernel_schema = StructType::try_from_arrow(schema.as_ref())
        .map_err(arrow_err(table, "building commitInfo"))?;
    Ok((
        Box::new(ArrowEngineData::new(batch)),
        Arc::new(kernel_schema),
    ))
}

/// The add actions' input: path, partition values, size, time, `numRecords`.
pub(super) fn add_batch(
    table: &str,
    adds: &[Add],
) -> std::result::Result<Box<dyn delta_kernel::EngineData>, DeltaError> {
    let now = chrono::Utc::now().timestamp_millis();
    let names = MapFieldNames {
        entry: "key_value".to_string(),
        key: "key".to_string(),
        value: "value".to_string(),
    };
    let mut partitions = MapBuilder::new(Some(names), StringBuilder::new(), StringBuilder::new());
    for add in adds {
        for (k, v) in &add.partition {
            partitions.keys().append_value(k);
            if v.is_empty() {
                partitions.values().append_null();
            } else {
                partitions.values().append_value(v);
            }
        }
        partitions
            .append(true)
            .map_err(arrow_err(table, "building add actions"))?;
    }
    let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let records = Arc::new(Int64Array::from_iter_values(
        adds.iter().map(|a| as_i64(a.rows)),
    ));
    let stats_fields = Fields::from(vec![Field::new("numRecords", DataType::Int64, true)]);
    let stats = StructArray::new(stats_fields.clone(), vec![records as ArrayRef], None);
    let key_value = DataType::Struct(
        vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Utf8, true),
        ]
        .into(),
    );
    let schema = Schema::new(vec![
        Field::new("path", DataType::Utf8, false),
        Field::new(
            "partitionValues",
            DataType::Map(Arc::new(Field::new("key_value", key_value, false)), false),
            false,
        ),
        Field::new("size", DataType::Int64, false),
        Field::new("modificationTime", DataType::Int64, false),
        Field::new("stats", DataType::Struct(stats_fields), true),
    ]);
    let batch = RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(StringArray::from_iter_values(
                adds.iter().map(|a| a.path.as_str()),
            )),
            Arc::new(partitions.finish()),
            Arc::new(Int64Array::from_iter_values(
                adds.iter().map(|a| as_i64(a.size)),
            )),
            Arc::new(Int64Array::from_iter_values(adds.iter().map(|_| now))),
            Arc::new(stats),
        ],
    )
    .map_err(arrow_err(table, "building add actions"))?;
    Ok(Box::new(ArrowEngineData::new(batch)))
}

/// A new table's schema: the merged schemas of its first files (every column nullable, so
/// that later files may lack one), with its partition columns after them (`DATE` when
/// every value is a date, else text).
async fn table_schema(
    store: &Arc<dyn ObjectStore>,
    table: &str,
    adds: &[Add],
) -> Result<SchemaRef> {
    let mut merged = Schema::empty();
    for add in adds {
        let path = Path::from(format!("{table}/{}", add.path));
        let schema = super::footer::arrow_schema(store, &path).await?;
        let nullable = Schema::new(
            schema
                .fields()
                .iter()
                .map(|f| Field::new(f.name(), f.data_type().clone(), true))
                .collect::<Vec<_>>(),
        );
        merged = Schema::try_merge([merged, nullable])
            .map_err(|e| Error::encode(table.to_string(), e))?;
    }
    let mut fields: Vec<Field> = merged.fields().iter().map(|f| f.as_ref().clone()).collect();
    if let Some(first) = adds.first() {
        for (column, _) in &first.partition {
            if fields.iter().any(|f| f.name() == column) {
                continue;
            }
            let dates = adds.iter().all(|a| {
                a.partition.iter().any(|(c, v)| {
                    c == column && chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok()
                })
            });
            let kind = if dates {
                DataType::Date32
            } else {
                DataType::Utf8
            };
            fields.push(Field::new(column, kind, true));
        }
    }
    Ok(Arc::new(Schema::new(fields)))
}

/// The tables a commit's files belong to (the Parquet ones: those with a Delta log).
pub fn tables_of(files: &[StagedFile]) -> Vec<String> {
    files
        .iter()
        .filter(|f| f.target.ends_with(".parquet"))
        .map(|f| table_of(&f.target).to_string())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::commit::publish;
    use crate::sink::delta::TableFormat;
    use crate::sink::parquet::write_batches;
    use arrow::array::Int64Array;
    use object_store::memory::InMemory;

    async fn run(store: &Arc<dyn ObjectStore>, run_id: &str, batch: RecordBatch) {
        let staged = format!("_staging/j/{run_id}/t/j.s.parquet");
        let written = write_batches(
            store,
            &Path::from(staged.as_str()),
            batch.schema(),
            &[batch],
        )
        .await
        .unwrap();
        let (rows, bytes) = (written.rows, written.bytes);
        let commit = PendingCommit {
            job: "j".into(),
            run_id: run_id.into(),
            files: vec![StagedFile {
                table: "t".into(),
                staged,
                target: "t/j.s.parquet".into(),
                rows,
                bytes,
            }],
            deletes: vec![],
            table_format: TableFormat::Delta,
            txn_version: None,
        };
        publish(store, &commit).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_run_replaces_its_file_and_a_new_column_joins_the_table_schema() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let a = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, false)]));
        let first = RecordBatch::try_new(a, vec![Arc::new(Int64Array::from(vec![1, 2]))]).unwrap();
        run(&store, "r1", first).await;
        let ab = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, false),
            Field::new("b", DataType::Utf8, true),
        ]));
        let second = RecordBatch::try_new(
            ab,
            vec![
                Arc::new(Int64Array::from(vec![3])),
                Arc::new(StringArray::from(vec!["x"])),
            ],
        )
        .unwrap();
        run(&store, "r2", second).await;

        let (version, files) = kernel::current_files(&store, "t").await.unwrap().unwrap();
        assert_eq!(version, 1);
        assert_eq!(files, ["t/j.s.r2.delta.parquet"]);
        let engine = kernel::engine(&store);
        let schema = kernel::blocking("t", move || {
            Ok(kernel::snapshot(&engine, "t", None)?.schema())
        })
        .await
        .unwrap();
        let names: Vec<&String> = schema.fields().map(|f| f.name()).collect();
        assert_eq!(names, ["a", "b"]);
    }
}
