//! One module per command.

mod cancel;
mod docs;
mod ending;
mod events;
mod executions;
mod jobs;
mod logs;
mod run;
mod schedule;
mod show;
mod status;
mod ui;

use std::process::ExitCode;

use servitor_shared::Execution;
use servitor_shared::api::{EXECUTIONS_GET_LIST, PARAM_JOB_ID, PARAM_LIMIT};

use crate::cli::{Cli, Command};
use crate::client::Client;
use crate::error::CliError;

pub async fn run(cli: Cli) -> Result<ExitCode, CliError> {
    let client = Client::new(cli.target.socket_path());
    match cli.command {
        Command::Jobs { tree, json } => jobs::run(&client, tree, json).await,
        Command::Run(run) => run::run(&client, run).await,
        Command::Executions { job, limit, json } => {
            executions::run(&client, &job, limit, json).await
        }
        Command::Show {
            job,
            execution,
            json,
        } => show::run(&client, &job, &execution, json).await,
        Command::Logs {
            job,
            execution,
            follow,
        } => logs::run(&client, &job, execution, follow).await,
        Command::Cancel { job, execution } => cancel::run(&client, &job, &execution).await,
        Command::Pause { job } => schedule::pause(&client, &job).await,
        Command::Resume { job } => schedule::resume(&client, &job).await,
        Command::Events { json } => events::run(&client, json).await,
        Command::Status { json } => status::run(&client, json).await,
        Command::Ui {
            listen,
            allow_remote,
        } => ui::run(&client, listen, allow_remote).await,
        Command::Completions { shell } => docs::completions(shell),
        Command::Man { dir } => docs::man(dir.as_deref()),
    }
}

/// A job's executions, newest first, at most `limit` of them.
async fn executions_of(
    client: &Client,
    job: &str,
    limit: Option<usize>,
) -> Result<Vec<Execution>, CliError> {
    let limit_text = limit.map(|n| n.to_string());
    let mut query = vec![(PARAM_JOB_ID, job)];
    if let Some(limit) = &limit_text {
        query.push((PARAM_LIMIT, limit));
    }
    let mut executions: Vec<Execution> = client.get(EXECUTIONS_GET_LIST, &query).await?;
    // A daemon without paging answers them all.
    executions.truncate(limit.unwrap_or(usize::MAX));
    Ok(executions)
}

/// The job's newest execution, if it has one.
async fn latest(client: &Client, job: &str) -> Result<Option<Execution>, CliError> {
    Ok(executions_of(client, job, Some(1))
        .await?
        .into_iter()
        .next())
}
