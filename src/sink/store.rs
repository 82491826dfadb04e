//! Building the warehouse's `Arc<dyn ObjectStore>` from one URL: a plain or relative path,
//! `file://`, `memory://` or `s3://bucket/prefix` (credentials and endpoint from the
//! environment, as object_store reads them). The one S3 builder: the `s3://` files sources
//! read whole (costs, intent) are opened here too, so they honour the same settings.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::prefix::PrefixStore;

use crate::error::{Detail, Error, Result};

/// Where a warehouse lives, parsed from the job's `warehouse` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarehouseUrl {
    /// A local directory (absolute once parsed).
    Local(std::path::PathBuf),
    /// A process-local in-memory store (tests).
    Memory,
    /// An S3 (or S3-compatible) bucket and key prefix.
    S3 {
        /// The original `s3://…` URL.
        url: String,
        /// Key prefix inside the bucket (no leading or trailing `/`).
        prefix: String,
    },
}

impl WarehouseUrl {
    /// Parse a path or URL; relative paths resolve against the working directory.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("warehouse must not be empty".into());
        }
        if let Some(rest) = text.strip_prefix("file://") {
            return Ok(WarehouseUrl::Local(absolute(rest)?));
        }
        if text == "memory://" || text.starts_with("memory://") {
            return Ok(WarehouseUrl::Memory);
        }
        if text.starts_with("s3://") {
            let url =
                url::Url::parse(text).map_err(|e| format!("`{text}` is not a valid URL: {e}"))?;
            if url.host_str().unwrap_or("").is_empty() {
                return Err(format!("`{text}` names no bucket"));
            }
            // The key prefix as written: `s3://b/pre fix ü` means the keys `pre fix ü/…`.
            let prefix = percent_decode(url.path().trim_matches('/'))
                .map_err(|problem| format!("`{text}` {problem}"))?;
            return Ok(WarehouseUrl::S3 {
                url: text.to_string(),
                prefix,
            });
        }
        if let Some((scheme, _)) = text.split_once("://") {
            return Err(format!(
                "warehouse scheme `{scheme}://` is not supported; use a path, file://, memory:// or s3://"
            ));
        }
        Ok(WarehouseUrl::Local(absolute(text)?))
    }
}

/// `%XX` escapes of a URL path back to the UTF-8 text they stand for; the error completes a
/// sentence about the URL.
fn percent_decode(text: &str) -> std::result::Result<String, &'static str> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("has a bad %-escape (write a `%` in a key as %25)")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "is not UTF-8 once decoded")
}

/// The S3 store of the bucket `url` names (`s3://bucket[/…]`; the path plays no part),
/// configured from the environment as object_store reads it: credentials, region, endpoint,
/// path or virtual-hosted style, `AWS_ALLOW_HTTP`.
fn s3_store(url: &str) -> object_store::Result<AmazonS3> {
    AmazonS3Builder::from_env().with_url(url).build()
}

/// The store holding the object an `s3://bucket/key` URL names, and the object's key: a
/// file a source reads whole (costs, intent), through the warehouse's own S3 settings.
///
/// The key is the URL's path as written with its `%XX` escapes decoded, the rule of the
/// warehouse's prefix: `s3://b/costs q1.csv` and `s3://b/costs%20q1.csv` both name the key
/// `costs q1.csv`, and `+` is a plus. A key holding `%`, `?` or `#` writes them `%25`,
/// `%3F`, `%23`. The error completes a sentence about the URL.
pub fn open_s3_object(
    url: &str,
) -> std::result::Result<(Arc<dyn ObjectStore>, object_store::path::Path), Detail> {
    let parsed =
        url::Url::parse(url).map_err(|e| Detail::new(format!("is not a valid URL: {e}"), e))?;
    if parsed.scheme() != "s3" {
        return Err("is not an s3:// URL".into());
    }
    if parsed.host_str().unwrap_or("").is_empty() {
        return Err("names no bucket".into());
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(
            "has a query string or fragment: write a `?` or `#` in a key as %3F or %23".into(),
        );
    }
    let key = percent_decode(parsed.path().trim_start_matches('/'))?;
    if key.is_empty() || key.ends_with('/') {
        return Err("names no object, only a bucket or folder".into());
    }
    // `Path::parse` keeps spaces and unicode as they are (`Path::from` would
    // percent-encode them into different keys).
    let key = object_store::path::Path::parse(key.as_str())
        .map_err(|e| Detail::new(format!("is not a key the object store can name: {e}"), e))?;
    let store = s3_store(url).map_err(|e| Detail::new(format!("cannot be opened: {e}"), e))?;
    Ok((Arc::new(store), key))
}

fn absolute(path: &str) -> std::result::Result<std::path::PathBuf, String> {
    let p = std::path::Path::new(path);
    if p.is_absolute() {
        Ok(p.to_path_buf())
    } else {
        std::env::current_dir()
            .map(|cwd| {
                cwd.join(p)
                    .components()
                    .filter(|c| !matches!(c, std::path::Component::CurDir))
                    .collect()
            })
            .map_err(|e| format!("cannot resolve `{path}` against the working directory: {e}"))
    }
}

/// An open warehouse: the store (rooted at the warehouse prefix) and where it is.
#[derive(Debug, Clone)]
pub struct Warehouse {
    /// The object store, with paths relative to the warehouse root.
    pub store: Arc<dyn ObjectStore>,
    /// What it was opened from.
    pub url: WarehouseUrl,
}

impl Warehouse {
    /// Open (and for a local path, create) the warehouse.
    pub fn open(url: WarehouseUrl) -> Result<Self> {
        let store: Arc<dyn ObjectStore> = match &url {
            WarehouseUrl::Local(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| {
                    Error::io(format!("creating warehouse directory {}", dir.display()), e)
                })?;
                let fs = LocalFileSystem::new_with_prefix(dir)
                    .map_err(|e| Error::storage(dir.display().to_string(), e))?;
                Arc::new(fs)
            }
            WarehouseUrl::Memory => Arc::new(InMemory::new()),
            WarehouseUrl::S3 { url: text, prefix } => {
                let s3 = s3_store(text).map_err(|e| Error::storage(text.clone(), e))?;
                if prefix.is_empty() {
                    Arc::new(s3)
                } else {
                    // `Path::parse` keeps spaces and unicode as they are (`Path::from` would
                    // percent-encode them into different keys).
                    let prefix = object_store::path::Path::parse(prefix.as_str())
                        .map_err(|e| Error::storage(text.clone(), e))?;
                    Arc::new(PrefixStore::new(s3, prefix))
                }
            }
        };
        Ok(Warehouse { store, url })
    }

    /// A warehouse over an existing store (tests, or an embedding application).
    pub fn from_store(store: Arc<dyn ObjectStore>) -> Self {
        Warehouse {
            store,
            url: WarehouseUrl::Memory,
        }
    }

    /// Human-readable location, for messages.
    pub fn describe(&self) -> String {
        match &self.url {
            WarehouseUrl::Local(dir) => dir.display().to_string(),
            WarehouseUrl::Memory => "memory://".to_string(),
            WarehouseUrl::S3 { url, .. } => url.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_and_urls() {
        assert!(
            matches!(WarehouseUrl::parse("./warehouse"), Ok(WarehouseUrl::Local(p)) if p.is_absolute() && p.ends_with("warehouse"))
        );
        assert_eq!(
            WarehouseUrl::parse("file:///tmp/w"),
            Ok(WarehouseUrl::Local("/tmp/w".into()))
        );
        assert_eq!(WarehouseUrl::parse("memory://"), Ok(WarehouseUrl::Memory));
        assert_eq!(
            WarehouseUrl::parse("s3://bucket/a/b/"),
            Ok(WarehouseUrl::S3 {
                url: "s3://bucket/a/b/".into(),
                prefix: "a/b".into()
            })
        );
        assert_eq!(
            WarehouseUrl::parse("s3://bucket/pre fix ü/w"),
            Ok(WarehouseUrl::S3 {
                url: "s3://bucket/pre fix ü/w".into(),
                prefix: "pre fix ü/w".into()
            })
        );
        assert!(WarehouseUrl::parse("ftp://x/y").is_err());
        assert!(WarehouseUrl::parse("").is_err());
    }

    #[test]
    fn an_s3_file_url_names_its_key_as_written_with_escapes_decoded() {
        for (url, key) in [
            ("s3://b/costs q1.csv", "costs q1.csv"),
            ("s3://b/costs%20q1.csv", "costs q1.csv"),
            ("s3://b/in/a+b ü.csv", "in/a+b ü.csv"),
            ("s3://b/in/a%2Bb%20%C3%BC.csv", "in/a+b ü.csv"),
            ("s3://b/100%25%3F%23.csv", "100%?#.csv"),
        ] {
            let (_, got) = open_s3_object(url).unwrap_or_else(|e| panic!("{url}: {e:?}"));
            assert_eq!(got.as_ref(), key, "{url}");
        }
        for (url, problem) in [
            ("s3://b/costs.csv?versionId=1", "query string"),
            ("s3://b/costs.csv#x", "fragment"),
            ("s3://b/", "names no object"),
            ("s3://b/folder/", "names no object"),
            ("s3://b/100%.csv", "bad %-escape"),
            ("s3://b/%FF.csv", "not UTF-8"),
            ("https://b/costs.csv", "not an s3:// URL"),
        ] {
            let Err(e) = open_s3_object(url) else {
                panic!("{url} opens");
            };
            let text = crate::error::Error::storage(url, e).to_string();
            assert!(text.contains(problem), "{url}: {text}");
        }
    }
}
