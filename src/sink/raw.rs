//! Landed raw pages (`_raw/<job>/<run_id>/<source>/`, see [`super::layout`]) beside the warehouse: the state and clock
//! a landed run started from, kept for faithful replays, and pruning past retention.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use object_store::{ObjectStore, ObjectStoreExt};

use super::document::{Unreadable, read_json, write_json};
use super::layout::{raw_prefix, recorded_clock_path, recorded_state_path};
use crate::error::{Error, Result};
use crate::state::SourceState;

const UNREADABLE_CLOCK: Unreadable<'static> = Unreadable {
    what: "recorded clock",
    advice: "",
};
const UNREADABLE_STATE: Unreadable<'static> = Unreadable {
    what: "recorded state",
    advice: "",
};

/// A landed run keeps the state it started from beside its pages, for faithful replays.
pub async fn record_state(
    store: &Arc<dyn ObjectStore>,
    prefix: &str,
    state: &SourceState,
) -> Result<()> {
    write_json(store.as_ref(), &recorded_state_path(prefix), state).await
}

/// The clock and window a landed run pulled with, kept beside its `_state.json` as
/// `_clock.json`: a replay on a later day uses them rather than its own clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecordedClock {
    /// The recorded run's "now".
    pub now: DateTime<Utc>,
    /// A backfill's range, when the recorded run was one.
    pub window: Option<(NaiveDate, NaiveDate)>,
}

/// Keep `clock` beside a landed run's pages (see [`RecordedClock`]).
pub async fn record_clock(
    store: &Arc<dyn ObjectStore>,
    prefix: &str,
    clock: &RecordedClock,
) -> Result<()> {
    write_json(store.as_ref(), &recorded_clock_path(prefix), clock).await
}

/// The recorded clock of one source's pages; `None` for recordings made before clocks were
/// kept (and hand-written ones): those replay on the current clock.
pub async fn load_recorded_clock(
    store: &Arc<dyn ObjectStore>,
    prefix: &str,
) -> Result<Option<RecordedClock>> {
    let path = recorded_clock_path(prefix);
    Ok(read_json(store.as_ref(), &path, UNREADABLE_CLOCK)
        .await?
        .map(|(clock, _)| clock))
}

/// The state a landed run started from; the default for recordings without one.
pub async fn load_recorded_state(
    store: &Arc<dyn ObjectStore>,
    prefix: &str,
) -> Result<SourceState> {
    let path = recorded_state_path(prefix);
    Ok(read_json(store.as_ref(), &path, UNREADABLE_STATE)
        .await?
        .map(|(state, _)| state)
        .unwrap_or_default())
}

/// Delete landed runs (`_raw/<job>/<run_id>/`) older than `keep_days`; returns how many.
pub async fn prune_raw(
    store: &Arc<dyn ObjectStore>,
    job: &str,
    now: DateTime<Utc>,
    keep_days: u32,
) -> Result<usize> {
    use futures::TryStreamExt;
    let root = raw_prefix(job);
    let listing = store
        .list_with_delimiter(Some(&root))
        .await
        .map_err(|e| Error::storage(root.to_string(), e))?;
    let cutoff = now - chrono::Duration::days(i64::from(keep_days));
    let mut pruned = 0;
    for run in listing.common_prefixes {
        let Some(run_id) = run.filename() else {
            continue;
        };
        let started = run_id
            .get(..16)
            .and_then(|t| chrono::NaiveDateTime::parse_from_str(t, "%Y%m%dT%H%M%SZ").ok());
        if started.is_none_or(|t| t.and_utc() >= cutoff) {
            continue;
        }
        let objects: Vec<_> = store
            .list(Some(&run))
            .try_collect()
            .await
            .map_err(|e| Error::storage(run.to_string(), e))?;
        for meta in objects {
            store
                .delete(&meta.location)
                .await
                .map_err(|e| Error::storage(meta.location.to_string(), e))?;
        }
        pruned += 1;
    }
    Ok(pruned)
}
