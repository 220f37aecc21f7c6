//! The command line: every command, flag and environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use servitor_shared::api::SOCKET_PATH;
use servitor_shared::env;

/// Talks to servitord: list jobs, run them, follow their logs, open the web UI.
#[derive(Debug, Parser)]
#[command(name = "servitorctl", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(flatten)]
    pub target: Target,
    #[command(subcommand)]
    pub command: Command,
}

pub const EXIT_CODES: &str = "\
Exit codes:
  0        success (with run --wait: the job succeeded)
  1        servitord refused the request (unknown job, bad input, run not running...)
  2        bad usage, or servitord cannot be reached
  N        run --wait: the job failed with exit code N
  126      run --wait: the job could not start
  128+N    run --wait: the job was killed by signal N
  130      run --wait: the run was cancelled";

/// Which servitord to talk to.
#[derive(Debug, Args)]
pub struct Target {
    /// The socket of servitord [default: <workdir>/sockets/servitor.sock].
    #[arg(long, global = true, env = env::SOCKET)]
    pub socket: Option<PathBuf>,
    /// servitord's working directory, to find its socket [default: .].
    #[arg(long, global = true, env = env::WORKDIR)]
    pub workdir: Option<PathBuf>,
}

impl Target {
    pub fn socket_path(&self) -> PathBuf {
        match (&self.socket, &self.workdir) {
            (Some(socket), _) => socket.clone(),
            (None, Some(workdir)) => workdir.join(SOCKET_PATH),
            (None, None) => PathBuf::from(SOCKET_PATH),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the jobs with their inputs and last run.
    #[command(visible_alias = "ls")]
    Jobs {
        /// Show the jobs as a tree of folders.
        #[arg(long)]
        tree: bool,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Start a run of a job and print its execution id.
    Run(Run),
    /// List a job's executions, newest first.
    #[command(visible_aliases = ["ps", "history"])]
    Executions {
        job: String,
        /// Show at most this many.
        #[arg(long, short = 'n')]
        limit: Option<usize>,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one execution: status history, inputs, result.
    Show {
        job: String,
        execution: String,
        /// Print the API's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print an execution's log (the latest run's when no id is given).
    Logs {
        job: String,
        execution: Option<String>,
        /// Keep following the log until the run ends.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Cancel a queued or running execution.
    Cancel { job: String, execution: String },
    /// Stop a job's schedule from firing, until `resume` (kept across restarts).
    Pause { job: String },
    /// Let a paused job's schedule fire again, from its next fire time on.
    Resume { job: String },
    /// Print servitord's events as they happen.
    Events {
        /// One JSON object per line, as the API sends them.
        #[arg(long)]
        json: bool,
    },
    /// Show whether servitord is up: version, uptime, workdir, jobs, running, queued.
    Status {
        /// Print the API's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Serve the web UI on a loopback TCP port, bridged to the socket.
    Ui {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:7780")]
        listen: SocketAddr,
        /// Allow a non-loopback address. There is no authentication: anyone who can
        /// reach the address can run every job.
        #[arg(long)]
        allow_remote: bool,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff), or write one page per command into a folder.
    Man {
        /// Write servitorctl.1 and servitorctl-<command>.1 into this folder.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct Run {
    pub job: String,
    /// An input value, as KEY=VALUE; repeat for each input.
    #[arg(long = "input", short = 'i', value_name = "KEY=VALUE", value_parser = parse_input)]
    pub inputs: Vec<(String, String)>,
    /// Wait for the run to end and exit with the job's exit code.
    #[arg(long, short = 'w')]
    pub wait: bool,
    /// Stream the log to stdout while the job runs (implies --wait).
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// With --wait: print the finished execution as JSON.
    #[arg(long)]
    pub json: bool,
    /// With --wait, when the run did not succeed: how many of the log's last lines to
    /// print to stderr after the line saying how it ended (0: none).
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub log_lines: usize,
    /// Print nothing: no execution id, and with --wait no word on a failed run (the
    /// exit code still tells).
    #[arg(long, short = 'q', conflicts_with_all = ["follow", "json"])]
    pub quiet: bool,
}

fn parse_input(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn inputs_and_sockets() {
        assert_eq!(parse_input("A=b=c"), Ok(("A".into(), "b=c".into())));
        assert_eq!(parse_input("A="), Ok(("A".into(), String::new())));
        assert!(parse_input("=x").is_err());
        assert!(parse_input("x").is_err());
        let target = Target {
            socket: None,
            workdir: Some("/srv/servitor".into()),
        };
        assert_eq!(
            target.socket_path(),
            PathBuf::from("/srv/servitor/sockets/servitor.sock")
        );
    }
}
