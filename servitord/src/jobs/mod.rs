//! The jobs: what `config/jobs` holds (the catalog), what each job's settings say,
//! and the ids that name jobs and their runs.

pub mod catalog;
mod config_watch;
pub mod id;
pub mod schedule;
pub mod settings;
pub mod slurm;
