//! `completions` and `man`: generated from the command line's definition.

use std::path::Path;
use std::process::ExitCode;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::CliError;

pub fn completions(shell: clap_complete::Shell) -> Result<ExitCode, CliError> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "servitorctl", &mut out);
    crate::output::write(&out)?;
    Ok(ExitCode::SUCCESS)
}

pub fn man(dir: Option<&Path>) -> Result<ExitCode, CliError> {
    if let Some(dir) = dir {
        clap_mangen::generate_to(Cli::command(), dir)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut out)?;
    crate::output::write(&out)?;
    Ok(ExitCode::SUCCESS)
}
