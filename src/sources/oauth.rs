//! OAuth bearer tokens for sources: a fixed access token, or one obtained from a refresh
//! token (`grant_type=refresh_token` at the vendor's token endpoint) at the first request
//! and again once after a 401. The token endpoint's answer is never landed raw or logged;
//! besides the access token, its `instance_url` (where a Salesforce org lives) is kept.

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;
use tokio::sync::Mutex;

use super::SourceContext;
use crate::config::Secret;
use crate::error::{Error, Result};
use crate::http::{Verdict, body_excerpt};

/// The refresh-token grant of one source.
#[derive(Debug)]
pub struct RefreshGrant {
    /// Token endpoint URL.
    pub token_url: String,
    /// OAuth client id.
    pub client_id: Secret,
    /// OAuth client secret.
    pub client_secret: Secret,
    /// The long-lived refresh token.
    pub refresh_token: Secret,
}

/// How a token endpoint's answers are judged.
pub type TokenVerdict = fn(StatusCode, &HeaderMap, &[u8]) -> Verdict;

/// What the token source holds: the access token and, when the token endpoint names one,
/// the instance its data calls go to.
#[derive(Debug)]
pub struct Granted {
    /// The access token.
    pub token: Secret,
    /// The answer's `instance_url` (Salesforce); `None` for a fixed token or a replay.
    pub instance_url: Option<String>,
}

impl Granted {
    fn copy(&self) -> Self {
        Granted {
            token: Secret::new(self.token.expose().to_string()),
            instance_url: self.instance_url.clone(),
        }
    }
}

/// Where a source's access token comes from.
#[derive(Debug)]
pub struct OAuthToken {
    current: Mutex<Option<Granted>>,
    grant: Option<RefreshGrant>,
    verdict: TokenVerdict,
}

impl OAuthToken {
    /// A token source: `fixed` is used first when given; `grant` refreshes.
    pub fn new(fixed: Option<Secret>, grant: Option<RefreshGrant>) -> Self {
        OAuthToken {
            current: Mutex::new(fixed.map(|token| Granted {
                token,
                instance_url: None,
            })),
            grant,
            verdict: token_verdict,
        }
    }

    /// The token source judging its token endpoint's answers with `verdict` instead of the
    /// generic OAuth rule (a vendor whose refusals deserve their own advice).
    pub fn with_token_verdict(mut self, verdict: TokenVerdict) -> Self {
        self.verdict = verdict;
        self
    }

    /// The token endpoint, when the token refreshes.
    pub fn token_url(&self) -> Option<&str> {
        self.grant.as_ref().map(|g| g.token_url.as_str())
    }

    /// The current grant, obtained first when there is none yet (for calls that are not
    /// pages, and for the instance a grant names).
    pub async fn granted(&self, ctx: &SourceContext) -> Result<Granted> {
        self.access(ctx, false).await
    }

    /// Fetch a page of `endpoint` with the current access token (`build` makes the
    /// request from it); on a 401 with a refresh grant, refresh once and try again.
    pub async fn fetch(
        &self,
        ctx: &SourceContext,
        endpoint: &str,
        classify: &(dyn Fn(StatusCode, &HeaderMap, &[u8]) -> Verdict + Sync),
        build: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Result<Bytes> {
        let mut refreshed = false;
        loop {
            let access = self.access(ctx, false).await?;
            match ctx
                .pages
                .fetch_classified(endpoint, build(access.token.expose()), classify)
                .await
            {
                Err(Error::Http {
                    status: Some(401), ..
                }) if !refreshed && self.grant.is_some() => {
                    tracing::info!(source = %ctx.source_name, "access token rejected; refreshing it once");
                    self.access(ctx, true).await?;
                    refreshed = true;
                }
                other => return other,
            }
        }
    }

    /// The access token, refreshed first when there is none yet or `force` is set.
    async fn access(&self, ctx: &SourceContext, force: bool) -> Result<Granted> {
        let mut current = self.current.lock().await;
        if let Some(granted) = current.as_ref()
            && !force
        {
            return Ok(granted.copy());
        }
        let Some(grant) = &self.grant else {
            return Err(Error::Http {
                source_name: ctx.source_name.clone(),
                url: String::new(),
                message: "no access token and no refresh token configured".into(),
                status: None,
                source: None,
            });
        };
        // A replay sends nothing: any token will do.
        let fresh = if ctx.pages.is_replay() {
            Granted {
                token: Secret::new("replay".into()),
                instance_url: None,
            }
        } else {
            refresh(ctx, grant, self.verdict).await?
        };
        *current = Some(fresh.copy());
        Ok(fresh)
    }
}

/// `POST token_url` with the refresh-token grant → `access_token` (and `instance_url` when
/// given). `verdict` judges the answer (`invalid_grant` is fatal).
async fn refresh(
    ctx: &SourceContext,
    grant: &RefreshGrant,
    verdict: TokenVerdict,
) -> Result<Granted> {
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "refresh_token")
        .append_pair("client_id", grant.client_id.expose())
        .append_pair("client_secret", grant.client_secret.expose())
        .append_pair("refresh_token", grant.refresh_token.expose())
        .finish();
    let request = ctx
        .http
        .inner()
        .post(&grant.token_url)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(form);
    // Through the client (retries, counting) but never through raw landing: the body is a
    // credential.
    let response = ctx.http.send_classified(request, &verdict).await?;
    let body: Value = crate::json::from_slice(&response.body).map_err(|_| Error::Protocol {
        source_name: ctx.source_name.clone(),
        url: grant.token_url.clone(),
        message: "the token endpoint did not answer JSON".into(),
    })?;
    let token = body
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(|t| Secret::new(t.to_string()))
        .ok_or_else(|| Error::Protocol {
            source_name: ctx.source_name.clone(),
            url: grant.token_url.clone(),
            message: "the token endpoint's answer has no access_token".into(),
        })?;
    tracing::debug!(source = %ctx.source_name, "access token refreshed");
    Ok(Granted {
        token,
        instance_url: body
            .get("instance_url")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// Token endpoint errors: `invalid_grant` / `invalid_client` (400/401) are fatal with the
/// OAuth error code (its body holds no secret); a 429 waits out the endpoint's rate limit;
/// 5xx retry.
fn token_verdict(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
    if status.is_success() {
        return Verdict::Accept;
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Verdict::RateLimited(crate::http::retry_after(headers));
    }
    if status.is_server_error() {
        return Verdict::Retry(crate::http::retry_after(headers));
    }
    let code = crate::json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| body_excerpt(body));
    Verdict::Fatal(format!(
        "token refresh failed with HTTP {}: {code} (renew the refresh token or check the client id and secret)",
        status.as_u16()
    ))
}

/// The credential keys of a source with OAuth: `access_token` and/or the refresh trio, plus
/// `token_url` (resolved like a credential, since it may name the sandbox through `${…}`).
pub fn declared_secrets<'a>(
    access_token: &'a Option<crate::config::Template>,
    refresh_token: &'a Option<crate::config::Template>,
    client_id: &'a Option<crate::config::Template>,
    client_secret: &'a Option<crate::config::Template>,
    token_url: &'a crate::config::Template,
) -> Vec<(&'static str, &'a crate::config::Template)> {
    let mut out = Vec::new();
    for (key, value) in [
        ("access_token", access_token),
        ("refresh_token", refresh_token),
        ("client_id", client_id),
        ("client_secret", client_secret),
    ] {
        if let Some(t) = value {
            out.push((key, t));
        }
    }
    if refresh_token.is_some() {
        out.push(("token_url", token_url));
    }
    out
}

/// `(key, problem)` when the OAuth settings are incomplete.
pub fn check_credentials(
    access_token: &Option<crate::config::Template>,
    refresh_token: &Option<crate::config::Template>,
    client_id: &Option<crate::config::Template>,
    client_secret: &Option<crate::config::Template>,
) -> Vec<(&'static str, String)> {
    let mut problems = Vec::new();
    let given = [refresh_token, client_id, client_secret]
        .iter()
        .filter(|t| t.is_some())
        .count();
    if given != 0 && given != 3 {
        problems.push((
            "refresh_token",
            "refresh_token, client_id and client_secret go together".to_string(),
        ));
    }
    if access_token.is_none() && given == 0 {
        problems.push((
            "access_token",
            "set access_token, or refresh_token with client_id and client_secret".to_string(),
        ));
    }
    problems
}

/// The token source of a source whose credentials were resolved under the keys of
/// [`declared_secrets`].
pub fn from_resolved(resolved: &super::ResolvedSecrets) -> OAuthToken {
    let copy = |key: &str| {
        resolved
            .optional_secret(key)
            .map(|s| Secret::new(s.expose().to_string()))
    };
    let grant = match (
        copy("refresh_token"),
        copy("client_id"),
        copy("client_secret"),
    ) {
        (Some(refresh_token), Some(client_id), Some(client_secret)) => Some(RefreshGrant {
            token_url: copy("token_url")
                .map(|u| u.expose().to_string())
                .unwrap_or_default(),
            client_id,
            client_secret,
            refresh_token,
        }),
        _ => None,
    };
    OAuthToken::new(copy("access_token"), grant)
}
