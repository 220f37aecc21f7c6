//! The Slurm executor (`"executor": "slurm"`): a run submitted with `sbatch`,
//! followed with `squeue`, stopped with `scancel`, its exit status read from a file
//! its wrapper writes. Each piece is tested on its own, against a real cluster where
//! it talks to one (`scripts/slurm-local.sh`).
//!
//! - `executor`: the executor the run lifecycle drives, and its poller;
//! - `names`: the job name that finds a run again;
//! - `wrapper`: the script that runs the job on the node;
//! - `command`: the `sbatch`, `squeue` and `scancel` command lines;
//! - `cli`: running them, with a deadline;
//! - `parse`: reading what they print, and the exit code file.

mod cli;
mod command;
mod executor;
mod names;
mod parse;
mod wrapper;

pub use executor::{Process, Slurm, SlurmConfig, was_submitted};

#[cfg(test)]
mod cluster_tests;
