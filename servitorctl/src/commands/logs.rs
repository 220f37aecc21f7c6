//! `logs`: an execution's log, byte for byte.

use std::process::ExitCode;

use servitor_shared::api::{EXECUTIONS_LOGS_GET, PARAM_EXECUTION_ID, PARAM_FOLLOW, PARAM_JOB_ID};

use super::ending::Tail;
use super::latest;
use crate::client::Client;
use crate::error::CliError;
use crate::output;

pub async fn run(
    client: &Client,
    job: &str,
    id: Option<String>,
    follow: bool,
) -> Result<ExitCode, CliError> {
    let id = match id {
        Some(id) => id,
        None => {
            latest(client, job)
                .await?
                .ok_or_else(|| CliError::Invalid(format!("job {job} has no executions yet")))?
                .execution_id
        }
    };
    copy_log(client, job, &id, follow).await?;
    Ok(ExitCode::SUCCESS)
}

/// Writes the log to stdout; with `follow`, until the run has ended.
pub async fn copy_log(client: &Client, job: &str, id: &str, follow: bool) -> Result<(), CliError> {
    let mut query = vec![(PARAM_JOB_ID, job), (PARAM_EXECUTION_ID, id)];
    if !follow {
        query.push((PARAM_FOLLOW, "false"));
    }
    let mut body = client.open(EXECUTIONS_LOGS_GET, &query).await?;
    while let Some(chunk) = client.next_chunk(&mut body).await? {
        output::write(&chunk)?;
    }
    Ok(())
}

/// The last `lines` lines of a log, as it is now.
pub async fn log_tail(
    client: &Client,
    job: &str,
    id: &str,
    lines: usize,
) -> Result<Vec<u8>, CliError> {
    let query = [
        (PARAM_JOB_ID, job),
        (PARAM_EXECUTION_ID, id),
        (PARAM_FOLLOW, "false"),
    ];
    let mut body = client.open(EXECUTIONS_LOGS_GET, &query).await?;
    let mut tail = Tail::new(lines);
    while let Some(chunk) = client.next_chunk(&mut body).await? {
        tail.push(&chunk);
    }
    Ok(tail.into_bytes())
}
