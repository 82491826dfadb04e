//! Named pause points for crash testing: when `FUNNELHOUSE_PAUSE_AT` names a point, the run
//! prints `funnelhouse: paused at <point>` on stderr when it gets there and waits for an hour,
//! so a test (or an operator rehearsing recovery) can `kill -9` it at that exact step.
//! Points: `pull` (the first page of a source has been received and landed), `write` (every
//! source is staged, no commit record yet), `publish` (the commit record is written and the
//! first file has been renamed onto its table), `delta` (a Delta job's first table has its
//! Delta commit, the others not yet), `read` (a metrics step has read a `costs`
//! file). With `FUNNELHOUSE_RESUME_FILE` also set, the pause ends as soon as that file exists,
//! so a test can interleave two processes. Unset, it costs one environment lookup.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The environment variable naming the pause point.
pub const PAUSE_ENV: &str = "FUNNELHOUSE_PAUSE_AT";

/// The environment variable naming a file whose appearance ends the pause.
pub const RESUME_ENV: &str = "FUNNELHOUSE_RESUME_FILE";

/// Stop at `point` if the environment asks for it (only once per process).
pub async fn point(point: &str) {
    static WANTED: OnceLock<Option<String>> = OnceLock::new();
    static PAUSED: AtomicBool = AtomicBool::new(false);
    let wanted = WANTED.get_or_init(|| std::env::var(PAUSE_ENV).ok());
    if wanted.as_deref() != Some(point) || PAUSED.swap(true, Ordering::SeqCst) {
        return;
    }
    eprintln!("funnelhouse: paused at {point} ({PAUSE_ENV})");
    let resume = std::env::var_os(RESUME_ENV).map(std::path::PathBuf::from);
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(3600) {
        if resume.as_ref().is_some_and(|f| f.exists()) {
            eprintln!("funnelhouse: resumed at {point}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
