//! Where a pull decodes its pages, reads recorded ones, and frees a page's rows once they are
//! in the builders (`DatasetOutput::push_all`): tokio's blocking threads, each lowered once to
//! a background priority (nice +10, on Linux) below the runtime's workers, which send
//! requests, read answers and push rows.
//!
//! A cursor-paged pull (HubSpot's contacts) is a chain of round trips: the next request
//! cannot leave before the last answer is read. With both cores decoding, a worker woken to
//! read an answer or write a request waited its turn behind the decoders. Measured on 2 cores:
//! a HubSpot-only live pull at 100 k leads 10 % faster with the decoders lowered, the whole
//! live pull 2–4 %; nothing can starve, since the workers wait for the decoded pages.
//!
//! Parquet encoding stays on the workers, where it holds back the rows that feed it. Moved
//! here too, the 1 M spend-heavy replay was 5 % faster but the encoders fell behind rows
//! spread over hundreds of day files: the 10 M peak rose from 203 to 308 MiB, and to 291 MiB
//! with the queued batches bounded process-wide.

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

/// Lower the calling thread's priority, once per thread. Blocking threads are reused, so a
/// lowered one stays lowered for whatever blocking work it runs later (file reads, the
/// metrics' spill writer): all of it throughput work, none of it on a request's path. On
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
