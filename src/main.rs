//! The `funnelhouse` binary: parse the command line, set up logging, hand over to the library.

use std::process::ExitCode;

use clap::Parser;
use funnelhouse::cli::{Cli, EXIT_CONFIG, LogFormat};

/// Pages are decoded on blocking threads and their rows freed on another; under that
/// pattern glibc's malloc spends a sixth of a large run consolidating and splitting chunks.
/// jemalloc's thread caches and size classes do not, and it returns memory on its own.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read at start-up (`_RJEM_MALLOC_CONF` in the environment overrides
/// them). Its defaults are for long-lived servers on many cores: four arenas per core, each
/// thread bound to one, and freed pages kept for ten seconds. Here the many short-lived
/// blocking threads that decode pages and encode Parquet spread over those arenas, and a
/// page freed in one arena is not reused by a thread of another; peak memory then measured
/// the pages held, not the pages in use (the spend-heavy benchmark at 1 M leads: 541 MiB
/// with the defaults, 205 MiB with these). Two arenas fit the two cores a run is sized
/// for; freed pages go back to the system after a second.
#[allow(
    unsafe_code,
    reason = "jemalloc reads its settings from this one exported symbol; nothing else defines it"
)]
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: &[u8] = b"narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

/// Threads of tokio's blocking pool per core (tokio's own cap is 512 threads). What runs
/// there is short: page reads, page decoding, freeing a page's rows, local file operations;
/// nothing that waits on other blocking work (the one long wait of a run, the metrics step's
/// set-aside writer, has a thread of its own), so a bounded pool only queues work, never
/// deadlocks. Unbounded, a pull's bursts of reads and decodes grew it to 80–100 threads that
/// each kept a thread cache of freed memory: a 1 M spend-heavy replay peaked at 187–202 MiB,
/// and at 157–168 MiB with 8 threads on its 2 cores, wall and CPU time unchanged (seven
/// interleaved runs each; README, "The blocking pool bounded"). Four per core keep every
/// core decoding while others read.
const BLOCKING_THREADS_PER_CORE: usize = 4;

/// The blocking pool's cap on this machine: [`BLOCKING_THREADS_PER_CORE`] per core, and
/// never fewer than 8.
fn blocking_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    (BLOCKING_THREADS_PER_CORE * cores).max(8)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_CONFIG } else { 0 };
            e.print().ok();
            return ExitCode::from(code);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FUNNELHOUSE_LOG")
        // The Delta kernel logs every log replay at INFO: an operator needs its warnings only.
        .unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(
                "info,delta_kernel=warn,delta_kernel_default_engine=warn",
            )
        });
    // Bars only for a person watching one run at a terminal; JSON logs go to shippers and the
    // daemon runs for days, both of which want lines.
    use funnelhouse::ops::progress::{self, ProgressMode};
    use std::io::IsTerminal;
    let daemon = matches!(cli.command, funnelhouse::cli::Command::Schedule(_));
    progress::init(match cli.log_format {
        LogFormat::Text if std::io::stderr().is_terminal() && !daemon => ProgressMode::Bars,
        _ => ProgressMode::Lines,
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(progress::LogWriter)
        // Colour codes only for a terminal; journald and log files get plain text.
        .with_ansi(std::io::stderr().is_terminal());
    match cli.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(blocking_threads())
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(funnelhouse::cli::run(cli))
}
