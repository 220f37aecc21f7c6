//! The Slurm job name of a run, which is how the daemon finds its jobs again: after
//! a restart, and after an `sbatch` that failed or timed out, which may still have
//! submitted the job. A run is submitted at most once, so its name must be
//! computable from what the daemon keeps (its host and working directory, the job id,
//! the execution number), and all of one daemon's names must share a prefix, to pick
//! them out of one `squeue` listing.
//!
//! `servitor-<daemon>-<job>-<execution>-<label>`, e.g.
//! `servitor-5f0e6c1a9b3d2e47-a1b2c3d4e5f60718-42-nightly-backup.sh`:
//! - `<daemon>`: 64-bit FNV-1a of the host name and the working directory's absolute
//!   path, in hex. Hosts with the same path (every install's default `/srv/servitor`)
//!   submitting as the same user to one cluster must not take each other's jobs.
//! - `<job>`: 64-bit FNV-1a of the job id, in hex. Job ids are up to 4096 bytes of
//!   any text, while Slurm takes names of at most 1024 bytes (verified on 22.05: "
//!   Pathname ... too long" beyond), so the id itself cannot be the name.
//! - `<label>`: the job's file name for people reading `squeue`, reduced to
//!   `[A-Za-z0-9._+-]` and 32 bytes. Never read back.
//!
//! At most 96 bytes, of characters no shell or `squeue` format treats specially. Two
//! job ids of one daemon share a name only if their hashes collide (odds about n²/2⁶⁵
//! for n jobs); FNV is written out here because it must never change.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

const TAG: &str = "servitor-";
const LABEL_MAX_BYTES: usize = 32;

/// The start of every job name of one daemon: `servitor-<16 hex digits>-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonPrefix(String);

#[cfg(test)]
/// What a job name says of its run; the label is left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunTag {
    pub job_hash: u64,
    pub execution: u64,
}

impl DaemonPrefix {
    /// For the daemon of `workdir` (absolute, as jobs see it in `SERVITOR_ROOT`) on
    /// `host`.
    pub fn new(host: &str, workdir: &Path) -> Self {
        let hash = fnv1a(&[host.as_bytes(), workdir.as_os_str().as_bytes()]);
        Self(format!("{TAG}{hash:016x}-"))
    }

    /// The prefix of names recorded from a real cluster, for tests that read them.
    #[cfg(test)]
    pub fn from_recorded(prefix: &str) -> Self {
        Self(prefix.to_owned())
    }

    #[cfg(test)]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The Slurm job name of run `execution` of job `job`.
    pub fn run_name(&self, job: &str, execution: u64) -> String {
        format!(
            "{}{:016x}-{execution}-{}",
            self.0,
            fnv1a(&[job.as_bytes()]),
            label(job)
        )
    }

    /// Whether `name` is one of this daemon's.
    pub fn owns(&self, name: &str) -> bool {
        name.starts_with(&self.0)
    }

    #[cfg(test)]
    /// The run a name of this daemon's stands for; `None` for anyone else's name.
    pub fn parse(&self, name: &str) -> Option<RunTag> {
        let rest = name.strip_prefix(&self.0)?;
        let mut parts = rest.splitn(3, '-');
        let job = parts.next().filter(|hex| hex.len() == 16)?;
        let execution = parts.next()?;
        parts.next()?;
        Some(RunTag {
            job_hash: u64::from_str_radix(job, 16).ok()?,
            execution: crate::jobs::id::parse_execution_id(execution).ok()?,
        })
    }
}

#[cfg(test)]
impl RunTag {
    pub fn is_run(&self, job: &str, execution: u64) -> bool {
        self.execution == execution && self.job_hash == fnv1a(&[job.as_bytes()])
    }
}

/// This machine's host name, as the kernel has it; empty when it cannot be read.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_default()
}

/// The last segment of a job id, reduced to characters safe anywhere.
fn label(job: &str) -> String {
    let name = job.rsplit('/').next().unwrap_or(job);
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(LABEL_MAX_BYTES)
        .collect()
}

/// 64-bit FNV-1a over `parts`, each followed by a NUL byte (which none contains), so
/// that ("ab", "c") and ("a", "bc") differ.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    for part in parts {
        for byte in part.iter().chain(&[0]) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Slurm 22.05's longest job name, in bytes.
    const SLURM_NAME_MAX: usize = 1024;

    fn prefix() -> DaemonPrefix {
        DaemonPrefix::new("node1", Path::new("/srv/servitor"))
    }

    #[test]
    fn fnv_is_the_published_function() {
        // FNV-1a 64 test vectors ("", "a", "foobar"), with the NUL that ends a part.
        let plain = |bytes: &[u8]| {
            bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
                (hash ^ u64::from(*byte)).wrapping_mul(0x100_0000_01b3)
            })
        };
        assert_eq!(plain(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(plain(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(plain(b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(fnv1a(&[b"foobar"]), plain(b"foobar\0"));
        assert_ne!(fnv1a(&[b"ab", b"c"]), fnv1a(&[b"a", b"bc"]));
    }

    #[test]
    fn names_are_stable_and_say_which_run() {
        let prefix = prefix();
        // Pinned: a name that changed between versions would lose in-flight runs.
        assert_eq!(prefix.as_str(), "servitor-084073c72489a6d1-");
        let name = prefix.run_name("demo/greet", 3);
        assert_eq!(name, "servitor-084073c72489a6d1-1b495b4a78982584-3-greet");
        assert_eq!(name, prefix.run_name("demo/greet", 3));
        assert!(prefix.owns(&name));
        let tag = prefix.parse(&name).unwrap();
        assert!(tag.is_run("demo/greet", 3));
        assert!(!tag.is_run("demo/greet", 4));
        assert!(!tag.is_run("other/greet", 3));
        assert_ne!(name, prefix.run_name("demo/greet", 33));
        assert_ne!(name, prefix.run_name("other/greet", 3), "same label");
    }

    #[test]
    fn each_daemon_has_its_own_prefix() {
        let a = prefix();
        let other_dir = DaemonPrefix::new("node1", Path::new("/srv/servitor2"));
        let other_host = DaemonPrefix::new("node2", Path::new("/srv/servitor"));
        assert_ne!(a, other_dir);
        assert_ne!(a, other_host);
        let name = a.run_name("job", 1);
        assert!(!other_dir.owns(&name) && !other_host.owns(&name));
        assert_eq!(other_host.parse(&name), None);
    }

    #[test]
    fn any_job_id_gives_a_short_plain_name() {
        let prefix = prefix();
        let long = format!("{}/{}", "d".repeat(255), "é".repeat(127));
        let huge = vec!["x".repeat(255); 16].join("/");
        assert!(huge.len() >= 4000);
        for (job, label) in [
            ("with space/it's \"quoted\"", "it_s__quoted_"),
            ("ünï/cödé", "c_d_"),
            ("a&b#c%d|e", "a_b_c_d_e"),
            ("x.sh", "x.sh"),
            ("newline\nin/name", "name"),
            (long.as_str(), "________________________________"),
            (huge.as_str(), "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
        ] {
            let name = prefix.run_name(job, u64::MAX);
            assert!(name.ends_with(&format!("-{}-{label}", u64::MAX)), "{name}");
            assert!(name.len() <= 96 && name.len() <= SLURM_NAME_MAX, "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c)),
                "{name}"
            );
            assert!(prefix.parse(&name).unwrap().is_run(job, u64::MAX));
        }
    }

    #[test]
    fn foreign_and_damaged_names_are_not_runs() {
        let prefix = prefix();
        let p = prefix.as_str();
        for name in [
            String::new(),
            "wrap".to_owned(),
            "servitor-odd\nname".to_owned(),
            p.to_owned(),
            format!("{p}1b495b4a78982584"),
            format!("{p}1b495b4a78982584-3"),
            format!("{p}1b495b4a78982584-0-x"),
            format!("{p}1b495b4a78982584-03-x"),
            format!("{p}1b495b4a7898258-3-x"),
            format!("{p}g1b495b4a7898258-3-x"),
        ] {
            assert_eq!(prefix.parse(&name), None, "{name:?}");
        }
        // A job named after a file without a label-worthy character still parses.
        let name = prefix.run_name("é", 1);
        assert!(prefix.parse(&name).unwrap().is_run("é", 1));
    }
}
