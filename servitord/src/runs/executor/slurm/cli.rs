//! Runs a Slurm command (`command::SlurmCommand`) and captures what it printed, with
//! a deadline: a controller that does not answer must not hold a run's task forever.
//! The command inherits the daemon's environment, so `SLURM_CONF` (or the system's
//! configuration) chooses the cluster, as for Slurm's own commands.

use std::io;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use thiserror::Error;
use tokio::process::Command;

use super::command::SlurmCommand;

/// The most of a command's standard error kept in a message.
const STDERR_KEPT: usize = 2000;

/// What a command that succeeded printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

#[derive(Debug, Error)]
pub enum CliError {
    /// It never ran: not installed, not on `PATH`, no process to be had.
    #[error("cannot start {program}: {source}{}", start_hint(.source))]
    Start {
        program: &'static str,
        source: io::Error,
    },
    /// It ran past the deadline and was killed. Whether it did its work (submitted
    /// the job, say) is not known.
    #[error("{program} did not finish within {}", humantime::format_duration(*.timeout))]
    TimedOut {
        program: &'static str,
        timeout: Duration,
    },
    /// It ran and said no. `stderr` is Slurm's own message.
    #[error("{program} failed ({status}): {}{}", message(.stderr), config_hint(.stderr))]
    Failed {
        program: &'static str,
        status: ExitStatus,
        stdout: Vec<u8>,
        stderr: Vec<u8>,
    },
}

impl CliError {
    #[cfg(test)]
    /// The exit code of a command that failed (`scancel --signal` on a pending job
    /// exits with 228).
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            Self::Failed { status, .. } => status.code(),
            _ => None,
        }
    }
}

/// Runs `command`, killing it at `timeout`.
pub async fn run(command: &SlurmCommand, timeout: Duration) -> Result<Output, CliError> {
    let program = command.program;
    let mut process = Command::new(program);
    process
        .args(&command.args)
        .envs(command.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Dropped at the deadline below: the process goes with it.
        .kill_on_drop(true);
    for name in command.env_remove {
        process.env_remove(name);
    }
    let child = process
        .spawn()
        .map_err(|source| CliError::Start { program, source })?;
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(output) => output.map_err(|source| CliError::Start { program, source })?,
        Err(_) => return Err(CliError::TimedOut { program, timeout }),
    };
    if output.status.success() {
        Ok(Output {
            stdout: output.stdout,
            stderr: output.stderr,
        })
    } else {
        Err(CliError::Failed {
            program,
            status: output.status,
            stdout: output.stdout,
            stderr: output.stderr,
        })
    }
}

/// Slurm's message, on one line, cut to its end (where the reason is).
fn message(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return "no message".to_owned();
    }
    match text.char_indices().rev().nth(STDERR_KEPT - 1) {
        Some((cut, _)) if cut > 0 => format!("...{}", &text[cut..]),
        _ => text,
    }
}

fn start_hint(error: &io::Error) -> &'static str {
    if error.kind() == io::ErrorKind::NotFound {
        " (is Slurm's client installed and on PATH?)"
    } else {
        ""
    }
}

/// Without `SLURM_CONF` or a system configuration, Slurm's commands look for one in
/// DNS and fail so.
fn config_hint(stderr: &[u8]) -> &'static str {
    let text = String::from_utf8_lossy(stderr);
    if text.contains("Could not establish a configuration source") {
        " (set SLURM_CONF to the cluster's slurm.conf)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(script: &str) -> SlurmCommand {
        SlurmCommand {
            program: "sh",
            args: vec!["-c".into(), script.into()],
            env: vec![("ADDED".into(), "a, b\nc".into())],
            env_remove: &["REMOVED"],
        }
    }

    const DEADLINE: Duration = Duration::from_secs(20);

    #[tokio::test]
    async fn output_and_environment() {
        let command = shell("printf '%s|%s' \"$ADDED\" \"${REMOVED-unset}\"; echo warn >&2");
        let output = run(&command, DEADLINE).await.unwrap();
        assert_eq!(output.stdout, b"a, b\nc|unset");
        assert_eq!(output.stderr, b"warn\n");
    }

    #[tokio::test]
    async fn a_failure_carries_the_message() {
        let command = shell(
            "echo 12; echo 'sbatch: error: Batch job submission failed: \
             Invalid partition name specified' >&2; exit 1",
        );
        let error = run(&command, DEADLINE).await.unwrap_err();
        assert_eq!(error.exit_code(), Some(1));
        assert_eq!(
            error.to_string(),
            "sh failed (exit status: 1): sbatch: error: Batch job submission failed: \
             Invalid partition name specified"
        );
        let CliError::Failed { stdout, .. } = error else {
            unreachable!()
        };
        assert_eq!(stdout, b"12\n");

        let error = run(&shell("exit 228"), DEADLINE).await.unwrap_err();
        assert_eq!(error.exit_code(), Some(228));
        assert_eq!(
            error.to_string(),
            "sh failed (exit status: 228): no message"
        );

        let lost = "squeue: error: resolve_ctls_from_dns_srv: res_nsearch error: Unknown host\n\
                    squeue: error: fetch_config: DNS SRV lookup failed\n\
                    squeue: error: _establish_config_source: failed to fetch config\n\
                    squeue: fatal: Could not establish a configuration source";
        let error = run(&shell(&format!("echo '{lost}' >&2; exit 1")), DEADLINE)
            .await
            .unwrap_err();
        assert!(
            error
                .to_string()
                .ends_with("source (set SLURM_CONF to the cluster's slurm.conf)"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_long_message_keeps_its_end() {
        let command = shell("printf 'x%.0s' $(seq 5000) >&2; echo ' the reason' >&2; exit 1");
        let text = run(&command, DEADLINE).await.unwrap_err().to_string();
        assert!(text.ends_with("xxx the reason"), "{text}");
        assert!(text.len() < STDERR_KEPT + 100, "{}", text.len());
    }

    #[tokio::test]
    async fn a_slow_command_is_killed_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let command = shell(&format!(
            "echo $$ >'{}'; exec sleep 300",
            pid_file.display()
        ));
        let error = run(&command, Duration::from_millis(500)).await.unwrap_err();
        assert!(matches!(error, CliError::TimedOut { .. }), "{error}");
        assert_eq!(error.to_string(), "sh did not finish within 500ms");
        // kill_on_drop: the process is gone (or a zombie where nothing reaps). Read
        // after the kill, so the file is there or will never be.
        let Ok(pid) = std::fs::read_to_string(&pid_file) else {
            return;
        };
        let gone = || {
            std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()))
                .map_or(true, |stat| stat.contains(") Z") || stat.contains(") X"))
        };
        let deadline = std::time::Instant::now() + DEADLINE;
        while !gone() {
            assert!(std::time::Instant::now() < deadline, "sleep {pid} survived");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn a_missing_program_cannot_start() {
        let command = SlurmCommand {
            program: "servitor-no-such-sbatch",
            args: vec![],
            env: vec![],
            env_remove: &[],
        };
        let error = run(&command, DEADLINE).await.unwrap_err();
        assert!(matches!(error, CliError::Start { .. }));
        assert!(
            error
                .to_string()
                .ends_with("(is Slurm's client installed and on PATH?)"),
            "{error}"
        );
    }
}
