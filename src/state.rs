//! Incremental state: one JSON object per job and source at `_state/<job>/<source>.json`,
//! holding a watermark per stream. It is read at the start of a run and written only after
//! the run's commit, so a failed run leaves every watermark where it was. This module owns
//! the file's format (`{"streams": {"<stream>": {"watermark": "…"}}}`); everything that
//! reads one (the run, `funnelhouse runs`, a replay's recorded state) reads it through
//! [`SourceState`].

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::path::Path;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::sink::layout::{state_file_source, state_path, state_prefix};
use crate::sink::{Unreadable, read_json, write_json};

/// The state of one source: a watermark per stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceState {
    /// Stream name (e.g. `contacts`, `responses:<form>`) → its state.
    #[serde(default)]
    pub streams: BTreeMap<String, StreamState>,
}

/// Where one stream has got to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamState {
    /// The vendor-shaped watermark (an RFC 3339 timestamp or a date), inclusive; absent
    /// for a stream that has none yet (read as no watermark, never written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<String>,
}

/// What a state file is, for the error when one does not parse.
pub const UNREADABLE: Unreadable<'static> = Unreadable {
    what: "state",
    advice: "fix or delete it to re-pull in full",
};

impl SourceState {
    /// The watermark of `stream`, if any run has committed one.
    pub fn watermark(&self, stream: &str) -> Option<&str> {
        self.streams.get(stream)?.watermark.as_deref()
    }

    /// Every stream that has a watermark, with it, in stream order.
    pub fn watermarks(&self) -> impl Iterator<Item = (&str, &str)> {
        self.streams
            .iter()
            .filter_map(|(stream, s)| Some((stream.as_str(), s.watermark.as_deref()?)))
    }

    /// Set the watermark of `stream`.
    pub fn set_watermark(&mut self, stream: &str, watermark: String) {
        self.streams.insert(
            stream.to_string(),
            StreamState {
                watermark: Some(watermark),
            },
        );
    }
}

/// `watermark` held to the run's clock `now`: a watermark past `now` (a record dated in the
/// future) would make every later run ask for changes after that date and find none, so it
/// becomes `now`, written in the watermark's own shape (vendors are asked for it back):
/// RFC 3339 with or without milliseconds, with `Z` or `+00:00`, SurveyMonkey's zone-less
/// `YYYY-MM-DDTHH:MM:SS`, or a date. `None` when it is not past `now` or is not a time
/// (a stream's marker such as `complete`).
pub fn clamp_watermark(watermark: &str, now: chrono::DateTime<chrono::Utc>) -> Option<String> {
    use chrono::{NaiveDate, NaiveDateTime};
    let text = watermark.trim();
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let today = now.date_naive();
        return (date > today).then(|| today.format("%Y-%m-%d").to_string());
    }
    let (at, zone) = if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        let zone = if text.ends_with('Z') || text.ends_with('z') {
            "Z"
        } else {
            "+00:00"
        };
        (t.with_timezone(&chrono::Utc), zone)
    } else if let Ok(t) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f") {
        (t.and_utc(), "")
    } else {
        return None;
    };
    if at <= now {
        return None;
    }
    let fraction = if text.contains('.') { "%.3f" } else { "" };
    Some(
        now.format(&format!("%Y-%m-%dT%H:%M:%S{fraction}{zone}"))
            .to_string(),
    )
}

/// The committed state of a source (empty when it never committed).
pub async fn load(store: &Arc<dyn ObjectStore>, job: &str, source: &str) -> Result<SourceState> {
    load_from(store.as_ref(), &state_path(job, source)).await
}

/// The state file at `path` (a committed one, or one recorded beside landed pages); empty
/// when there is none.
pub async fn load_from(store: &dyn ObjectStore, path: &Path) -> Result<SourceState> {
    Ok(read_json(store, path, UNREADABLE)
        .await?
        .map(|(state, _)| state)
        .unwrap_or_default())
}

/// The committed state of every source of `job`, by source name in name order; empty when
/// the job keeps none.
pub async fn load_all(store: &dyn ObjectStore, job: &str) -> Result<Vec<(String, SourceState)>> {
    let prefix = state_prefix(job);
    let mut metas = store
        .list(Some(&prefix))
        .try_collect::<Vec<_>>()
        .await
        .map_err(|e| Error::storage(prefix.to_string(), e))?;
    metas.sort_by(|a, b| a.location.cmp(&b.location));
    let mut out = Vec::new();
    for meta in metas {
        let Some(source) = state_file_source(&meta.location) else {
            continue;
        };
        if let Some((state, _)) = read_json(store, &meta.location, UNREADABLE).await? {
            out.push((source.to_string(), state));
        }
    }
    Ok(out)
}

/// Replace the state of a source (one atomic put).
pub async fn save(
    store: &Arc<dyn ObjectStore>,
    job: &str,
    source: &str,
    state: &SourceState,
) -> Result<()> {
    write_json(store.as_ref(), &state_path(job, source), state).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    #[tokio::test]
    async fn round_trips_and_defaults_to_empty() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        assert_eq!(
            load(&store, "j", "s").await.unwrap(),
            SourceState::default()
        );
        let mut state = SourceState::default();
        state.set_watermark("responses:f", "2026-11-01T00:00:00Z".into());
        save(&store, "j", "s", &state).await.unwrap();
        let back = load(&store, "j", "s").await.unwrap();
        assert_eq!(back.watermark("responses:f"), Some("2026-11-01T00:00:00Z"));
        assert_eq!(back.watermark("other"), None);
    }

    #[test]
    fn watermarks_past_the_clock_come_back_to_it_in_their_own_shape() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-02T07:00:00.250Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let clamp = |w: &str| clamp_watermark(w, now);
        // HubSpot, Salesforce/Typeform, SurveyMonkey, RFC 3339 with an offset, spend dates.
        assert_eq!(
            clamp("2099-01-01T00:00:00.000Z").as_deref(),
            Some("2026-12-02T07:00:00.250Z")
        );
        assert_eq!(
            clamp("2099-01-01T00:00:00Z").as_deref(),
            Some("2026-12-02T07:00:00Z")
        );
        assert_eq!(
            clamp("9999-12-31T23:59:59").as_deref(),
            Some("2026-12-02T07:00:00")
        );
        assert_eq!(
            clamp("2099-01-01T00:00:00+00:00").as_deref(),
            Some("2026-12-02T07:00:00+00:00")
        );
        assert_eq!(clamp("2099-01-01").as_deref(), Some("2026-12-02"));
        // Not past the clock, or not a time: left alone.
        for kept in [
            "2026-12-02T07:00:00.250Z",
            "2026-12-01T23:00:00Z",
            "2026-12-02",
            "complete",
            "",
        ] {
            assert_eq!(clamp(kept), None, "{kept}");
        }
    }
}
