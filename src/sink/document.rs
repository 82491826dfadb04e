//! The small JSON documents the warehouse keeps beside its tables (a source's state, a job's
//! lock, a commit record, the state and clock a landed run recorded): read one, with "not
//! there" as `None` rather than an error and a document that does not parse named by its
//! path; write one (pretty-printed, one atomic put).

use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Detail, Error, Result};

/// What a document is, for the error when it does not parse: `what` names it ("state",
/// "job lock"), `advice` (may be empty) says what the operator can do about it.
#[derive(Debug, Clone, Copy)]
pub struct Unreadable<'a> {
    /// What the document is.
    pub what: &'a str,
    /// What to do about a broken one.
    pub advice: &'a str,
}

/// The document at `path` and its object metadata (version, e-tag); `None` when there is
/// no such object.
pub async fn read_json<T: DeserializeOwned>(
    store: &dyn ObjectStore,
    path: &Path,
    unreadable: Unreadable<'_>,
) -> Result<Option<(T, ObjectMeta)>> {
    let got = match store.get(path).await {
        Ok(got) => got,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(Error::storage(path.to_string(), e)),
    };
    let meta = got.meta.clone();
    let bytes = got
        .bytes()
        .await
        .map_err(|e| Error::storage(path.to_string(), e))?;
    let value = serde_json::from_slice(&bytes).map_err(|e| {
        let Unreadable { what, advice } = unreadable;
        let message = if advice.is_empty() {
            format!("unreadable {what} ({e})")
        } else {
            format!("unreadable {what} ({e}); {advice}")
        };
        Error::storage(path.to_string(), Detail::new(message, e))
    })?;
    Ok(Some((value, meta)))
}

/// Replace the document at `path` with `value`, pretty-printed (people read these when a
/// run went wrong), in one put.
pub async fn write_json<T: Serialize>(
    store: &dyn ObjectStore,
    path: &Path,
    value: &T,
) -> Result<()> {
    let body = serde_json::to_vec_pretty(value).map_err(|e| Error::storage(path.to_string(), e))?;
    store
        .put(path, PutPayload::from(body))
        .await
        .map_err(|e| Error::storage(path.to_string(), e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    const DOC: Unreadable<'static> = Unreadable {
        what: "test document",
        advice: "delete it",
    };

    #[tokio::test]
    async fn absent_is_none_and_broken_names_path_and_advice() {
        let store = InMemory::new();
        let path = Path::from("_x/a.json");
        let absent: Option<(Vec<u32>, _)> = read_json(&store, &path, DOC).await.unwrap();
        assert!(absent.is_none());
        write_json(&store, &path, &[1, 2]).await.unwrap();
        let (got, meta): (Vec<u32>, _) = read_json(&store, &path, DOC).await.unwrap().unwrap();
        assert_eq!(got, [1, 2]);
        assert_eq!(meta.location, path);
        store.put(&path, PutPayload::from("{")).await.unwrap();
        let err = read_json::<Vec<u32>>(&store, &path, DOC)
            .await
            .expect_err("broken");
        let text = err.to_string();
        assert!(text.contains("_x/a.json"), "{text}");
        assert!(text.contains("unreadable test document"), "{text}");
        assert!(text.contains("; delete it"), "{text}");
    }
}
