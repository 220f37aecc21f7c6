//! `jobs`: the job list, as a table or a tree, with each job's last run: one request,
//! however many jobs there are.

use std::process::ExitCode;

use comfy_table::{Cell, Table};
use servitor_shared::api::JOBS_GET_LIST;
use servitor_shared::{Job, JobSettings, LastExecution, OnBusy};

use crate::client::Client;
use crate::error::CliError;
use crate::output;

pub async fn run(client: &Client, tree: bool, json: bool) -> Result<ExitCode, CliError> {
    let jobs: Vec<Job> = client.get(JOBS_GET_LIST, &[]).await?;
    if json {
        output::json(&jobs)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = output::table(&[
        "JOB", "INPUTS", "SETTINGS", "NEXT RUN", "LAST RUN", "STATUS", "WHEN",
    ]);
    let color = output::color();
    let mut folders: Vec<&str> = Vec::new();
    for job in &jobs {
        let name = if tree {
            let segments: Vec<&str> = job.job_id.split('/').collect();
            let (name, parents) = segments
                .split_last()
                .expect("split yields one segment at least");
            let shared = folders
                .iter()
                .zip(parents)
                .take_while(|(a, b)| a == b)
                .count();
            folders.truncate(shared);
            for folder in &parents[shared..] {
                table.add_row(vec![format!("{}{folder}/", "  ".repeat(folders.len()))]);
                folders.push(folder);
            }
            format!("{}{name}", "  ".repeat(folders.len()))
        } else {
            job.job_id.clone()
        };
        add_row(&mut table, name, job, color);
    }
    output::print_table(&table)?;
    Ok(ExitCode::SUCCESS)
}

fn add_row(table: &mut Table, name: String, job: &Job, color: bool) {
    let inputs = match &job.error {
        Some(error) => format!("error: {error}"),
        None => job
            .input_spec
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
    };
    let mut row = vec![
        Cell::new(name),
        Cell::new(inputs),
        Cell::new(summary(&job.settings)),
        Cell::new(next_run(job)),
    ];
    if let Some(last) = &job.last_execution {
        let when = last_change(last)
            .and_then(|time| time.parse().ok())
            .map(output::ago)
            .unwrap_or_default();
        row.extend([
            Cell::new(format!("#{}", last.execution_id)),
            output::status_cell(last.status, color),
            Cell::new(when),
        ]);
    } else {
        row.push(Cell::new("-"));
    }
    table.add_row(row);
}

/// When the run last changed status.
fn last_change(last: &LastExecution) -> Option<&str> {
    [&last.ended_at, &last.started_at, &last.created_at]
        .into_iter()
        .find_map(|time| time.as_deref())
}

/// When the job's schedule fires next, in local time; `paused`; `-` when unscheduled.
fn next_run(job: &Job) -> String {
    match (&job.schedule, &job.next_run) {
        (Some(schedule), _) if schedule.paused => "paused".into(),
        (_, Some(next)) => next
            .parse()
            .map(output::local)
            .unwrap_or_else(|_| next.clone()),
        _ => "-".into(),
    }
}

/// The settings that matter at a glance: `timeout 2h, at most 1 (skip), keep 100 / 30d`.
fn summary(settings: &JobSettings) -> String {
    let mut parts = Vec::new();
    if let Some(timeout) = &settings.timeout {
        parts.push(format!("timeout {timeout}"));
    }
    if let Some(limit) = settings.concurrency {
        let skip = if settings.on_busy == Some(OnBusy::Skip) {
            " (skip)"
        } else {
            ""
        };
        parts.push(format!("at most {limit}{skip}"));
    }
    if let Some(retention) = &settings.retention {
        let rules: Vec<String> = [
            retention.keep_last.map(|n| n.to_string()),
            retention.max_age.clone(),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !rules.is_empty() {
            parts.push(format!("keep {}", rules.join(" / ")));
        }
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn summarises_settings() {
        let settings = serde_json::from_str(
            r#"{"timeout": "2h", "concurrency": 1, "on_busy": "skip", "retention": {"keep_last": 100, "max_age": "30d"}, "env": {"A": "1"}}"#,
        )
        .unwrap();
        assert_eq!(
            super::summary(&settings),
            "timeout 2h, at most 1 (skip), keep 100 / 30d"
        );
        assert_eq!(super::summary(&Default::default()), "");
    }
}
