//! What a vendor twin declares about itself, in one place: the path prefixes it serves, its
//! routes (admin routes included), the variables a job needs to reach it, and the terse 429
//! it answers on demand. Each twin module has one `pub(crate) const TWIN: Twin`; the list of
//! them in `server.rs` is the only place a twin is registered — the router, `job_env`, the
//! not-found message and the rate limits that can be armed are built from it.
//!
//! A twin also keeps whatever state only it needs (a request counter, its own records) for
//! itself: a type of its module implementing [`TwinState`](super::data::TwinState), made
//! from the data (options, shared world) on first use by
//! [`SandboxData::twin_state`](super::data::SandboxData::twin_state). The shared world
//! (contacts, spend, the survey) stays in `data.rs`.

use std::sync::Arc;

use axum::Router;
use axum::response::Response;

use super::data::SandboxData;

/// One vendor twin.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Twin {
    /// The path prefixes it serves (`/hubspot`); the first one, after the sandbox's URL, is
    /// the vendor base URL a job names. The not-found message lists them.
    pub(crate) prefixes: &'static [&'static str],
    /// Its routes, under its prefixes, and its own `/_admin/…` routes.
    pub(crate) routes: fn() -> Router<Arc<SandboxData>>,
    /// The variables a job file reads to reach it, with the values it accepts: tokens,
    /// client ids, secrets, refresh tokens.
    pub(crate) env: &'static [(&'static str, &'static str)],
    /// The terse 429 it can be told to answer for a while (`POST /_admin/rate_limits`), if
    /// it has one.
    pub(crate) terse_429: Option<Terse429>,
}

/// A 429 the way a vendor really sends it on one endpoint — saying little or nothing
/// about when to come back — armed on demand for a window of time (`limits.rs`) and
/// answered before the request reaches the twin (`throttle.rs`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Terse429 {
    /// Its name in `POST /_admin/rate_limits` and `SandboxData::rate_limit`.
    pub(crate) name: &'static str,
    /// Whether a request path is the endpoint it refuses.
    pub(crate) endpoint: fn(&str) -> bool,
    /// The refusal.
    pub(crate) answer: fn() -> Response,
}

/// `/a, /b and /c`: every prefix of `twins`, in order, for a message.
pub(crate) fn prefix_list(twins: &[Twin]) -> String {
    let prefixes: Vec<&str> = twins
        .iter()
        .flat_map(|t| t.prefixes.iter().copied())
        .collect();
    match prefixes.split_last() {
        None => String::new(),
        Some((last, [])) => (*last).to_string(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn twin(prefixes: &'static [&'static str]) -> Twin {
        Twin {
            prefixes,
            routes: Router::new,
            env: &[],
            terse_429: None,
        }
    }

    #[test]
    fn prefixes_read_as_a_list() {
        assert_eq!(prefix_list(&[]), "");
        assert_eq!(prefix_list(&[twin(&["/a"])]), "/a");
        assert_eq!(
            prefix_list(&[twin(&["/a", "/b"]), twin(&["/c"])]),
            "/a, /b and /c"
        );
    }
}
