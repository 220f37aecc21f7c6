//! The `slurm` object of a job's settings, checked: what `sbatch` is asked for, and
//! the `sbatch_args` Servitor refuses because it owns them.

mod sbatch_args;
mod settings;

pub use settings::{SettingsError, SlurmSettings, check, time_limit_minutes};
