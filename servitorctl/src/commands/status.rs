//! `status`: is servitord up, and how is it doing.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use servitor_shared::api::{HEALTH, Health};

use crate::client::Client;
use crate::error::CliError;
use crate::output;

pub async fn run(client: &Client, json: bool) -> Result<ExitCode, CliError> {
    let health: Health = client.get_any(HEALTH).await?;
    let ours = env!("CARGO_PKG_VERSION");
    if health.version != ours {
        eprintln!(
            "servitorctl: warning: this is servitorctl {ours}, talking to servitord {}",
            health.version
        );
    }
    if json {
        output::json(&health)?;
    } else {
        output::write(describe(&health).as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(health: &Health) -> String {
    let uptime = output::short_duration(Duration::from_secs_f64(health.uptime_seconds.max(0.0)));
    let mut text = String::new();
    let _ = writeln!(
        text,
        "servitord {} ({}), up {uptime}",
        health.version, health.status
    );
    let _ = writeln!(text, "workdir:  {}", health.workdir);
    let _ = writeln!(text, "jobs:     {}", health.jobs);
    let _ = writeln!(
        text,
        "running:  {} ({} workers)",
        health.running, health.workers
    );
    let _ = writeln!(text, "queued:   {}", health.queued);
    text
}
