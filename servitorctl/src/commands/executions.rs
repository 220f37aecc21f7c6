//! `executions`: a job's runs, newest first.

use std::process::ExitCode;

use comfy_table::Cell;
use servitor_shared::ExecutionStatus;

use super::executions_of;
use crate::client::Client;
use crate::error::CliError;
use crate::output;

pub async fn run(
    client: &Client,
    job: &str,
    limit: Option<usize>,
    json: bool,
) -> Result<ExitCode, CliError> {
    let executions = executions_of(client, job, limit).await?;
    if json {
        output::json(&executions)?;
        return Ok(ExitCode::SUCCESS);
    }
    let color = output::color();
    let mut table = output::table(&["ID", "STATUS", "STARTED", "DURATION", "EXIT CODE"]);
    for execution in &executions {
        let started = output::time_of(execution, ExecutionStatus::Running)
            .or_else(|| output::time_of(execution, ExecutionStatus::Created))
            .map(output::local)
            .unwrap_or_default();
        let duration = output::run_time(execution)
            .map(output::short_duration)
            .unwrap_or_default();
        let exit_code = execution
            .result
            .as_ref()
            .map(|r| r.exit_code.to_string())
            .unwrap_or_default();
        table.add_row(vec![
            Cell::new(&execution.execution_id),
            output::status_cell(execution.status, color),
            Cell::new(started),
            Cell::new(duration),
            Cell::new(exit_code),
        ]);
    }
    output::print_table(&table)?;
    Ok(ExitCode::SUCCESS)
}
