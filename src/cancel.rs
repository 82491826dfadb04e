//! Asking a run to stop. `run`, `backfill` and `reprocess` turn SIGTERM and SIGINT into a stop
//! request; the scheduler sends one to its runs when its grace period runs out. A run asked to
//! stop before its commit record sends no new request (its pulls are dropped), removes what it
//! staged and landed, records itself in `_runs` with status `aborted`, releases its lock and
//! returns. Once its commit record is written a run is past the point of no return: it
//! finishes publishing, so a stop never leaves anything half done.
//!
//! Exit codes follow the shell's convention for a process ended by a signal: 143 (128 + 15)
//! after SIGTERM, 130 (128 + 2) after SIGINT. A second signal ends the process at once with
//! the same code; its lock is then taken over by the next start on this host (the holder's
//! process is gone, see `lock`).

use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;

/// Why a run was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM: Kubernetes evicting the pod, systemd stopping the unit, `kill`.
    Terminate,
    /// SIGINT: Ctrl-C.
    Interrupt,
    /// The scheduler's grace period ran out while the run was still going.
    Shutdown,
}

impl Stop {
    /// What asked, for logs and `_runs.error`.
    pub fn describe(self) -> &'static str {
        match self {
            Stop::Terminate => "SIGTERM",
            Stop::Interrupt => "SIGINT",
            Stop::Shutdown => "the scheduler's shutdown (grace period over)",
        }
    }

    /// The process exit code of a run stopped this way: 128 + the signal number.
    pub fn exit_code(self) -> u8 {
        match self {
            Stop::Interrupt => EXIT_SIGINT,
            Stop::Terminate | Stop::Shutdown => EXIT_SIGTERM,
        }
    }
}

/// Exit code of a run stopped by SIGTERM (128 + 15).
pub const EXIT_SIGTERM: u8 = 143;
/// Exit code of a run stopped by SIGINT (128 + 2).
pub const EXIT_SIGINT: u8 = 130;

/// A stop request shared by whoever may ask (a signal handler, the scheduler) and the run
/// that obeys. Clones share it; the first reason given wins.
#[derive(Debug, Clone)]
pub struct Cancel {
    requested: Arc<watch::Sender<Option<Stop>>>,
}

impl Default for Cancel {
    fn default() -> Self {
        Cancel {
            requested: Arc::new(watch::Sender::new(None)),
        }
    }
}

impl Cancel {
    /// A request nobody has made yet.
    pub fn new() -> Self {
        Cancel::default()
    }

    /// Ask the run to stop; later requests keep the first reason.
    pub fn stop(&self, why: Stop) {
        self.requested.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(why);
                true
            } else {
                false
            }
        });
    }

    /// The stop asked for, if any.
    pub fn stopped(&self) -> Option<Stop> {
        *self.requested.borrow()
    }

    /// Resolves when a stop is asked for (at once if it already was).
    pub async fn requested(&self) -> Stop {
        let mut seen = self.requested.subscribe();
        // Copied out at once: the borrow `wait_for` returns must not live across an await.
        let stop = seen.wait_for(Option::is_some).await.ok().and_then(|s| *s);
        match stop {
            Some(stop) => stop,
            // Unreachable: `self` holds the sender, so it cannot close while we wait.
            None => futures::future::pending().await,
        }
    }

    /// Run `work` unless a stop is asked for first (or already was): then `work` is dropped
    /// where it stands and the stop is returned.
    pub async fn or_stop<F: Future>(&self, work: F) -> Result<F::Output, Stop> {
        tokio::select! {
            biased;
            stop = self.requested() => Err(stop),
            done = work => Ok(done),
        }
    }
}

/// Turn SIGTERM and SIGINT into stop requests on `cancel`, logging each. A second signal
/// ends the process at once with that signal's exit code (an operator who will not wait).
/// The handlers are installed before this returns, so a signal that arrives during the run
/// never meets the default action (which would kill the process with its lock held).
pub fn stop_on_signals(cancel: &Cancel) -> std::io::Result<()> {
    let cancel = cancel.clone();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::spawn(async move {
            loop {
                let stop = tokio::select! {
                    _ = term.recv() => Stop::Terminate,
                    _ = int.recv() => Stop::Interrupt,
                };
                if cancel.stopped().is_some() {
                    tracing::warn!(signal = stop.describe(), "asked again to stop: exiting now");
                    std::process::exit(i32::from(stop.exit_code()));
                }
                tracing::warn!(
                    signal = stop.describe(),
                    "stop requested: no new requests; anything not yet committed is dropped"
                );
                cancel.stop(stop);
            }
        });
    }
    #[cfg(not(unix))]
    {
        tokio::spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                if cancel.stopped().is_some() {
                    std::process::exit(i32::from(EXIT_SIGINT));
                }
                tracing::warn!(signal = "SIGINT", "stop requested");
                cancel.stop(Stop::Interrupt);
            }
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn the_first_reason_wins_and_work_is_dropped_when_asked() {
        let cancel = Cancel::new();
        assert_eq!(cancel.stopped(), None);
        assert_eq!(cancel.or_stop(async { 7 }).await, Ok(7));
        let waiting = {
            let cancel = cancel.clone();
            tokio::spawn(async move {
                cancel
                    .or_stop(tokio::time::sleep(Duration::from_secs(3600)))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        cancel.stop(Stop::Interrupt);
        cancel.stop(Stop::Terminate);
        let outcome = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the stop ends the wait")
            .expect("task ran");
        assert_eq!(outcome, Err(Stop::Interrupt));
        assert_eq!(cancel.stopped(), Some(Stop::Interrupt));
        // Already stopped: work is not even started.
        assert_eq!(cancel.or_stop(async { 7 }).await, Err(Stop::Interrupt));
        assert_eq!(Stop::Interrupt.exit_code(), 130);
        assert_eq!(Stop::Terminate.exit_code(), 143);
    }
}
