//! The sandbox HTTP server: the axum router over all vendor routes, request counting, and
//! starting/serving on a socket. It sits on top: it imports the handlers, nothing imports it.

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
use super::{
    admin, ads, google_ads, hubspot, hubspot_search, linkedin, meta, salesforce, surveymonkey,
    typeform,
};

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
                "no sandbox route for {} {}; vendors live under /hubspot, /salesforce, /google_ads, /google_oauth, /meta, /linkedin, /typeform and /surveymonkey",
                request.method(),
                request.uri().path()
            ),
        })),
    )
        .into_response()
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
    Router::new()
        .route(hubspot::CONTACTS_PATH, get(hubspot::list_contacts))
        .route(hubspot::PROPERTIES_PATH, get(hubspot::list_properties))
        .route(
            hubspot_search::SEARCH_PATH,
            post(hubspot_search::search_contacts),
        )
        .route("/salesforce/services/oauth2/token", post(salesforce::token))
        .route(
            "/salesforce/services/data/{version}/{endpoint}",
            get(salesforce::query),
        )
        .route(
            "/salesforce/services/data/{version}/{endpoint}/{cursor}",
            get(salesforce::query_more),
        )
        .route(
            "/salesforce/services/data/{version}/sobjects/{object}/describe",
            get(salesforce::describe),
        )
        .route("/_admin/crm/mutate", post(admin::mutate))
        .route("/_admin/crm/hubspot_limits", post(admin::hubspot_limits))
        .route("/_admin/crm/salesforce", post(admin::salesforce_faults))
        .route("/_admin/crm/stats", get(admin::stats))
        .route(
            "/google_ads/{version}/customers/{customer_id}/googleAds:search",
            post(google_ads::search),
        )
        .route(
            "/google_ads/{version}/customers/{customer_id}/googleAds:searchStream",
            post(google_ads::search_stream),
        )
        .route(
            "/typeform/forms/{form_id}/responses",
            get(typeform::list_responses),
        )
        .route("/typeform/forms/{form_id}", get(typeform::form_definition))
        .route(
            "/surveymonkey/v3/surveys/{survey_id}/details",
            get(surveymonkey::details),
        )
        .route(
            "/surveymonkey/v3/surveys/{survey_id}/responses/bulk",
            get(surveymonkey::bulk),
        )
        .route("/google_oauth/token", post(google_ads::token))
        .route("/meta/{version}/{account}/insights", get(meta::insights))
        .route("/linkedin/rest/adAccounts/{id}", get(linkedin::ad_account))
        .route("/linkedin/rest/adAnalytics", get(linkedin::ad_analytics))
        .route(
            "/linkedin/oauth/v2/accessToken",
            post(linkedin::access_token),
        )
        .route("/_admin/restate", post(ads::restate))
        .route("/_admin/faults", post(ads::faults))
        .route("/_admin/rate_limits", post(super::throttle::arm))
        .route("/_admin/crm/hubspot_redate", post(admin::hubspot_redate))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            data.clone(),
            super::throttle::enforce,
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
    /// `http://127.0.0.1:PORT`; vendor base URLs are this plus `/hubspot`, `/google_ads`,
    /// `/typeform`.
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
