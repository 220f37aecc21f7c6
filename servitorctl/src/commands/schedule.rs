//! `pause` and `resume`: stop a job's schedule from firing, and let it fire again.

use std::process::ExitCode;

use servitor_shared::api::{Acknowledged, PARAM_JOB_ID, SCHEDULE_PAUSE, SCHEDULE_RESUME};

use crate::client::Client;
use crate::error::CliError;
use crate::output;

pub async fn pause(client: &Client, job: &str) -> Result<ExitCode, CliError> {
    let _: Acknowledged = client.post(SCHEDULE_PAUSE, &[(PARAM_JOB_ID, job)]).await?;
    output::line(format!("schedule paused: {job}"))?;
    Ok(ExitCode::SUCCESS)
}

pub async fn resume(client: &Client, job: &str) -> Result<ExitCode, CliError> {
    let _: Acknowledged = client.post(SCHEDULE_RESUME, &[(PARAM_JOB_ID, job)]).await?;
    output::line(format!("schedule resumed: {job}"))?;
    Ok(ExitCode::SUCCESS)
}
