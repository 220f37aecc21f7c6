//! What can go wrong, each with its message and exit code.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot reach servitord at {}: {reason} (is servitord running? see --socket / --workdir)", socket.display())]
    Unreachable { socket: PathBuf, reason: String },
    #[error("lost servitord at {}: {reason}", socket.display())]
    Lost { socket: PathBuf, reason: String },
    /// servitord answered with an error.
    #[error("{message}")]
    Refused { message: String },
    /// Refused here, before anything was sent.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Other(String),
    /// The reader of our output went away (`| head`): not an error worth a word.
    #[error("broken pipe")]
    BrokenPipe,
}

impl CliError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Unreachable { .. } | Self::Lost { .. } => ExitCode::from(2),
            Self::BrokenPipe => ExitCode::SUCCESS,
            Self::Refused { .. } | Self::Invalid(_) | Self::Other(_) => ExitCode::FAILURE,
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(error: std::io::Error) -> Self {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            Self::BrokenPipe
        } else {
            Self::Other(error.to_string())
        }
    }
}
