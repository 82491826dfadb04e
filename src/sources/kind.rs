//! What a source kind's config tells the rest of the crate ([`SourceKind`], implemented
//! beside each connector) and how the loader reads it ([`ReadKind`]). A leaf below the
//! connectors: they implement it, and `registry.rs` lists them.

use std::future::Future;

use serde::de::DeserializeOwned;

use super::{Outputs, ResolvedSecrets, SourceContext};
use crate::config::Template;
use crate::error::Result;
use crate::http::HttpSettings;
use crate::normalize::Dataset;

/// What a source kind's `[[sources]]` table declares and how it pulls.
pub trait SourceKind:
    DeserializeOwned + schemars::JsonSchema + Clone + std::fmt::Debug + Sized
{
    /// `kind = "…"` in a job file.
    const KIND: &'static str;
    /// The dataset its rows fill.
    const DATASET: Dataset;
    /// Whether its base URL is a file's `url`, which may be a path relative to the job
    /// file (resolved like every path in it).
    const URL_IS_PATH: bool = false;
    /// Whether it can re-pull an inclusive date range (`funnelhouse backfill`): its table
    /// is partitioned by day and its pull honours [`SourceContext::window`].
    const SUPPORTS_BACKFILL: bool = false;

    /// The source's unique name within the job.
    fn name(&self) -> &str;

    /// The vendor base URL template (a file source's `url`).
    fn base_url(&self) -> &Template;

    /// The keys that must hold an `http(s)://` URL: the base URL, plus `token_url` for
    /// sources that refresh OAuth tokens.
    fn http_urls(&self) -> Vec<(&'static str, &Template)> {
        vec![("base_url", self.base_url())]
    }

    /// HTTP settings.
    fn http(&self) -> &HttpSettings;

    /// Credentials, by key, as templates (resolved per run, never printed).
    fn secrets(&self) -> Vec<(&'static str, &Template)>;

    /// Kind-specific checks: `(key, problem)` pairs.
    fn check(&self) -> Vec<(&'static str, String)>;

    /// Pull into the sink of [`SourceKind::DATASET`] among `outputs`.
    fn pull<O: Outputs + Send>(
        &self,
        resolved: &ResolvedSecrets,
        ctx: &SourceContext,
        outputs: &mut O,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// How the job loader reads one kind's table (with its diagnostics).
pub trait ReadKind {
    /// The table as `T`, or `None` when it has problems (already reported).
    fn read<T: DeserializeOwned>(&mut self) -> Option<T>;
}

/// The two [`SourceKind`] accessors every config spells the same way (`name`, `http`),
/// for use inside an `impl SourceKind`.
macro_rules! name_and_http {
    () => {
        fn name(&self) -> &str {
            &self.name
        }

        fn http(&self) -> &crate::http::HttpSettings {
            &self.http
        }
    };
}
pub(crate) use name_and_http;
