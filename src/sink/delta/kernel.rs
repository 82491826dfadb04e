//! The Delta kernel over the warehouse's own object store: the engine, table URLs, the
//! blocking calls run off the async workers, and the one error type of this module.
//!
//! The store is already rooted at the warehouse, so a table's URL only carries its folder
//! (`warehouse:///<table>/`): the kernel's default engine maps a URL's path onto the store
//! it was given and ignores the scheme.

use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use delta_kernel::engine::arrow_data::ArrowEngineData;
use delta_kernel::engine_data::FilteredEngineData;
use delta_kernel::snapshot::SnapshotRef;
use delta_kernel::{FileMeta, Snapshot, StorageHandler};
use delta_kernel_default_engine::DefaultEngine;
use delta_kernel_default_engine::executor::tokio::TokioBackgroundExecutor;
use object_store::ObjectStore;
use object_store::path::Path;
use url::Url;

use crate::error::Error;

/// What this module's operations can fail with, before it becomes the crate's storage error.
#[derive(Debug, thiserror::Error)]
pub enum DeltaError {
    /// The kernel refused or failed an operation on a table.
    #[error("Delta table `{table}`: {action}: {source}")]
    Kernel {
        table: String,
        action: &'static str,
        #[source]
        source: delta_kernel::KernelError,
    },
    /// Arrow refused a batch this module built.
    #[error("Delta table `{table}`: {action}: {source}")]
    Arrow {
        table: String,
        action: &'static str,
        #[source]
        source: arrow::error::ArrowError,
    },
    /// Another writer kept winning the race for the next version.
    #[error("Delta table `{table}`: still conflicting after {attempts} attempts")]
    Contended { table: String, attempts: usize },
    /// The blocking task running a kernel call died.
    #[error("Delta table `{table}`: the kernel task failed: {source}")]
    Task {
        table: String,
        #[source]
        source: tokio::task::JoinError,
    },
}

impl From<DeltaError> for Error {
    fn from(e: DeltaError) -> Self {
        let table = match &e {
            DeltaError::Kernel { table, .. }
            | DeltaError::Arrow { table, .. }
            | DeltaError::Contended { table, .. }
            | DeltaError::Task { table, .. } => table.clone(),
        };
        Error::storage(
            format!("{table}/_delta_log"),
            crate::error::Detail::caused_by(e),
        )
    }
}

/// A kernel error of `table` while doing `action`.
pub(super) fn kernel(
    table: &str,
    action: &'static str,
) -> impl FnOnce(delta_kernel::KernelError) -> DeltaError {
    let table = table.to_string();
    move |source| DeltaError::Kernel {
        table,
        action,
        source,
    }
}

/// An Arrow error of `table` while doing `action`.
pub(super) fn arrow_err(
    table: &str,
    action: &'static str,
) -> impl FnOnce(arrow::error::ArrowError) -> DeltaError {
    let table = table.to_string();
    move |source| DeltaError::Arrow {
        table,
        action,
        source,
    }
}

/// The kernel's default engine over the warehouse's store, with its log listings sorted.
///
/// The kernel needs a table's log listed in name order. S3 and the memory store list in
/// order; a local directory does not, and the default engine only sorts for `file://` URLs,
/// which it then resolves as absolute paths — not paths inside the store it was given.
pub(super) struct Engine {
    inner: DefaultEngine<TokioBackgroundExecutor>,
    storage: Arc<dyn StorageHandler>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Engine(delta_kernel default engine, sorted listings)")
    }
}

impl delta_kernel::Engine for Engine {
    fn evaluation_handler(&self) -> Arc<dyn delta_kernel::EvaluationHandler> {
        self.inner.evaluation_handler()
    }

    fn storage_handler(&self) -> Arc<dyn StorageHandler> {
        Arc::clone(&self.storage)
    }

    fn json_handler(&self) -> Arc<dyn delta_kernel::JsonHandler> {
        self.inner.json_handler()
    }

    fn parquet_handler(&self) -> Arc<dyn delta_kernel::ParquetHandler> {
        self.inner.parquet_handler()
    }
}

/// A storage handler whose listings come in name order.
struct SortedListing(Arc<dyn StorageHandler>);

impl StorageHandler for SortedListing {
    fn list_from(
        &self,
        path: &Url,
    ) -> delta_kernel::KernelResult<delta_kernel::KernelResultIteratorStatic<FileMeta>> {
        let mut all = self
            .0
            .list_from(path)?
            .collect::<delta_kernel::KernelResult<Vec<_>>>()?;
        all.sort_unstable_by(|a, b| a.location.as_str().cmp(b.location.as_str()));
        Ok(Box::new(all.into_iter().map(Ok)))
    }

    fn read_files(
        &self,
        files: Vec<delta_kernel::FileSlice>,
    ) -> delta_kernel::KernelResult<delta_kernel::KernelResultIteratorStatic<bytes::Bytes>> {
        self.0.read_files(files)
    }

    fn copy_atomic(&self, src: &Url, dest: &Url) -> delta_kernel::KernelResult<()> {
        self.0.copy_atomic(src, dest)
    }

    fn put(
        &self,
        path: &Url,
        data: bytes::Bytes,
        overwrite: bool,
    ) -> delta_kernel::KernelResult<()> {
        self.0.put(path, data, overwrite)
    }

    fn head(&self, path: &Url) -> delta_kernel::KernelResult<FileMeta> {
        self.0.head(path)
    }

    fn delete(&self, path: &Url) -> delta_kernel::KernelResult<()> {
        self.0.delete(path)
    }
}

/// The engine over the warehouse's store.
pub(super) fn engine(store: &Arc<dyn ObjectStore>) -> Arc<Engine> {
    use delta_kernel::Engine as _;
    let inner = DefaultEngine::builder(Arc::clone(store)).build();
    let storage = Arc::new(SortedListing(inner.storage_handler()));
    Arc::new(Engine { inner, storage })
}

/// The URL the kernel knows `table` by.
pub(super) fn table_url(table: &str) -> Url {
    let mut url = Url::parse("warehouse:///").expect("a constant URL parses");
    url.set_path(&format!("/{table}/"));
    url
}

/// Whether `table` has a Delta log.
pub(super) async fn exists(
    store: &Arc<dyn ObjectStore>,
    table: &str,
) -> crate::error::Result<bool> {
    use futures::TryStreamExt;
    let log = Path::from(format!("{table}/_delta_log"));
    let first = store
        .list(Some(&log))
        .try_next()
        .await
        .map_err(|e| Error::storage(log.to_string(), e))?;
    Ok(first.is_some())
}

/// Run a blocking kernel call for `table` on the blocking pool.
pub(super) async fn blocking<T: Send + 'static>(
    table: &str,
    call: impl FnOnce() -> Result<T, DeltaError> + Send + 'static,
) -> Result<T, DeltaError> {
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|source| DeltaError::Task {
            table: table.to_string(),
            source,
        })?
}

/// The latest snapshot of `table` (or the one at `version`).
pub(super) fn snapshot(
    engine: &Engine,
    table: &str,
    version: Option<u64>,
) -> Result<SnapshotRef, DeltaError> {
    let mut builder = Snapshot::builder_for(table_url(table));
    if let Some(v) = version {
        builder = builder.at_version(v);
    }
    builder
        .build(engine)
        .map_err(kernel(table, "reading the log"))
}

/// One data file a version holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ActiveFile {
    /// Path relative to the table folder, as the log has it.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Its partition values.
    pub partition: Vec<(String, String)>,
}

/// Every data file of `snapshot`, and the scan rows to hand back to `remove_files`.
pub(super) fn active_files(
    engine: &Engine,
    table: &str,
    snapshot: &SnapshotRef,
) -> Result<Vec<(ActiveFile, ScanRow)>, DeltaError> {
    let scan = Arc::clone(snapshot)
        .scan_builder()
        .build()
        .map_err(kernel(table, "planning a scan"))?;
    let mut out = Vec::new();
    for metadata in scan
        .scan_metadata(engine)
        .map_err(kernel(table, "listing files"))?
    {
        let metadata = metadata.map_err(kernel(table, "listing files"))?;
        let (data, selected) = metadata.scan_files.into_parts();
        let batch = ArrowEngineData::try_from_engine_data(data)
            .map_err(kernel(table, "listing files"))?
            .record_batch()
            .clone();
        let batch = Arc::new(batch);
        for row in 0..batch.num_rows() {
            if !selected.get(row).copied().unwrap_or(true) {
                continue;
            }
            let file = file_at(&batch, row);
            out.push((
                file,
                ScanRow {
                    batch: Arc::clone(&batch),
                    row,
                },
            ));
        }
    }
    Ok(out)
}

/// The scan row of one active file, to remove it.
#[derive(Debug, Clone)]
pub(super) struct ScanRow {
    batch: Arc<RecordBatch>,
    row: usize,
}

/// The scan rows `rows` as the kernel's remove input: each batch with only those rows selected.
pub(super) fn removal(rows: &[ScanRow]) -> Vec<FilteredEngineData> {
    let mut by_batch: Vec<(Arc<RecordBatch>, Vec<bool>)> = Vec::new();
    for r in rows {
        let at = by_batch.iter().position(|(b, _)| Arc::ptr_eq(b, &r.batch));
        let at = at.unwrap_or_else(|| {
            by_batch.push((Arc::clone(&r.batch), vec![false; r.batch.num_rows()]));
            by_batch.len() - 1
        });
        by_batch[at].1[r.row] = true;
    }
    by_batch
        .into_iter()
        .filter_map(|(batch, selection)| {
            FilteredEngineData::try_new(
                Box::new(ArrowEngineData::new(batch.as_ref().clone())),
                selection,
            )
            .ok()
        })
        .collect()
}

fn file_at(batch: &RecordBatch, row: usize) -> ActiveFile {
    let path = batch
        .column_by_name("path")
        .and_then(|c| c.as_string_opt::<i32>())
        .filter(|c| c.is_valid(row))
        .map(|c| c.value(row).to_string())
        .unwrap_or_default();
    let size = batch
        .column_by_name("size")
        .and_then(|c| c.as_primitive_opt::<arrow::datatypes::Int64Type>())
        .filter(|c| c.is_valid(row))
        .map_or(0, |c| u64::try_from(c.value(row)).unwrap_or(0));
    let mut partition = Vec::new();
    if let Some(map) = batch
        .column_by_name("fileConstantValues")
        .and_then(|c| c.as_struct_opt())
        .and_then(|s| s.column_by_name("partitionValues"))
        .and_then(|c| c.as_map_opt())
        .filter(|m| m.is_valid(row))
    {
        let entries = map.value(row);
        let keys = entries.column(0).as_string::<i32>();
        let values = entries.column(1).as_string::<i32>();
        for i in 0..entries.len() {
            let value = if values.is_valid(i) {
                values.value(i).to_string()
            } else {
                String::new()
            };
            partition.push((keys.value(i).to_string(), value));
        }
    }
    ActiveFile {
        path,
        size,
        partition,
    }
}

/// The latest version of `table` and the data files it holds (paths in the warehouse), as
/// the kernel reads its log; `None` when the table has no log.
pub async fn current_files(
    store: &Arc<dyn ObjectStore>,
    table: &str,
) -> crate::error::Result<Option<(u64, Vec<String>)>> {
    if !exists(store, table).await? {
        return Ok(None);
    }
    let engine = engine(store);
    let name = table.to_string();
    let (version, files) = blocking(table, move || {
        let snapshot = snapshot(&engine, &name, None)?;
        let files = active_files(&engine, &name, &snapshot)?
            .into_iter()
            .map(|(file, _)| format!("{name}/{}", file.path))
            .collect::<Vec<_>>();
        Ok((snapshot.version(), files))
    })
    .await?;
    Ok(Some((version, files)))
}
