//! Groundwork for the Slurm executor (`"executor": "slurm"`): a run submitted with
//! `sbatch`, followed with `squeue`, stopped with `scancel`, its exit status read
//! from a file its wrapper writes. Each piece stands alone and is tested, against a
//! real cluster where it talks to one (`scripts/slurm-local.sh`); the executor that
//! puts them into the run lifecycle comes on top.
//!
//! - `settings`, `sbatch_args`: the job's `slurm` settings, checked;
//! - `names`: the job name that finds a run again;
//! - `wrapper`: the script that runs the job on the node;
//! - `command`: the `sbatch`, `squeue` and `scancel` command lines;
//! - `cli`: running them, with a deadline;
//! - `parse`: reading what they print, and the exit code file.

// Not used by the daemon until the Slurm executor wires it in.
#![allow(dead_code)]

mod cli;
mod command;
mod names;
mod parse;
mod sbatch_args;
mod settings;
mod wrapper;

#[cfg(test)]
mod cluster_tests;
