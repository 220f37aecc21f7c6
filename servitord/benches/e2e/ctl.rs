//! `servitorctl run --wait`, the whole process.

use std::io;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::Bench;
use crate::report::{Row, Samples, Target, Unit};
use crate::runs::{Runs, TRIVIAL_JOB};

/// The whole `servitorctl run --wait` process, as cron or CI would start it.
pub fn run(bench: &mut Bench, runs: &Runs) -> io::Result<()> {
    let ctl = servitorctl(bench)?;
    let run = |args: &[&str]| -> io::Result<Duration> {
        let began = Instant::now();
        let status = Command::new(&ctl)
            .env_remove("RUST_BACKTRACE")
            .env_remove("SERVITOR_WORKDIR")
            .env_remove("SERVITOR_SOCKET")
            .arg("--socket")
            .arg(&runs.daemon.socket)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            return Err(io::Error::other(format!("servitorctl {args:?}: {status}")));
        }
        Ok(began.elapsed())
    };
    let (mut waits, mut versions) = (Samples::default(), Samples::default());
    for _ in 0..bench.sizes.ctl_runs {
        versions.push_ms(run(&["--version"])?);
        waits.push_ms(run(&["run", "--wait", TRIVIAL_JOB])?);
    }
    bench.rows.push(Row::new(
        "servitorctl --version (process start, reference)",
        Unit::Ms,
        versions,
        Target::None,
    ));
    bench.rows.push(Row::new(
        "servitorctl run --wait (trivial job), wall time",
        Unit::Ms,
        waits,
        Target::MedianAtMost(10.0),
    ));
    Ok(())
}

/// The release `servitorctl` beside `servitord`, built if missing (unless `--no-build`):
/// `cargo bench -p servitord` builds only this package's binaries.
pub fn servitorctl(bench: &Bench) -> io::Result<PathBuf> {
    if !bench.servitorctl.is_file() {
        if bench.no_build {
            return Err(io::Error::other(format!(
                "no servitorctl at {} (--no-build)",
                bench.servitorctl.display()
            )));
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        eprintln!("building the release servitorctl...");
        let status = Command::new(cargo)
            .args(["build", "--release", "-p", "servitorctl"])
            .status()?;
        if !status.success() || !bench.servitorctl.is_file() {
            return Err(io::Error::other(
                "cannot build servitorctl: cargo build --release -p servitorctl",
            ));
        }
    }
    Ok(bench.servitorctl.clone())
}
