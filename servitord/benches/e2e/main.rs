//! End-to-end benchmark of servitord (the issue "Speed and footprint"): builds working
//! directories, starts the release `servitord` on them, drives it over its socket like
//! a client would, and prints one table (median and p95 per scenario, the target, the
//! ratio to the machine's floor measured in the same run) and the scaling series.
//!
//! ```text
//! cargo bench -p servitord                                 # the full run (minutes)
//! cargo bench -p servitord --bench e2e -- --smoke          # tiny sizes, for CI (seconds)
//! SERVITOR_BENCH_SMOKE=1 cargo bench -p servitord          # the same
//! cargo bench -p servitord --bench e2e -- --markdown       # the tables also in Markdown
//! cargo bench -p servitord --bench e2e -- --only runs,logs # groups: reads runs logs load scaling slurm schedules
//! cargo bench -p servitord --bench e2e -- --tmpfs          # runs' folders on a tmpfs (root)
//! cargo bench -p servitord --bench e2e -- --servitord PATH # another build (and --servitorctl PATH)
//! cargo bench -p servitord --bench e2e -- --rust-log info  # the daemon's RUST_LOG (default warn)
//! cargo bench -p servitord --bench e2e -- --keep           # keep target/bench-work/<pid>/
//! cargo bench -p servitord --bench e2e -- --no-build       # never build servitorctl
//! ```
//!
//! Options need `--bench e2e`: cargo hands them to every bench target of the package,
//! and the library's libtest harness refuses them.

mod cancel;
mod client;
mod ctl;
mod daemon;
mod events;
mod fixture;
mod floor;
mod load;
mod logs;
mod reads;
mod reads_under_load;
mod report;
mod runs;
mod scaling;
mod schedules;
mod slurm;
mod tmpfs;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use crate::daemon::Launch;
use crate::report::{Row, Table};

/// How much of everything: the issue's sizes, or tiny ones that prove the bench works.
pub struct Sizes {
    pub jobs: usize,
    /// Executions of the one job listed whole (`executions/get_list`).
    pub list_executions: usize,
    /// One job per size, for paging and the executions series; the largest is the
    /// "100 000 executions" of the issue.
    pub exec_scales: Vec<usize>,
    pub job_scales: Vec<usize>,
    pub start_iterations: usize,
    pub requests: usize,
    pub runs_per_batch: usize,
    pub posting_clients: usize,
    pub batches: usize,
    pub latency_runs: usize,
    pub cancel_runs: usize,
    pub ctl_runs: usize,
    pub log_bytes: usize,
    pub log_reads: usize,
    pub follow_lines: usize,
    pub followers: usize,
    pub event_clients: usize,
    pub concurrency_scales: Vec<usize>,
    pub poster_scales: Vec<usize>,
    /// Runs on the Slurm cluster: one at a time, then posted at once.
    pub slurm_latency_runs: usize,
    pub slurm_runs: usize,
    /// Jobs scheduled every second, and for how many seconds their fires are measured.
    pub scheduled_jobs: usize,
    pub fire_span_secs: u64,
    /// Hourly schedules of the idle daemon, and how long its CPU time is measured.
    pub idle_schedules: usize,
    pub idle_span_secs: u64,
}

impl Sizes {
    fn full() -> Self {
        Self {
            jobs: 1000,
            list_executions: 2000,
            exec_scales: vec![100, 1000, 10_000, 100_000],
            job_scales: vec![10, 100, 1000, 10_000],
            start_iterations: 15,
            requests: 300,
            runs_per_batch: 2000,
            posting_clients: 4,
            batches: 5,
            latency_runs: 100,
            cancel_runs: 20,
            ctl_runs: 30,
            log_bytes: 50 << 20,
            log_reads: 10,
            follow_lines: 100,
            followers: 200,
            event_clients: 1000,
            concurrency_scales: vec![1, 4, 16, 64],
            poster_scales: vec![1, 4, 16],
            slurm_latency_runs: 10,
            slurm_runs: 200,
            scheduled_jobs: 1000,
            fire_span_secs: 5,
            idle_schedules: 10_000,
            idle_span_secs: 10,
        }
    }

    fn smoke() -> Self {
        Self {
            jobs: 20,
            list_executions: 50,
            exec_scales: vec![10, 100],
            job_scales: vec![10, 100],
            start_iterations: 2,
            requests: 10,
            runs_per_batch: 40,
            posting_clients: 4,
            batches: 1,
            latency_runs: 3,
            cancel_runs: 2,
            ctl_runs: 2,
            log_bytes: 1 << 20,
            log_reads: 2,
            follow_lines: 5,
            followers: 4,
            event_clients: 8,
            concurrency_scales: vec![1, 4],
            poster_scales: vec![1, 4],
            slurm_latency_runs: 2,
            slurm_runs: 10,
            scheduled_jobs: 20,
            fire_span_secs: 2,
            idle_schedules: 100,
            idle_span_secs: 1,
        }
    }
}

/// What every scenario needs, and what they report.
pub struct Bench {
    pub sizes: Sizes,
    pub launch: Launch,
    pub servitorctl: PathBuf,
    /// `--no-build`: a missing servitorctl is an error rather than built.
    pub no_build: bool,
    /// Cached large fixtures (`target/bench-fixtures/`).
    pub fixtures: PathBuf,
    /// This run's fresh working directories (`target/bench-work/<pid>/`).
    pub work: PathBuf,
    pub rows: Vec<Row>,
    pub series: Vec<Table>,
    pub notes: Vec<String>,
}

const GROUPS: [&str; 7] = [
    "reads",
    "runs",
    "logs",
    "load",
    "scaling",
    "slurm",
    "schedules",
];

struct Options {
    smoke: bool,
    markdown: bool,
    keep: bool,
    only: Vec<String>,
    rust_log: String,
    tmpfs: bool,
    servitord: Option<PathBuf>,
    servitorctl: Option<PathBuf>,
    no_build: bool,
}

impl Options {
    fn parse() -> Result<Self, String> {
        let mut options = Self {
            smoke: std::env::var_os("SERVITOR_BENCH_SMOKE").is_some_and(|v| v == "1"),
            markdown: false,
            keep: false,
            only: GROUPS.map(str::to_owned).to_vec(),
            rust_log: "warn".into(),
            tmpfs: false,
            servitord: None,
            servitorctl: None,
            no_build: false,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                // Given by `cargo bench` to every bench binary.
                "--bench" => {}
                "--smoke" => options.smoke = true,
                "--markdown" => options.markdown = true,
                "--keep" => options.keep = true,
                "--only" => {
                    let groups = args.next().ok_or("--only needs a list of groups")?;
                    options.only = groups.split(',').map(str::to_owned).collect();
                    if let Some(bad) = options.only.iter().find(|g| !GROUPS.contains(&g.as_str())) {
                        return Err(format!(
                            "unknown group {bad:?}; groups: {}",
                            GROUPS.join(" ")
                        ));
                    }
                }
                "--rust-log" => {
                    options.rust_log = args.next().ok_or("--rust-log needs a filter")?
                }
                "--tmpfs" => options.tmpfs = true,
                "--no-build" => options.no_build = true,
                "--servitord" => {
                    options.servitord = Some(args.next().ok_or("--servitord needs a path")?.into())
                }
                "--servitorctl" => {
                    options.servitorctl =
                        Some(args.next().ok_or("--servitorctl needs a path")?.into())
                }
                other => {
                    return Err(format!(
                        "unknown argument {other:?} (see benches/e2e/main.rs)"
                    ));
                }
            }
        }
        Ok(options)
    }
}

fn main() -> ExitCode {
    let options = match Options::parse() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("e2e: {e}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let servitord = options
        .servitord
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_servitord")));
    let servitorctl = options
        .servitorctl
        .clone()
        .unwrap_or_else(|| servitord.with_file_name("servitorctl"));
    if !servitord.is_file() {
        eprintln!(
            "e2e: no servitord at {} (a relative path is read from servitord/, where cargo runs the bench)",
            servitord.display()
        );
        return ExitCode::from(2);
    }
    // The bench runs as target/release/deps/e2e-<hash>.
    let target = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_owned()))
        .expect("the bench lies in target/<profile>/deps");
    let pid = std::process::id().to_string();
    let (work, tmpfs) = if options.tmpfs {
        let point = target.join("bench-tmpfs").join(&pid);
        match tmpfs::Tmpfs::mount(&point) {
            Ok(mounted) => (point, Some(mounted)),
            Err(e) => {
                eprintln!("e2e: --tmpfs: cannot mount a tmpfs (root is needed): {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        (target.join("bench-work").join(&pid), None)
    };
    let mut bench = Bench {
        sizes: if options.smoke {
            Sizes::smoke()
        } else {
            Sizes::full()
        },
        launch: Launch {
            binary: servitord.clone(),
            workers: workers(),
            log_filter: options.rust_log.clone(),
            args: Vec::new(),
        },
        servitorctl,
        no_build: options.no_build,
        fixtures: target.join("bench-fixtures"),
        work: work.clone(),
        rows: Vec::new(),
        series: Vec::new(),
        notes: Vec::new(),
    };
    fs::create_dir_all(&work).expect("the work folder can be made");
    let machine = machine(&servitord, &work);
    let load_before = load_average();
    eprintln!("{machine}");

    let mut failed = false;
    let selected = |group: &str| options.only.iter().any(|g| g == group);
    // Built before anything is measured: a build takes minutes, longer than an open
    // event stream waits.
    if selected("runs")
        && let Err(e) = ctl::servitorctl(&bench)
    {
        eprintln!("e2e: {e}");
        return ExitCode::FAILURE;
    }
    if selected("reads") {
        failed |= report_error("reads", reads::run(&mut bench));
    }
    if ["runs", "logs", "load"].iter().any(|g| selected(g)) {
        let result = runs::with_daemon(&mut bench, |bench, runs| {
            if selected("runs") {
                runs::run(bench, runs)?;
            }
            if selected("logs") {
                logs::run(bench, runs)?;
            }
            if selected("load") {
                load::run(bench, runs)?;
            }
            Ok(())
        });
        failed |= report_error("runs", result);
    }
    if selected("scaling") {
        failed |= report_error("scaling", scaling::run(&mut bench));
    }
    if selected("slurm") {
        failed |= report_error("slurm", slurm::run(&mut bench));
    }
    if selected("schedules") {
        failed |= report_error("schedules", schedules::run(&mut bench));
    }

    let title = format!(
        "servitord end-to-end benchmark{} — {machine}; load average {load_before} before, {} after; {:.0} s",
        if options.smoke {
            " (SMOKE: tiny sizes, figures mean nothing)"
        } else {
            ""
        },
        load_average(),
        started.elapsed().as_secs_f64()
    );
    println!("\n{}", render(&bench, &title, false));
    if options.markdown {
        println!("\n{}", render(&bench, &title, true));
    }

    if let (true, Some(mounted)) = (options.keep, tmpfs) {
        // Left mounted, to look at.
        std::mem::forget(mounted);
        eprintln!("e2e: --keep: the tmpfs stays mounted on {}", work.display());
    } else if !options.keep && !options.tmpfs {
        // After every measurement, and not waited for: removing the ~100 000 files of a
        // full run takes minutes on this file system. `rm` ends by itself.
        let removal = std::process::Command::new("rm")
            .arg("-rf")
            .arg(&work)
            .stdin(std::process::Stdio::null())
            .spawn();
        if removal.is_err() {
            let _ = fs::remove_dir_all(&work);
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The main table, the series and the notes.
fn render(bench: &Bench, title: &str, markdown: bool) -> String {
    let mut out = Table::from_rows(title, &bench.rows).render(markdown);
    for table in &bench.series {
        out.push('\n');
        out.push_str(&table.render(markdown));
    }
    if !bench.notes.is_empty() {
        out.push('\n');
        for note in &bench.notes {
            out.push_str(&format!("- {note}\n"));
        }
    }
    out
}

fn report_error(group: &str, result: std::io::Result<()>) -> bool {
    match result {
        Ok(()) => false,
        Err(e) => {
            eprintln!("e2e: the {group} scenarios failed: {e}");
            true
        }
    }
}

/// The daemon's default pool, `max(cpus, 2)`, given explicitly so the floor uses the same.
fn workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
}

/// `2 × Intel Xeon ..., Linux 6.1, ext4`: what the figures were measured on, and
/// which servitord when it is not this build's.
fn machine(servitord: &Path, work: &Path) -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map_or("unknown CPU", |(_, model)| model.trim());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let binary = if servitord == Path::new(env!("CARGO_BIN_EXE_servitord")) {
        String::new()
    } else {
        format!(", servitord {}", servitord.display())
    };
    format!(
        "{cpus} × {model}, Linux {}, runs' folders on {}{binary}",
        kernel.trim(),
        file_system(work)
    )
}

/// The type of the file system holding `path`, from the longest matching mount point.
fn file_system(path: &Path) -> String {
    let path = fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let mounts = fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_, point, kind) = (fields.next()?, fields.next()?, fields.next()?);
            path.starts_with(point)
                .then(|| (point.len(), kind.to_owned()))
        })
        .max()
        .map_or_else(|| "unknown fs".into(), |(_, kind)| kind)
}

fn load_average() -> String {
    let text = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().next().unwrap_or("?").to_owned()
}
