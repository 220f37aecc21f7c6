//! The `SERVITOR_*` environment variables: what the daemon and the CLI read, and what
//! runs and hooks are given. Inputs and settings may not set any of them.

/// Prefix of every variable of Servitor's own; inputs and settings `env` may not use it.
pub const RESERVED_PREFIX: &str = "SERVITOR_";

/// Read by servitord and servitorctl: the working directory.
pub const WORKDIR: &str = "SERVITOR_WORKDIR";
/// Read by servitorctl: the socket, overriding the working directory's.
pub const SOCKET: &str = "SERVITOR_SOCKET";
/// Read by servitord: its settings (see `servitord --help`).
pub const WORKERS: &str = "SERVITOR_WORKERS";
pub const STOP_GRACE: &str = "SERVITOR_STOP_GRACE";
pub const UI_ROOT: &str = "SERVITOR_UI_ROOT";
pub const HOOK_TIMEOUT: &str = "SERVITOR_HOOK_TIMEOUT";
pub const FSYNC: &str = "SERVITOR_FSYNC";
pub const SLURM_POLL: &str = "SERVITOR_SLURM_POLL";
pub const SLURM_EXIT_WAIT: &str = "SERVITOR_SLURM_EXIT_WAIT";
pub const SLURM_MAX_RUNS: &str = "SERVITOR_SLURM_MAX_RUNS";

/// Given to every run (and to hooks, about the run they are for): the working
/// directory, the job id and the execution number. Children inherit them, which is how
/// a run's processes are found again after a restart.
pub const ROOT: &str = "SERVITOR_ROOT";
pub const JOB: &str = "SERVITOR_JOB";
pub const JOB_EXECUTION: &str = "SERVITOR_JOB_EXECUTION";

/// Given to hooks: the hook's name, and how the run ended.
pub const HOOK: &str = "SERVITOR_HOOK";
pub const STATUS: &str = "SERVITOR_STATUS";
pub const EXIT_CODE: &str = "SERVITOR_EXIT_CODE";
pub const MESSAGE: &str = "SERVITOR_MESSAGE";
pub const DURATION: &str = "SERVITOR_DURATION";
pub const LOG: &str = "SERVITOR_LOG";
/// Given to hooks: `1` for a failure that the job's `retry` setting retries, `0`
/// otherwise (the run's end is final).
pub const WILL_RETRY: &str = "SERVITOR_WILL_RETRY";
