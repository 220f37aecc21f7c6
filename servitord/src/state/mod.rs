//! What the daemon keeps on disk, in the old tool's layout: the working directory and
//! its lock, the files of each execution and their formats, the store that mirrors
//! them in memory, and retention.

pub mod files;
mod history;
pub mod retention;
pub mod retries;
pub mod schedules;
mod store;
pub mod timestamp;
pub mod workdir;
mod write;

pub use store::{History, Store, Unfinished};
pub use workdir::Workdir;
