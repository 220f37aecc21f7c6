//! The web UI's benchmark: the release `servitord` with 1,000 and 10,000 jobs (folders
//! of 50, each run once), the real `servitorctl ui` bridge, and headless Chromium, as
//! the browser tests use them. For the UI of this tree and for the UI before issue 14
//! (`ui/` at commit 82118f2, taken with `git archive`), in the same run:
//!
//! - the time from the navigation until every job on screen shows its status, and
//!   until the last jobs of the tree do too (every job loaded);
//! - the time from typing in the filter to the frame that shows only the matches;
//! - the main thread's busy time (DevTools `TaskDuration`) and its long tasks while
//!   1,000 runs go through as fast as the daemon takes them;
//!
//! and the cost of `GET /api/jobs/get_list` itself, over the socket.
//!
//! ```sh
//! cargo bench -p servitorctl --bench ui               # the full run (~10 min)
//! cargo bench -p servitorctl --bench ui -- --smoke    # tiny sizes, for CI (seconds)
//! cargo bench -p servitorctl --bench ui -- --cap 30   # give the old UI at most 30 s to load
//! cargo bench -p servitorctl --bench ui -- --no-build # use target/release/servitord as it is
//! ```
//!
//! `cargo bench --workspace --bench e2e --bench ui -- --smoke --no-build` (what CI runs)
//! builds both release binaries in one go, with the features of one invocation, so
//! neither benchmark builds the other package's binary again.

use servitor_test_support as support;

#[allow(dead_code)]
#[path = "../../tests/browser/harness.rs"]
mod harness;
mod load;
mod report;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use harness::{Browser, Servitor, Tools};
use report::{Row, Table, median};
use serde_json::{Value as Json, json};

/// The UI before issue 14: each job's latest run asked for separately.
const BASELINE: &str = "82118f2";
const PROBES: &str = include_str!("probes.js");

struct Options {
    smoke: bool,
    /// How long the old UI may take to load before it is reported as "> cap".
    cap: Duration,
    /// `--no-build`: the release servitord is used as it is, not rebuilt first.
    no_build: bool,
}

impl Options {
    fn parse() -> Result<Self, String> {
        let mut options = Self {
            smoke: std::env::var_os("SERVITOR_BENCH_SMOKE").is_some_and(|v| v == "1"),
            cap: Duration::from_secs(60),
            no_build: false,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                // Given by `cargo bench` to every bench binary.
                "--bench" => {}
                "--smoke" => options.smoke = true,
                "--no-build" => options.no_build = true,
                "--cap" => {
                    let text = args.next().ok_or("--cap needs a number of seconds")?;
                    let seconds: u64 = text
                        .parse()
                        .map_err(|_| format!("--cap {text:?} is not a number of seconds"))?;
                    options.cap = Duration::from_secs(seconds);
                }
                other => {
                    return Err(format!(
                        "unknown argument {other:?} (see benches/ui/main.rs)"
                    ));
                }
            }
        }
        Ok(options)
    }
}

/// One size's sizes.
struct Size {
    jobs: usize,
    /// Page loads (and filter rounds) with the new UI, and with the old one.
    loads: usize,
    old_loads: usize,
    burst: usize,
    get_list_requests: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum Ui {
    Old,
    New,
}

impl Ui {
    fn name(self) -> &'static str {
        match self {
            Ui::Old => "old",
            Ui::New => "new",
        }
    }
}

fn main() -> ExitCode {
    let options = match Options::parse() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("ui bench: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(tools) = harness::tools("the web UI benchmark") else {
        return ExitCode::SUCCESS;
    };
    if !options.no_build {
        ensure_release_servitord();
    }
    let old_ui = tempfile::TempDir::new().expect("a temporary folder");
    let old_root = extract_old_ui(old_ui.path());
    let new_root = harness::ui_root();
    let sizes = if options.smoke {
        vec![Size {
            jobs: 60,
            loads: 1,
            old_loads: 1,
            burst: 50,
            get_list_requests: 20,
        }]
    } else {
        vec![
            Size {
                jobs: 1000,
                loads: 3,
                old_loads: 3,
                burst: 1000,
                get_list_requests: 200,
            },
            // The old UI takes minutes at this size: one load of it, cut at the cap.
            Size {
                jobs: 10_000,
                loads: 3,
                old_loads: 1,
                burst: 1000,
                get_list_requests: 200,
            },
        ]
    };
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let mut tables = Vec::new();
    for size in &sizes {
        tables.push(runtime.block_on(measure_size(&tools, size, &options, &old_root, &new_root)));
    }
    println!(
        "\n**servitor web UI benchmark — {}; headless Chromium {}; {:.0} s**\n",
        report::machine(),
        report::chromium_version(),
        started.elapsed().as_secs_f64()
    );
    for table in &tables {
        table.print();
    }
    ExitCode::SUCCESS
}

async fn measure_size(
    tools: &Tools,
    size: &Size,
    options: &Options,
    old_root: &Path,
    new_root: &Path,
) -> Table {
    eprintln!(
        "{} jobs: making the working directory and running each job once...",
        size.jobs
    );
    let mut servitor = Servitor::start_with_ui(load::workdir(size.jobs), new_root);
    load::run_all(&servitor.daemon, &load::job_ids(size.jobs), 4);
    let mut table = Table::new(format!(
        "{} jobs in folders of 50, each run once",
        size.jobs
    ));

    let (answer, bytes) = load::get_list_cost(&servitor.daemon, size.get_list_requests);
    table.push(Row::single(
        format!(
            "GET jobs/get_list, {:.1} MB ({} requests, median)",
            bytes as f64 / 1e6,
            size.get_list_requests
        ),
        report::ms(median(&answer)),
        if size.jobs >= 10_000 { "≤ 20 ms" } else { "" },
        (size.jobs >= 10_000).then(|| median(&answer) <= 20.0),
    ));

    let cap_ms = options.cap.as_secs_f64() * 1000.0;
    let mut figures = [Figures::default(), Figures::default()];
    for (k, ui) in [Ui::Old, Ui::New].into_iter().enumerate() {
        servitor.switch_ui(if ui == Ui::Old { old_root } else { new_root });
        let loads = if ui == Ui::Old {
            size.old_loads
        } else {
            size.loads
        };
        for round in 0..loads {
            eprintln!(
                "{} jobs, {} UI: load {}/{loads}",
                size.jobs,
                ui.name(),
                round + 1
            );
            let browser =
                Browser::start(tools, &format!("bench-{}-{}", ui.name(), size.jobs)).await;
            browser
                .client
                .update_timeouts(fantoccini::wd::TimeoutConfiguration::new(
                    Some(options.cap + Duration::from_secs(60)),
                    Some(options.cap + Duration::from_secs(60)),
                    None,
                ))
                .await
                .expect("setting the script timeout");
            browser.goto(&servitor.url("")).await;
            let visible = probe(&browser, "visible", vec![json!(cap_ms)])
                .await
                .as_f64();
            let all = probe(&browser, "all", vec![json!(cap_ms)]).await.as_f64();
            if all.is_none() {
                let counts = probe(&browser, "counts", vec![]).await;
                eprintln!("  not all loaded within the cap: {counts}");
                figures[k].unfinished = Some(counts);
            }
            figures[k].visible.push(visible.unwrap_or(f64::INFINITY));
            figures[k].all.push(all.unwrap_or(f64::INFINITY));
            // The filter: a few queries, each matching one job or a few.
            for query in load::filter_queries(size.jobs, round) {
                let took = probe(&browser, "filter", vec![json!(query)]).await;
                figures[k]
                    .filter
                    .push(took.as_f64().expect("a filter time"));
            }
            if round == 0 {
                figures[k].burst = Some(burst(&browser, &servitor, size).await);
            }
            browser.close().await;
        }
    }
    let [old, new] = figures;
    let target_visible = if size.jobs >= 10_000 { 3000.0 } else { 1000.0 };
    table.push(Row::compare(
        "every job on screen shows its status (from navigation, median)",
        report::ms_capped(median(&old.visible), cap_ms),
        report::ms(median(&new.visible)),
        &format!("≤ {}", report::ms(target_visible)),
        Some(median(&new.visible) <= target_visible),
    ));
    table.push(Row::compare(
        "the tree's last jobs show theirs too (all loaded)",
        report::ms_capped(median(&old.all), cap_ms),
        report::ms(median(&new.all)),
        "",
        None,
    ));
    table.push(Row::compare(
        "typing in the filter → the tree shows only the matches (median)",
        report::ms(median(&old.filter)),
        report::ms(median(&new.filter)),
        "",
        None,
    ));
    if let Some(counts) = &old.unfinished {
        table.note(format!(
            "old UI after the {} s cap: {counts}",
            options.cap.as_secs()
        ));
    }
    if let (Some(o), Some(n)) = (&old.burst, &new.burst) {
        table.push(Row::compare(
            &format!(
                "{} runs: main thread busy ({:.1} s / {:.1} s)",
                size.burst, o.window_s, n.window_s
            ),
            format!(
                "{:.0} ms ({:.0} %)",
                o.busy_ms,
                o.busy_ms / o.window_s / 10.0
            ),
            format!(
                "{:.0} ms ({:.0} %)",
                n.busy_ms,
                n.busy_ms / n.window_s / 10.0
            ),
            "",
            None,
        ));
        table.push(Row::compare(
            &format!(
                "{} runs: long tasks (> 50 ms): count, total, longest",
                size.burst
            ),
            o.long_tasks(),
            n.long_tasks(),
            "",
            None,
        ));
    }
    table
}

#[derive(Default)]
struct Figures {
    visible: Vec<f64>,
    all: Vec<f64>,
    filter: Vec<f64>,
    burst: Option<Burst>,
    unfinished: Option<Json>,
}

struct Burst {
    window_s: f64,
    busy_ms: f64,
    long: Vec<f64>,
}

impl Burst {
    fn long_tasks(&self) -> String {
        let total: f64 = self.long.iter().fold(0.0, |sum, d| sum + d);
        let longest = self.long.iter().copied().fold(0.0, f64::max);
        format!("{}, {:.0} ms, {:.0} ms", self.long.len(), total, longest)
    }
}

/// Runs `size.burst` runs (one per job, from the first) as fast as the daemon takes
/// them, with the page open on the overview; measures its main thread from the first
/// POST until every run has ended and one more second has passed.
async fn burst(browser: &Browser, servitor: &Servitor, size: &Size) -> Burst {
    probe(browser, "watchLongTasks", vec![]).await;
    browser.cdp("Performance.enable", json!({})).await;
    let before = task_seconds(browser).await;
    let started = Instant::now();
    let ids = load::job_ids(size.jobs);
    let chosen: Vec<String> = ids.iter().cycle().take(size.burst).cloned().collect();
    let socket = servitor.daemon.socket();
    tokio::task::spawn_blocking(move || load::run_all_at(&socket, &chosen, 4))
        .await
        .expect("the burst");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let window_s = started.elapsed().as_secs_f64();
    let after = task_seconds(browser).await;
    let long: Vec<f64> = serde_json::from_value(probe(browser, "longTasks", vec![]).await)
        .expect("long task durations");
    Burst {
        window_s,
        busy_ms: (after - before) * 1000.0,
        long,
    }
}

/// The page's main-thread busy time so far (DevTools `Performance.getMetrics`).
async fn task_seconds(browser: &Browser) -> f64 {
    let metrics = browser.cdp("Performance.getMetrics", json!({})).await;
    metrics["metrics"]
        .as_array()
        .and_then(|all| all.iter().find(|m| m["name"] == "TaskDuration"))
        .and_then(|m| m["value"].as_f64())
        .expect("TaskDuration in the page's metrics")
}

async fn probe(browser: &Browser, name: &str, args: Vec<Json>) -> Json {
    let mut all = vec![json!(name)];
    all.extend(args);
    let answer = browser
        .client
        .execute_async(PROBES, all)
        .await
        .unwrap_or_else(|e| panic!("the probe {name} failed: {e}"));
    if let Some(error) = answer.get("error") {
        panic!("the probe {name} failed in the page: {error}");
    }
    answer
}

/// `cargo bench` builds this package's binaries, not servitord: build it (a no-op
/// when it is up to date).
fn ensure_release_servitord() {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "-p", "servitord"])
        .stdout(Stdio::null())
        .status()
        .expect("cargo runs");
    assert!(
        status.success(),
        "cannot build servitord: cargo build --release -p servitord"
    );
}

/// `ui/` as it was at `BASELINE`, into `dir`; answers its path.
fn extract_old_ui(dir: &Path) -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let archive = Command::new("git")
        .arg("-C")
        .arg(&repo)
        .args(["archive", "--format=tar", BASELINE, "ui"])
        .output()
        .expect("git runs");
    assert!(
        archive.status.success(),
        "git archive {BASELINE} ui failed (the old UI is taken from the repository's history): {}",
        String::from_utf8_lossy(&archive.stderr)
    );
    let mut tar = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(dir)
        .stdin(Stdio::piped())
        .spawn()
        .expect("tar runs");
    std::io::Write::write_all(&mut tar.stdin.take().expect("tar's stdin"), &archive.stdout)
        .expect("writing to tar");
    assert!(tar.wait().expect("tar ends").success(), "tar -x failed");
    dir.join("ui")
}
