//! Writing a page of records as a JSON answer: serialized once, with sonic-rs's vectorised
//! string escaping, into a buffer sized from the route's previous page. The sandbox serves
//! from the same cores as the client it is measuring, and growing a 100 KB body by doubling
//! and escaping it byte by byte were a quarter of its work per HubSpot page.

use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The size of a route's last answer, so the next one is written into a buffer that needs
/// no growing (pages of one route are alike).
#[derive(Debug, Default)]
pub(crate) struct LastSize(AtomicUsize);

impl LastSize {
    pub(crate) const fn new() -> Self {
        Self(AtomicUsize::new(0))
    }
}

/// `body` as an `application/json` answer with `status`, written the way `axum::Json` writes
/// it (the same bytes: see the tests), into a buffer of the route's last size plus an eighth.
pub(crate) fn json_page<T: Serialize>(status: StatusCode, body: &T, last: &LastSize) -> Response {
    let mut bytes = page_buffer(last);
    match sonic_rs::to_writer(&mut bytes, body) {
        Ok(()) => json_answer(status, bytes, last),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the sandbox could not write its answer: {e}"),
        )
            .into_response(),
    }
}

/// An empty buffer for the route's next answer: its last size plus an eighth.
pub(crate) fn page_buffer(last: &LastSize) -> Vec<u8> {
    let hint = last.0.load(Ordering::Relaxed);
    Vec::with_capacity(hint + hint / 8 + 128)
}

/// JSON already written as an `application/json` answer with `status`; its size is kept
/// for the route's next buffer.
pub(crate) fn json_answer(status: StatusCode, bytes: Vec<u8>, last: &LastSize) -> Response {
    last.0.store(bytes.len(), Ordering::Relaxed);
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[derive(Serialize)]
    struct Record<'a> {
        id: String,
        name: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        gone: Option<String>,
        missing: Option<String>,
        score: f64,
        count: i64,
        flags: Vec<bool>,
        properties: BTreeMap<&'a str, Option<String>>,
        value: serde_json::Value,
    }

    async fn body_of(response: Response) -> (StatusCode, String, Vec<u8>) {
        let status = response.status();
        let kind = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("a body");
        (status, kind, bytes.to_vec())
    }

    #[tokio::test]
    async fn the_answer_is_the_one_axum_json_writes_byte_for_byte() {
        let awkward = "quote \" backslash \\ slash / tab \t newline \n bell \u{7} nul \u{0} \
                       del \u{7f} é ü 漢字 😀 \u{2028} end";
        let records: Vec<Record<'_>> = (0..50)
            .map(|i| Record {
                id: format!("{i:06}"),
                name: awkward,
                gone: (i % 3 == 0).then(|| format!("gone {i}")),
                missing: (i % 2 == 0).then(|| awkward.to_owned()),
                score: [0.0, -0.0, 0.1, 1.0, 1e21, 1e-7, 123.456, f64::MAX][i % 8],
                count: [0, -1, i64::MAX, i64::MIN][i % 4],
                flags: vec![true, false],
                properties: BTreeMap::from([
                    ("email", Some(format!("a.{i}@example.com"))),
                    ("empty", Some(String::new())),
                    ("none", None),
                ]),
                value: serde_json::json!({"nested": [1, 2.5, "x\"y", null], "b": {"c": i}}),
            })
            .collect();
        let last = LastSize::new();
        for status in [StatusCode::OK, StatusCode::BAD_REQUEST] {
            let ours = body_of(json_page(status, &records, &last)).await;
            let axum = body_of((status, axum::Json(&records)).into_response()).await;
            assert_eq!(ours.0, axum.0);
            assert_eq!(ours.1, axum.1);
            assert_eq!(
                String::from_utf8_lossy(&ours.2),
                String::from_utf8_lossy(&axum.2)
            );
        }
        assert!(last.0.load(Ordering::Relaxed) > 10_000, "the size is kept");
    }
}
