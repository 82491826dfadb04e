//! Where a run's CPU-bound work goes — decoding vendor pages, encoding Parquet: tokio's
//! blocking threads, each lowered once to a background priority (nice +10, on Linux) below
//! the runtime's workers, which send requests and read answers.
//!
//! A cursor-paged pull (HubSpot's contacts) is a chain of round trips: the next request
//! cannot leave before the last answer is read. With both cores decoding and encoding, a
//! worker woken to read an answer or write a request waited its turn behind them, and an
//! encoder on a worker held up every task queued behind it; measured on 2 cores, a
//! HubSpot-only live pull at 100 k leads took 10 % less time with the decoders lowered.
//! Nothing is slower in all: the same work, done in the cores' idle moments first.

use tokio::task::JoinHandle;

/// Run `work` on a blocking thread at background priority.
pub fn spawn<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
    tokio::task::spawn_blocking(move || {
        lower_this_thread();
        work()
    })
}

/// How far below normal (nice 0) background threads run: far enough that a woken worker
/// preempts them at once, not so far that they starve when the workers are busy.
#[cfg(target_os = "linux")]
const BACKGROUND_NICE: i32 = 10;

/// Lower the calling thread's priority, once per thread (blocking threads are reused). On
/// Linux a thread id given to `setpriority` names that thread alone; a failure (a sandbox
/// forbidding it) leaves the thread as it was, which only costs speed.
fn lower_this_thread() {
    #[cfg(target_os = "linux")]
    {
        thread_local! {
            static LOWERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
        }
        if !LOWERED.get() {
            LOWERED.set(true);
            let thread = rustix::thread::gettid();
            let _ = rustix::process::setpriority_process(Some(thread), BACKGROUND_NICE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn background_work_runs_lowered_and_the_workers_are_left_as_they_were() {
        let before = rustix::process::getpriority_process(Some(rustix::thread::gettid()));
        let (result, nice) = spawn(|| {
            let nice = rustix::process::getpriority_process(Some(rustix::thread::gettid()));
            (6 * 7, nice)
        })
        .await
        .expect("the work ran");
        assert_eq!(result, 42);
        #[cfg(target_os = "linux")]
        assert_eq!(
            nice.ok(),
            Some(BACKGROUND_NICE.max(before.as_ref().map_or(0, |n| *n)))
        );
        #[cfg(not(target_os = "linux"))]
        let _ = nice;
        let after = rustix::process::getpriority_process(Some(rustix::thread::gettid()));
        assert_eq!(
            before.ok(),
            after.ok(),
            "the worker's own priority is untouched"
        );
    }
}
