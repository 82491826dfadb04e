//! The sandbox HTTP server: [`TWINS`], the one list of vendor twins; the router built from
//! it (each twin's routes, the shared admin routes, request counting, the not-found answer
//! naming every twin's prefix); the environment a job needs ([`job_env`]); and
//! starting/serving on a socket. It sits on top: it imports the twins, nothing imports it.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::data::{SandboxData, SandboxOptions};
use super::faults::{FaultProfile, Faults};
use super::twin::{self, Twin};
use super::{admin, ads, throttle};

/// Every vendor twin the sandbox serves, one line each (the full path, so a new line needs
/// no import): a new twin is registered here, and declared with `mod` in `sandbox/mod.rs`,
/// nowhere else. The not-found message lists their prefixes in this order.
const TWINS: &[Twin] = &[
    super::hubspot::TWIN,
    super::salesforce::TWIN,
    super::google_ads::TWIN,
    super::meta::TWIN,
    super::linkedin::TWIN,
    super::typeform::TWIN,
    super::surveymonkey::TWIN,
];

/// The variables a job file uses to reach a sandbox serving at `base_url`
/// (`http://127.0.0.1:PORT`), with the sandbox's values: its URL
/// (`FUNNELHOUSE_SANDBOX_URL`; each twin lives under its prefix, `/hubspot`, `/google_ads`,
/// …) and every token, client id, client secret and refresh token its twins accept. The
/// hash key is not the sandbox's to give: callers set `FUNNELHOUSE_HASH_KEY` themselves.
pub fn job_env(base_url: &str) -> Vec<(&'static str, String)> {
    std::iter::once(("FUNNELHOUSE_SANDBOX_URL", base_url.to_string()))
        .chain(
            TWINS
                .iter()
                .flat_map(|t| t.env)
                .map(|&(name, value)| (name, value.to_string())),
        )
        .collect()
}

async fn count_requests(
    State(data): State<Arc<SandboxData>>,
    request: Request,
    next: Next,
) -> Response {
    data.count_request();
    next.run(request).await
}

async fn not_found(request: Request) -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({
            "error": "not_found",
            "message": format!(
                "no sandbox route for {} {}; vendors live under {}",
                request.method(),
                request.uri().path(),
                twin::prefix_list(TWINS),
            ),
        })),
    )
        .into_response()
}

impl SandboxData {
    /// Refuse every request to one endpoint with its vendor's terse 429 for `window`,
    /// counted from the first refusal: `salesforce_token` (the OAuth token endpoint),
    /// `meta` (insights), `surveymonkey` (responses) — whatever the twins declare. `false`
    /// for a name no twin declares.
    pub fn rate_limit(&self, vendor: &str, window: std::time::Duration) -> bool {
        throttle::arm_named(self, TWINS, vendor, window)
    }
}

/// All vendor routes over `data`; every request (including 401s and 404s) is counted in
/// [`SandboxData::requests_served`].
pub fn router(data: Arc<SandboxData>) -> Router {
    routes(data)
}

/// [`router`] with `faults` injected in front of every route (after request counting).
pub fn router_with_faults(data: Arc<SandboxData>, faults: Arc<Faults>) -> Router {
    let inner = routes(Arc::clone(&data)).layer(middleware::from_fn_with_state(
        faults,
        super::faults::inject,
    ));
    Router::new()
        .merge(inner)
        .layer(middleware::from_fn_with_state(data, count_requests))
}

fn routes(data: Arc<SandboxData>) -> Router {
    let shared = Router::new()
        .route("/_admin/crm/mutate", post(admin::mutate))
        .route("/_admin/crm/stats", get(admin::stats))
        .route("/_admin/restate", post(ads::restate))
        .route("/_admin/faults", post(ads::faults))
        .merge(
            Router::new()
                .route("/_admin/rate_limits", post(throttle::arm))
                .with_state((Arc::clone(&data), TWINS)),
        );
    TWINS
        .iter()
        .fold(shared, |router, twin| router.merge((twin.routes)()))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            (Arc::clone(&data), TWINS),
            throttle::enforce,
        ))
        .layer(middleware::from_fn_with_state(data.clone(), count_requests))
        .with_state(data)
}

/// Serves the sandbox on `listener` until the task is dropped or aborted.
pub async fn serve(listener: TcpListener, data: Arc<SandboxData>) -> std::io::Result<()> {
    axum::serve(listener, router(data)).await
}

/// Serves the sandbox with `faults` on `listener`.
pub async fn serve_with_faults(
    listener: TcpListener,
    data: Arc<SandboxData>,
    faults: Arc<Faults>,
) -> std::io::Result<()> {
    axum::serve(listener, router_with_faults(data, faults)).await
}

/// A sandbox serving on 127.0.0.1; dropping it stops the server.
#[derive(Debug)]
pub struct RunningSandbox {
    /// Where it listens.
    pub addr: SocketAddr,
    /// What it serves (totals, request counter).
    pub data: Arc<SandboxData>,
    /// The faults injected, when started with a profile.
    pub faults: Option<Arc<Faults>>,
    task: JoinHandle<()>,
}

impl RunningSandbox {
    /// `http://127.0.0.1:PORT`; vendor base URLs are this plus a twin's prefix (`/hubspot`,
    /// `/google_ads`, `/typeform`, …).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Generates the data for `opts` and serves it on an ephemeral port of 127.0.0.1.
pub async fn start(opts: SandboxOptions) -> std::io::Result<RunningSandbox> {
    start_with_faults(opts, None).await
}

/// Like [`start`], with a fault profile in force when `profile` is given.
pub async fn start_with_faults(
    opts: SandboxOptions,
    profile: Option<FaultProfile>,
) -> std::io::Result<RunningSandbox> {
    let data = tokio::task::spawn_blocking(move || SandboxData::generate(&opts))
        .await
        .map_err(std::io::Error::other)?;
    let data = Arc::new(data);
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    let served = data.clone();
    let faults = profile.map(Faults::new);
    let injected = faults.clone();
    let task = tokio::spawn(async move {
        let served = match injected {
            Some(faults) => serve_with_faults(listener, served, faults).await,
            None => serve(listener, served).await,
        };
        if let Err(error) = served {
            tracing::error!(%error, "sandbox server stopped");
        }
    });
    Ok(RunningSandbox {
        addr,
        data,
        faults,
        task,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    async fn small() -> RunningSandbox {
        start(SandboxOptions {
            scale: 30,
            ..SandboxOptions::default()
        })
        .await
        .expect("sandbox starts")
    }

    #[test]
    fn job_env_names_every_variable_once_with_the_sandbox_url_first() {
        let env = job_env("http://127.0.0.1:9");
        assert_eq!(
            env[0],
            ("FUNNELHOUSE_SANDBOX_URL", "http://127.0.0.1:9".into())
        );
        let names: BTreeSet<_> = env.iter().map(|(n, _)| *n).collect();
        assert_eq!(names.len(), env.len(), "a variable is named twice");
        assert!(env.contains(&(
            "SALESFORCE_CLIENT_SECRET",
            super::super::SALESFORCE_CLIENT_SECRET.into()
        )));
        assert!(env.iter().all(|(_, v)| !v.is_empty()));
        assert_eq!(env.len(), 17);
    }

    #[tokio::test]
    async fn an_unknown_path_is_told_every_twins_prefix() {
        let sandbox = small().await;
        let answer = reqwest::get(format!("{}/nowhere", sandbox.base_url()))
            .await
            .expect("sandbox answers");
        assert_eq!(answer.status(), reqwest::StatusCode::NOT_FOUND);
        let body: serde_json::Value = answer.json().await.expect("a JSON body");
        assert_eq!(
            body["message"],
            "no sandbox route for GET /nowhere; vendors live under /hubspot, /salesforce, \
             /google_ads, /google_oauth, /meta, /linkedin, /typeform and /surveymonkey"
        );
        assert_eq!(sandbox.data.requests_served(), 1);
    }

    #[tokio::test]
    async fn only_the_terse_429s_the_twins_declare_can_be_armed() {
        let sandbox = small().await;
        let window = std::time::Duration::from_secs(60);
        assert!(!sandbox.data.rate_limit("hubspot", window));
        let arm = |vendor: &str| {
            reqwest::Client::new()
                .post(format!("{}/_admin/rate_limits", sandbox.base_url()))
                .json(&json!({ "vendor": vendor, "window_ms": 60_000 }))
                .send()
        };
        let refused = arm("hubspot").await.expect("sandbox answers");
        assert_eq!(refused.status(), reqwest::StatusCode::BAD_REQUEST);
        let body: serde_json::Value = refused.json().await.expect("a JSON body");
        assert_eq!(
            body["error"],
            r#"vendor must be one of ["salesforce_token", "meta", "surveymonkey"]"#
        );
        assert!(
            arm("meta")
                .await
                .expect("sandbox answers")
                .status()
                .is_success()
        );
        let insights = format!("{}/meta/v21.0/act_1/insights", sandbox.base_url());
        let answer = reqwest::get(&insights).await.expect("sandbox answers");
        assert_eq!(answer.status(), reqwest::StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(sandbox.data.rate_limit_refusals("meta"), 1);
        assert_eq!(sandbox.data.rate_limit_refusals("surveymonkey"), 0);
    }

    #[test]
    fn no_two_twins_share_a_prefix() {
        let prefixes: Vec<&str> = TWINS
            .iter()
            .flat_map(|t| t.prefixes.iter().copied())
            .collect();
        let distinct: BTreeSet<&str> = prefixes.iter().copied().collect();
        assert_eq!(distinct.len(), prefixes.len(), "{prefixes:?}");
        assert!(
            prefixes
                .iter()
                .all(|p| p.starts_with('/') && !p.ends_with('/'))
        );
    }
}
