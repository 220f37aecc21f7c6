//! `run`: start a run; with `--wait`, wait for it and exit with the job's exit code.

use std::process::ExitCode;

use servitor_shared::api::{
    EXECUTIONS_GET, JOBS_GET, JOBS_RUN, PARAM_EXECUTION_ID, PARAM_INPUT_VALUE_PREFIX, PARAM_JOB_ID,
    RunAccepted,
};
use servitor_shared::inputs;
use servitor_shared::{Event, Execution, ExecutionStatus, InputValues, Job};

use super::ending;
use super::events::EventStream;
use super::logs::{copy_log, log_tail};
use crate::cli::Run;
use crate::client::Client;
use crate::error::CliError;
use crate::output;

pub async fn run(client: &Client, run: Run) -> Result<ExitCode, CliError> {
    let job: Job = client.get(JOBS_GET, &[(PARAM_JOB_ID, &run.job)]).await?;
    check_inputs(&job, &run.inputs)?;

    let names: Vec<String> = run
        .inputs
        .iter()
        .map(|(key, _)| format!("{PARAM_INPUT_VALUE_PREFIX}{key}"))
        .collect();
    let mut query = vec![(PARAM_JOB_ID, run.job.as_str())];
    query.extend(
        names
            .iter()
            .zip(&run.inputs)
            .map(|(name, (_, value))| (name.as_str(), value.as_str())),
    );
    let accepted: RunAccepted = client.post(JOBS_RUN, &query).await?;
    let id = accepted.execution_id;

    if !run.wait && !run.follow {
        if !run.quiet {
            output::line(&id)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if run.follow {
        copy_log(client, &run.job, &id, true).await?;
    }
    let execution = wait_for_end(client, &run.job, &id).await?;
    if run.json {
        output::json(&execution)?;
    }
    if !run.quiet {
        report_failure(client, &run, &execution).await?;
    }
    Ok(exit_code(&execution))
}

/// On stderr, for a run that did not succeed: how it ended, and (unless its log was
/// just followed) the log's last lines, so that cron's mail says what went wrong.
async fn report_failure(client: &Client, run: &Run, execution: &Execution) -> Result<(), CliError> {
    let Some(line) = ending::describe(&run.job, execution) else {
        return Ok(());
    };
    let mut report = format!("servitorctl: {line}\n").into_bytes();
    if !run.follow && run.log_lines > 0 {
        // The log is a help here, not the point: a log that cannot be read is skipped.
        let tail = log_tail(client, &run.job, &execution.execution_id, run.log_lines)
            .await
            .unwrap_or_default();
        if !tail.is_empty() {
            report.extend_from_slice(b"servitorctl: the end of its log:\n");
            report.extend_from_slice(&tail);
        }
    }
    output::write_err(&report)
}

/// Refuses, before anything starts, inputs the job does not take, missing required
/// ones and values not among an input's choices, naming the inputs it does take.
fn check_inputs(job: &Job, given: &[(String, String)]) -> Result<(), CliError> {
    let spec = &job.input_spec;
    let takes = || {
        if spec.is_empty() {
            return format!("job {} takes no inputs", job.job_id);
        }
        let names: Vec<String> = inputs::fields(spec)
            .unwrap_or_default()
            .iter()
            .map(|(name, field)| match field.required {
                true => format!("{name} (required)"),
                false => (*name).to_owned(),
            })
            .collect();
        format!("the inputs of {} are: {}", job.job_id, names.join(", "))
    };
    let mut values = InputValues::new();
    for (key, value) in given {
        if !spec.contains_key(key) {
            return Err(CliError::Invalid(format!(
                "unknown input {key}: {}",
                takes()
            )));
        }
        if values.insert(key.clone(), value.clone()).is_some() {
            return Err(CliError::Invalid(format!("input {key} is given twice")));
        }
    }
    // A broken spec is servitord's to explain.
    if inputs::fields(spec).is_ok() {
        inputs::resolve(spec, &values)
            .map_err(|e| CliError::Invalid(format!("{e}: {}", takes())))?;
    }
    Ok(())
}

/// Waits until the execution has ended and returns it. Listens to the events first,
/// then looks at the execution, so no change can slip in between.
pub async fn wait_for_end(client: &Client, job: &str, id: &str) -> Result<Execution, CliError> {
    let query = [(PARAM_JOB_ID, job), (PARAM_EXECUTION_ID, id)];
    loop {
        let mut events = EventStream::open(client).await.map_err(lost)?;
        let execution: Execution = client.get(EXECUTIONS_GET, &query).await.map_err(lost)?;
        if execution.status.is_terminal() {
            return Ok(execution);
        }
        loop {
            match events.next(client).await.map_err(lost)? {
                Some(Event::JobExecutionStatusChanged {
                    job_id,
                    execution_id,
                    status,
                }) if job_id == job && execution_id == id && status.is_terminal() => {
                    return client.get(EXECUTIONS_GET, &query).await.map_err(lost);
                }
                Some(_) => {}
                // The daemon closed the stream (it is stopping, or we fell behind):
                // look again.
                None => break,
            }
        }
    }
}

/// Losing the daemon while waiting is losing it, even at a reconnect.
fn lost(error: CliError) -> CliError {
    match error {
        CliError::Unreachable { socket, reason } => CliError::Lost { socket, reason },
        other => other,
    }
}

/// The job's outcome as an exit code, the way shells report a command's.
pub fn exit_code(execution: &Execution) -> ExitCode {
    let code = execution.result.as_ref().map_or(-1, |r| r.exit_code);
    let started = execution
        .status_history
        .iter()
        .any(|c| c.status == ExecutionStatus::Running);
    let code: u8 = match execution.status {
        ExecutionStatus::Success => 0,
        ExecutionStatus::Cancelled => 130,
        ExecutionStatus::Failure if !started => 126,
        ExecutionStatus::Failure if code < 0 => {
            128u8.saturating_add(u8::try_from(-code).unwrap_or(127))
        }
        ExecutionStatus::Failure => u8::try_from(code & 0xff)
            .ok()
            .filter(|c| *c != 0)
            .unwrap_or(1),
        ExecutionStatus::Created | ExecutionStatus::Running | ExecutionStatus::Unknown => 1,
    };
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use servitor_shared::{RunResult, StatusChange};

    use super::*;

    fn ended(statuses: &[ExecutionStatus], exit_code: i64) -> Execution {
        Execution {
            execution_id: "1".into(),
            status: *statuses.last().unwrap(),
            status_history: statuses
                .iter()
                .map(|status| StatusChange {
                    timestamp: "2024-03-17T00:59:08.123456+00:00".into(),
                    status: *status,
                })
                .collect(),
            result: Some(RunResult {
                exit_code,
                message: String::new(),
            }),
            input_values: Default::default(),
            triggered_by: None,
            cancelled_by: None,
            timed_out: false,
            error: None,
            slurm: None,
        }
    }

    #[test]
    fn exit_codes_follow_the_job() {
        use ExecutionStatus::*;
        assert_eq!(
            exit_code(&ended(&[Created, Running, Success], 0)),
            ExitCode::from(0)
        );
        assert_eq!(
            exit_code(&ended(&[Created, Running, Failure], 42)),
            ExitCode::from(42)
        );
        assert_eq!(
            exit_code(&ended(&[Created, Running, Failure], 256)),
            ExitCode::from(1)
        );
        assert_eq!(
            exit_code(&ended(&[Created, Running, Failure], -9)),
            ExitCode::from(137)
        );
        assert_eq!(
            exit_code(&ended(&[Created, Failure], -1)),
            ExitCode::from(126)
        );
        assert_eq!(
            exit_code(&ended(&[Created, Running, Cancelled], -2)),
            ExitCode::from(130)
        );
    }

    #[test]
    fn inputs_are_checked_against_the_spec() {
        let job: Job = serde_json::from_str(
            r#"{"job_id": "greet", "input_spec": {"NAME": {"required": true}, "GREETING": {}}}"#,
        )
        .unwrap();
        let given = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(check_inputs(&job, &given(&[("NAME", "Ada")])).is_ok());
        let unknown = check_inputs(&job, &given(&[("NAME", "Ada"), ("CITY", "x")])).unwrap_err();
        assert_eq!(
            unknown.to_string(),
            "unknown input CITY: the inputs of greet are: NAME (required), GREETING"
        );
        assert!(
            check_inputs(&job, &given(&[("GREETING", "Hi")]))
                .unwrap_err()
                .to_string()
                .starts_with("missing required input NAME")
        );
        assert!(check_inputs(&job, &given(&[("NAME", "a"), ("NAME", "b")])).is_err());
        let choosy: Job = serde_json::from_str(
            r#"{"job_id": "deploy", "input_spec": {"ENV": {"choices": ["staging", "production"]}}}"#,
        )
        .unwrap();
        assert_eq!(
            check_inputs(&choosy, &given(&[("ENV", "qa")]))
                .unwrap_err()
                .to_string(),
            "input ENV must be one of: staging, production: the inputs of deploy are: ENV"
        );
    }
}
