//! `show`: one execution in detail.

use std::fmt::Write as _;
use std::process::ExitCode;

use servitor_shared::api::{EXECUTIONS_GET, PARAM_EXECUTION_ID, PARAM_JOB_ID};
use servitor_shared::{ExecutionWithTrigger, Trigger};

use crate::client::Client;
use crate::error::CliError;
use crate::output;

pub async fn run(client: &Client, job: &str, id: &str, json: bool) -> Result<ExitCode, CliError> {
    let execution: ExecutionWithTrigger = client
        .get(
            EXECUTIONS_GET,
            &[(PARAM_JOB_ID, job), (PARAM_EXECUTION_ID, id)],
        )
        .await?;
    if json {
        output::json(&execution)?;
    } else {
        output::write(describe(job, &execution).as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(job: &str, shown: &ExecutionWithTrigger) -> String {
    let execution = &shown.execution;
    let mut text = String::new();
    let _ = writeln!(text, "Job:        {job}");
    let _ = writeln!(text, "Execution:  {}", execution.execution_id);
    let _ = writeln!(text, "Status:     {}", execution.status);
    let _ = writeln!(text, "Trigger:    {}", trigger(shown));
    if let Some(duration) = output::run_time(execution) {
        let _ = writeln!(text, "Duration:   {}", output::short_duration(duration));
    }
    if execution.timed_out {
        let _ = writeln!(text, "Timed out:  yes");
    }
    if let Some(slurm) = &execution.slurm {
        let node = slurm
            .node
            .as_deref()
            .map_or_else(String::new, |node| format!(" on {node}"));
        let _ = writeln!(text, "Slurm job:  {}{node}", slurm.job_id);
    }
    if let Some(result) = &execution.result {
        let _ = writeln!(text, "Exit code:  {}", result.exit_code);
        if !result.message.is_empty() {
            let _ = writeln!(text, "Message:    {}", result.message);
        }
    }
    if let Some(error) = &execution.error {
        let _ = writeln!(text, "Error:      {error}");
    }
    if execution.input_values.is_empty() {
        let _ = writeln!(text, "Inputs:     none");
    } else {
        let _ = writeln!(text, "Inputs:");
        for (name, value) in &execution.input_values {
            let _ = writeln!(text, "  {name}={value}");
        }
    }
    let _ = writeln!(text, "History:");
    for change in &execution.status_history {
        let when = change
            .timestamp
            .parse()
            .map(output::local)
            .unwrap_or_else(|_| change.timestamp.clone());
        let _ = writeln!(text, "  {when}  {}", change.status);
    }
    text
}

/// `api`, `schedule`, or `retry 2 of #5`.
fn trigger(shown: &ExecutionWithTrigger) -> String {
    let trigger = &shown.trigger;
    match (trigger.trigger, &trigger.retry_of, trigger.attempt) {
        (Trigger::Retry, Some(of), Some(attempt)) => format!("retry {attempt} of #{of}"),
        (kind, _, _) => kind.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use servitor_shared::RunTrigger;

    use super::*;

    #[test]
    fn says_what_made_the_run() {
        let shown = |trigger: RunTrigger| -> String {
            let execution = serde_json::from_str(
                r#"{"execution_id": "3", "status": "failure", "status_history": [],
                    "result": null, "input_values": {}}"#,
            )
            .unwrap();
            super::trigger(&ExecutionWithTrigger { execution, trigger })
        };
        assert_eq!(shown(RunTrigger::default()), "api");
        let scheduled = RunTrigger {
            trigger: Trigger::Schedule,
            ..RunTrigger::default()
        };
        assert_eq!(shown(scheduled), "schedule");
        let retry = RunTrigger {
            trigger: Trigger::Retry,
            retry_of: Some("2".into()),
            attempt: Some(2),
        };
        assert_eq!(shown(retry), "retry 2 of #2");
    }
}
