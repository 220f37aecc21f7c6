use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use clap::builder::{OsStringValueParser, TypedValueParser};
use servitor_shared::env;
use servitord::{Config, SlurmConfig};

/// How long an `sbatch`, `squeue` or `scancel` may take.
const SLURM_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tracing_subscriber::EnvFilter;

/// Runs the jobs under <workdir>/config/jobs and serves the API on
/// <workdir>/sockets/servitor.sock.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// The working directory.
    #[arg(long, env = env::WORKDIR, default_value = ".")]
    workdir: PathBuf,
    /// How many runs may go at once [default: max(cpus, 2)].
    #[arg(long, env = env::WORKERS, value_parser = clap::value_parser!(u16).range(1..))]
    workers: Option<u16>,
    /// How long a cancelled run may take to stop (after SIGINT) before its process group is killed.
    #[arg(long, env = env::STOP_GRACE, default_value = "10s", value_parser = humantime::parse_duration)]
    stop_grace: Duration,
    /// Folder of the web UI's static files, served at `/`; no UI when unset or empty.
    // Parsed as an OsString: clap's PathBuf parser refuses an empty value, and
    // `SERVITOR_UI_ROOT=` (say, in a unit file) means no UI.
    #[arg(long, env = env::UI_ROOT, value_parser = OsStringValueParser::new().map(PathBuf::from))]
    ui_root: Option<PathBuf>,
    /// How long a hook (config/hooks/on_*) may run before it is stopped.
    #[arg(long, env = env::HOOK_TIMEOUT, default_value = "60s", value_parser = humantime::parse_duration)]
    hook_timeout: Duration,
    /// Flush every state change (file and folder) to the disk before going on, so it
    /// survives a power loss too; costs more than half the run throughput.
    #[arg(long, env = env::FSYNC)]
    fsync: bool,
    /// How often the jobs on a Slurm cluster are listed (one `squeue` for all).
    #[arg(long, env = env::SLURM_POLL, default_value = "1s", value_parser = humantime::parse_duration)]
    slurm_poll: Duration,
    /// How long a Slurm run that left the queue without its exit code file waits for
    /// it (shared filesystems lag) before its outcome counts as lost.
    #[arg(long, env = env::SLURM_EXIT_WAIT, default_value = "60s", value_parser = humantime::parse_duration)]
    slurm_exit_wait: Duration,
    /// How many runs may be on a Slurm cluster at once; more wait in the queue.
    #[arg(long, env = env::SLURM_MAX_RUNS, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    slurm_max_runs: u32,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    raise_open_files_limit();
    let config = Config {
        workdir: args.workdir,
        workers: args
            .workers
            .map_or_else(Config::default_workers, usize::from),
        stop_grace: args.stop_grace,
        ui_root: args.ui_root.filter(|path| !path.as_os_str().is_empty()),
        hook_timeout: args.hook_timeout,
        fsync: args.fsync,
        slurm: SlurmConfig {
            poll: args.slurm_poll,
            exit_wait: args.slurm_exit_wait,
            command_timeout: SLURM_COMMAND_TIMEOUT,
        },
        slurm_max_runs: args.slurm_max_runs as usize,
    };
    let (stop, stop_requests) = mpsc::unbounded_channel();
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut interrupt), Ok(mut terminate)) => {
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                    if stop.send(()).is_err() {
                        break;
                    }
                }
            });
        }
        _ => {
            eprintln!("error: cannot listen for SIGINT and SIGTERM");
            return ExitCode::FAILURE;
        }
    }
    match servitord::run(config, stop_requests).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Takes the hard limit of open files as the soft one: systemd's default soft limit
/// (1024) is too low for a daemon holding a connection, a log and a child per client
/// and run.
fn raise_open_files_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!("cannot raise the open files limit: {e}");
        }
    }
}
