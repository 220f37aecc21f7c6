//! `cancel`: stop a queued or running execution.

use std::process::ExitCode;

use servitor_shared::api::{Acknowledged, EXECUTIONS_CANCEL, PARAM_EXECUTION_ID, PARAM_JOB_ID};

use crate::client::Client;
use crate::error::CliError;
use crate::output;

pub async fn run(client: &Client, job: &str, id: &str) -> Result<ExitCode, CliError> {
    let _: Acknowledged = client
        .post(
            EXECUTIONS_CANCEL,
            &[(PARAM_JOB_ID, job), (PARAM_EXECUTION_ID, id)],
        )
        .await?;
    output::line(format!("cancel requested: {job} #{id}"))?;
    Ok(ExitCode::SUCCESS)
}
