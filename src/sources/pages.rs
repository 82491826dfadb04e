//! How a source gets its pages. Live: over HTTP through the shared client, each body also
//! landed zstd-compressed under `_raw/<job>/<run_id>/<source>/<endpoint>/page-NNNNNN.json.zst`
//! when raw landing is on. Replay: from recorded pages in that same layout (plain `.json` or
//! `.json.zst`), read in name order with no network at all — so a fixed rule can be re-applied
//! without spending vendor quota. Sources run the same loop either way: replay hands back the
//! next recorded body of the endpoint instead of sending the request.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::http::{HttpClient, Verdict, default_verdict};
use crate::normalize::{PersonalDataHasher, scrub_personal_data, scrub_text};

/// Where recorded pages are written during a live run.
#[derive(Debug, Clone)]
pub struct RawLanding {
    /// The warehouse store.
    pub store: Arc<dyn ObjectStore>,
    /// `_raw/<job>/<run_id>/<source>`.
    pub prefix: String,
    /// Personal identifiers in a body are replaced by their keyed hash before it is stored.
    pub hasher: PersonalDataHasher,
    /// Store bodies exactly as received, uncompressed (recording synthetic sandbox pages
    /// for benchmarks and fixtures); never for real vendor data.
    pub verbatim: bool,
}

/// Recorded pages to replay, rooted at a directory (or warehouse prefix) in the §9 layout.
#[derive(Debug, Clone)]
pub struct ReplaySource {
    /// The store holding the pages.
    pub store: Arc<dyn ObjectStore>,
    /// `<root>/<source>`, the folder holding `<endpoint>/page-…` files.
    pub prefix: String,
    /// `store` itself when it is a local directory: a page is then opened, read and
    /// unzipped in one blocking call, not two hops through the blocking pool and a
    /// `stat` (a million-lead replay reads some 13,000 pages).
    pub local: Option<Arc<LocalFileSystem>>,
}

/// The page channel of one source in one run.
#[derive(Debug)]
pub struct Pages {
    source_name: String,
    mode: Mode,
    /// Next page number per endpoint (1-based), for landing and replay alike.
    counters: Mutex<HashMap<String, usize>>,
    /// Replay: per endpoint, the sorted file list (listed once) and the pages being read
    /// ahead.
    listings: Mutex<HashMap<String, Listing>>,
    pages: AtomicU64,
}

#[derive(Debug)]
#[allow(clippy::large_enum_variant, reason = "one per source per run")]
enum Mode {
    Live {
        http: HttpClient,
        landing: Option<RawLanding>,
    },
    Replay(ReplaySource),
}

impl Pages {
    /// Pages from the vendor over HTTP, optionally landed raw.
    pub fn live(source_name: &str, http: HttpClient, landing: Option<RawLanding>) -> Self {
        Self::new(source_name, Mode::Live { http, landing })
    }

    /// Pages from a recording.
    pub fn replay(source_name: &str, replay: ReplaySource) -> Self {
        Self::new(source_name, Mode::Replay(replay))
    }

    fn new(source_name: &str, mode: Mode) -> Self {
        Pages {
            source_name: source_name.to_string(),
            mode,
            counters: Mutex::new(HashMap::new()),
            listings: Mutex::new(HashMap::new()),
            pages: AtomicU64::new(0),
        }
    }

    /// Is this a replay (no network)?
    pub fn is_replay(&self) -> bool {
        matches!(self.mode, Mode::Replay(_))
    }

    /// Pages fetched or replayed so far.
    pub fn count(&self) -> u64 {
        self.pages.load(Ordering::Relaxed)
    }

    /// Pages fetched or replayed so far per endpoint (`hubspot/contacts_search=1 …`, in
    /// endpoint order), for the log: which of a source's streams cost the requests.
    pub async fn per_endpoint(&self) -> String {
        let counters = self.counters.lock().await;
        let mut endpoints: Vec<_> = counters.iter().collect();
        endpoints.sort();
        endpoints
            .iter()
            .map(|(endpoint, n)| format!("{endpoint}={n}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The next page of `endpoint` (a fixed name such as `hubspot/contacts`): sends `request`
    /// live, or returns the next recorded body when replaying.
    pub async fn fetch(&self, endpoint: &str, request: reqwest::RequestBuilder) -> Result<Bytes> {
        self.fetch_classified(endpoint, request, &default_verdict)
            .await
    }

    /// Like [`Pages::fetch`] with the vendor's own classification of responses.
    pub async fn fetch_classified(
        &self,
        endpoint: &str,
        request: reqwest::RequestBuilder,
        classify: &(dyn Fn(StatusCode, &HeaderMap, &[u8]) -> Verdict + Sync),
    ) -> Result<Bytes> {
        Ok(self.fetch_page(endpoint, request, classify).await?.body)
    }

    /// Like [`Pages::fetch_classified`], landing `scrub(body)` instead of the body itself
    /// (Meta's `paging.next` links embed the access token: it must never reach `_raw/`).
    /// The caller gets the body as received.
    pub async fn fetch_scrubbed(
        &self,
        endpoint: &str,
        request: reqwest::RequestBuilder,
        classify: &(dyn Fn(StatusCode, &HeaderMap, &[u8]) -> Verdict + Sync),
        scrub: &(dyn Fn(&Bytes) -> Bytes + Sync),
    ) -> Result<Bytes> {
        Ok(self
            .fetch_page_scrubbed(endpoint, request, classify, scrub)
            .await?
            .body)
    }

    /// The next page with its response headers (rate-limit headers drive some vendors'
    /// pacing); a replayed page has no headers.
    pub async fn fetch_page(
        &self,
        endpoint: &str,
        request: reqwest::RequestBuilder,
        classify: &(dyn Fn(StatusCode, &HeaderMap, &[u8]) -> Verdict + Sync),
    ) -> Result<Page> {
        self.fetch_page_scrubbed(endpoint, request, classify, &|body| body.clone())
            .await
    }

    async fn fetch_page_scrubbed(
        &self,
        endpoint: &str,
        request: reqwest::RequestBuilder,
        classify: &(dyn Fn(StatusCode, &HeaderMap, &[u8]) -> Verdict + Sync),
        scrub: &(dyn Fn(&Bytes) -> Bytes + Sync),
    ) -> Result<Page> {
        let number = {
            let mut counters = self.counters.lock().await;
            let n = counters.entry(endpoint.to_string()).or_insert(0);
            *n += 1;
            *n
        };
        self.pages.fetch_add(1, Ordering::Relaxed);
        match &self.mode {
            Mode::Live { http, landing } => {
                let response = http.send_classified(request, classify).await?;
                if let Some(landing) = landing {
                    land(landing, endpoint, number, &scrub(&response.body)).await?;
                }
                crate::pause::point("pull").await;
                Ok(Page {
                    body: response.body,
                    headers: response.headers,
                })
            }
            Mode::Replay(replay) => {
                let body = self.replayed(replay, endpoint, number).await?;
                // A recorded page stands for a 200 answer: the vendor's own checks that an
                // answer belongs to its request (see `answer.rs`) hold for it too. A live run
                // asks again after a retry verdict and may then accept the same answer (an
                // empty page like the one before), so a page is offered twice here too.
                let offer = || classify(StatusCode::OK, &HeaderMap::new(), &body);
                let verdict = match offer() {
                    Verdict::Retry(_) => offer(),
                    verdict => verdict,
                };
                match verdict {
                    Verdict::Accept => {}
                    Verdict::Retry(_) | Verdict::RateLimited(_) | Verdict::Fatal(_) => {
                        return Err(Error::Recording {
                            source_name: self.source_name.clone(),
                            endpoint: endpoint.to_string(),
                            message: format!(
                                "has a page {number} that is not the answer to this request (a page out of place or of another recording)"
                            ),
                        });
                    }
                }
                Ok(Page {
                    body,
                    headers: HeaderMap::new(),
                })
            }
        }
    }

    async fn replayed(
        &self,
        replay: &ReplaySource,
        endpoint: &str,
        number: usize,
    ) -> Result<Bytes> {
        let folder = Path::from(format!("{}/{endpoint}", replay.prefix));
        let reading = {
            let mut listings = self.listings.lock().await;
            if !listings.contains_key(endpoint) {
                let mut files: Vec<Path> = replay
                    .store
                    .list(Some(&folder))
                    .map_ok(|meta| meta.location)
                    .try_collect()
                    .await
                    .map_err(|e| Error::storage(folder.to_string(), e))?;
                files.retain(|p| {
                    let name = p.filename().unwrap_or("");
                    name.starts_with("page-")
                        && (name.ends_with(".json") || name.ends_with(".json.zst"))
                });
                files.sort_by(|a, b| a.as_ref().cmp(b.as_ref()));
                self.check_numbering(endpoint, &files)?;
                listings.insert(
                    endpoint.to_string(),
                    Listing {
                        files,
                        ahead: VecDeque::new(),
                    },
                );
            }
            let listing = listings.get_mut(endpoint).expect("listed above");
            listing.take(replay, number)
        };
        let Some(reading) = reading else {
            return Err(Error::Protocol {
                source_name: self.source_name.clone(),
                url: folder.to_string(),
                message: format!(
                    "the recording has no page {number} for `{endpoint}`: the recorded pull ended earlier than this job asks (different job settings?)"
                ),
            });
        };
        reading
            .await
            .map_err(|e| Error::storage(folder.to_string(), format!("reading stopped: {e}")))?
    }
}

/// How many recorded pages of an endpoint are read (and unzipped) ahead of the one asked
/// for: a cursor-paged source asks for its pages one after another, and a replay knows them
/// all, so the next ones are read while this one is decoded.
const REPLAY_READ_AHEAD: usize = 3;

/// A replayed endpoint: its page files, and the next ones being read.
#[derive(Debug)]
struct Listing {
    files: Vec<Path>,
    /// Page number (1-based) → its read, in order.
    ahead: VecDeque<(usize, JoinHandle<Result<Bytes>>)>,
}

impl Listing {
    /// The read of page `number` (started now unless already ahead), and the reads of the
    /// pages after it started; `None` past the last page.
    fn take(&mut self, replay: &ReplaySource, number: usize) -> Option<JoinHandle<Result<Bytes>>> {
        let read = |n: usize| {
            let path = self.files.get(n - 1)?.clone();
            Some(match &replay.local {
                Some(local) => read_local_page(local, path),
                None => tokio::spawn(read_page(Arc::clone(&replay.store), path)),
            })
        };
        // A page asked for again or out of order (never by the sources' loops) is read anew.
        while self.ahead.front().is_some_and(|(n, _)| *n < number) {
            if let Some((_, stale)) = self.ahead.pop_front() {
                stale.abort();
            }
        }
        let this = match self.ahead.front() {
            Some((n, _)) if *n == number => self.ahead.pop_front().map(|(_, r)| r),
            _ => read(number),
        }?;
        let mut next = self.ahead.back().map_or(number, |(n, _)| *n) + 1;
        while self.ahead.len() < REPLAY_READ_AHEAD {
            let Some(reading) = read(next) else { break };
            self.ahead.push_back((next, reading));
            next += 1;
        }
        Some(this)
    }
}

impl Drop for Listing {
    fn drop(&mut self) {
        for (_, reading) in &self.ahead {
            reading.abort();
        }
    }
}

/// A recorded page's body, unzipped when it is `.json.zst`.
async fn read_page(store: Arc<dyn ObjectStore>, path: Path) -> Result<Bytes> {
    let bytes = store
        .get(&path)
        .await
        .map_err(|e| Error::storage(path.to_string(), e))?
        .bytes()
        .await
        .map_err(|e| Error::storage(path.to_string(), e))?;
    unzipped(&path, bytes)
}

/// [`read_page`] from a local directory, on one blocking thread from open to unzip.
fn read_local_page(local: &LocalFileSystem, path: Path) -> JoinHandle<Result<Bytes>> {
    let file = local.path_to_filesystem(&path);
    crate::background::spawn(move || {
        let file = file.map_err(|e| Error::storage(path.to_string(), e))?;
        let bytes = std::fs::read(&file).map_err(|e| Error::storage(path.to_string(), e))?;
        unzipped(&path, Bytes::from(bytes))
    })
}

/// `bytes` unzipped when `path` is a `.json.zst` page, else as they are.
fn unzipped(path: &Path, bytes: Bytes) -> Result<Bytes> {
    if path.as_ref().ends_with(".zst") {
        zstd::decode_all(&bytes[..]).map(Bytes::from).map_err(|e| {
            Error::storage(
                path.to_string(),
                crate::error::Detail::new(format!("not zstd: {e}"), e),
            )
        })
    } else {
        Ok(bytes)
    }
}

impl Pages {
    /// A recording is pages 1, 2, … n of an endpoint with none missing or twice: replaying
    /// past a gap would silently lose the missing page's records (and a cursor-paged
    /// vendor's pages would no longer follow each other).
    fn check_numbering(&self, endpoint: &str, files: &[Path]) -> Result<()> {
        for (index, path) in files.iter().enumerate() {
            let expected = index + 1;
            let number = path
                .filename()
                .and_then(|name| name.strip_prefix("page-"))
                .and_then(|rest| rest.split('.').next())
                .and_then(|digits| digits.parse::<usize>().ok());
            let message = match number {
                Some(n) if n == expected => continue,
                Some(n) if n > expected => format!(
                    "has no page {expected} ({}) although page {n} follows: a recording with a gap cannot be replayed",
                    page_file_name(expected, false)
                ),
                Some(n) => format!("has page {n} twice"),
                None => format!("has a page file `{path}` that is not page-NNNNNN.json[.zst]"),
            };
            return Err(Error::Recording {
                source_name: self.source_name.clone(),
                endpoint: endpoint.to_string(),
                message,
            });
        }
        Ok(())
    }
}

/// One page: the body and, when live, the response headers.
#[derive(Debug)]
pub struct Page {
    /// The response body exactly as received.
    pub body: Bytes,
    /// Response headers (empty on replay).
    pub headers: HeaderMap,
}

/// The file name of page `number` (1-based).
pub fn page_file_name(number: usize, compressed: bool) -> String {
    format!(
        "page-{number:06}.json{}",
        if compressed { ".zst" } else { "" }
    )
}

async fn land(landing: &RawLanding, endpoint: &str, number: usize, body: &[u8]) -> Result<()> {
    let path = Path::from(format!(
        "{}/{endpoint}/{}",
        landing.prefix,
        page_file_name(number, !landing.verbatim)
    ));
    if landing.verbatim {
        landing
            .store
            .put(&path, PutPayload::from(Bytes::copy_from_slice(body)))
            .await
            .map_err(|e| Error::storage(path.to_string(), e))?;
        return Ok(());
    }
    // Bodies are kept as received except for personal identifiers, which are hashed the
    // same way the normalizers hash them. A body no parser reads (cut off, nested too deep,
    // not JSON) is scrubbed as text instead: it stays as unreadable as it came, so a replay
    // fails on it the same way, but no e-mail or respondent id in it is kept.
    let scrubbed = match crate::json::from_slice::<serde_json::Value>(body) {
        Ok(mut value) => {
            scrub_personal_data(&mut value, &landing.hasher);
            serde_json::to_vec(&value).map_err(|e| Error::storage(path.to_string(), e))?
        }
        Err(_) => scrub_text(&String::from_utf8_lossy(body), &landing.hasher).into_bytes(),
    };
    let compressed =
        zstd::encode_all(&scrubbed[..], 3).map_err(|e| Error::storage(path.to_string(), e))?;
    landing
        .store
        .put(&path, PutPayload::from(compressed))
        .await
        .map_err(|e| Error::storage(path.to_string(), e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    /// Over a store (the warehouse's landed pages) and over a local directory (read
    /// directly), alike.
    #[tokio::test]
    async fn replays_plain_and_compressed_pages_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        let local = Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        for (store, local) in [
            (Arc::new(InMemory::new()) as Arc<dyn ObjectStore>, None),
            (Arc::clone(&local) as Arc<dyn ObjectStore>, Some(local)),
        ] {
            let put = |name: &str, body: Vec<u8>| {
                let store = Arc::clone(&store);
                let path = Path::from(format!("rec/src/v/items/{name}"));
                async move { store.put(&path, PutPayload::from(body)).await.unwrap() }
            };
            put(
                "page-000002.json.zst",
                zstd::encode_all(&b"{\"n\":2}"[..], 3).unwrap(),
            )
            .await;
            put("page-000001.json", b"{\"n\":1}".to_vec()).await;
            put("page-000003.json.zst", b"{\"n\":3}".to_vec()).await;
            put("notes.txt", b"ignored".to_vec()).await;
            let pages = Pages::replay(
                "src",
                ReplaySource {
                    store,
                    prefix: "rec/src".into(),
                    local,
                },
            );
            let http = reqwest::Client::new();
            let request = || http.get("http://127.0.0.1:9/never-sent");
            assert_eq!(
                &pages.fetch("v/items", request()).await.unwrap()[..],
                b"{\"n\":1}"
            );
            assert_eq!(
                &pages.fetch("v/items", request()).await.unwrap()[..],
                b"{\"n\":2}"
            );
            let not_zstd = pages
                .fetch("v/items", request())
                .await
                .unwrap_err()
                .to_string();
            assert!(
                not_zstd.contains("page-000003.json.zst") && not_zstd.contains("not zstd"),
                "{not_zstd}"
            );
            let end = pages
                .fetch("v/items", request())
                .await
                .unwrap_err()
                .to_string();
            assert!(end.contains("no page 4"), "{end}");
            assert!(pages.is_replay());
        }
    }

    #[tokio::test]
    async fn a_recording_with_a_gap_or_a_page_twice_is_an_error() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        for name in [
            "a/page-000001.json",
            "a/page-000003.json",
            "b/page-000001.json",
            "b/page-000002.json",
            "b/page-000002.json.zst",
        ] {
            let path = Path::from(format!("rec/src/{name}"));
            store
                .put(&path, PutPayload::from(b"{}".to_vec()))
                .await
                .unwrap();
        }
        let pages = Pages::replay(
            "src",
            ReplaySource {
                store,
                prefix: "rec/src".into(),
                local: None,
            },
        );
        let http = reqwest::Client::new();
        let request = || http.get("http://127.0.0.1:9/never-sent");
        // The gap is found before any page is used, naming the source, endpoint and page.
        let gap = pages.fetch("a", request()).await.unwrap_err().to_string();
        assert!(
            gap.contains("`src`") && gap.contains("`a`") && gap.contains("no page 2"),
            "{gap}"
        );
        let twice = pages.fetch("b", request()).await.unwrap_err().to_string();
        assert!(twice.contains("page 2 twice"), "{twice}");
    }

    #[tokio::test]
    async fn a_replayed_page_is_checked_like_a_live_answer() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let path = Path::from("rec/src/a/page-000001.json");
        store
            .put(
                &path,
                PutPayload::from(b"{\"day\":\"2026-01-01\"}".to_vec()),
            )
            .await
            .unwrap();
        let pages = Pages::replay(
            "src",
            ReplaySource {
                store,
                prefix: "rec/src".into(),
                local: None,
            },
        );
        let http = reqwest::Client::new();
        let stale = |_: StatusCode, _: &HeaderMap, _: &[u8]| Verdict::Retry(None);
        let err = pages
            .fetch_classified("a", http.get("http://127.0.0.1:9/x"), &stale)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("not the answer to this request"), "{err}");
    }
}
