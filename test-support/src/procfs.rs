//! What a process holds, read from `/proc`: its open file descriptors, its memory, its
//! children. For the fault and load tests, which check that servitord gives back what
//! it took.

use std::fs;

/// The open file descriptors of `pid`, each with what it points to
/// (`3 -> socket:[1234]`), sorted by number.
pub fn open_fds(pid: u32) -> Vec<String> {
    let Ok(entries) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let mut fds: Vec<(u32, String)> = entries
        .flatten()
        .filter_map(|entry| {
            let number = entry.file_name().to_str()?.parse().ok()?;
            let target = fs::read_link(entry.path())
                .map(|t| t.display().to_string())
                .unwrap_or_else(|_| "(gone)".into());
            Some((number, target))
        })
        .collect();
    fds.sort();
    fds.into_iter()
        .map(|(number, target)| format!("{number} -> {target}"))
        .collect()
}

/// How many file descriptors `pid` has open.
pub fn fd_count(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |entries| entries.count())
}

/// A line of `/proc/<pid>/status` in KiB, e.g. `VmRSS` (resident memory now) or
/// `VmHWM` (the most it was ever resident).
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|line| {
            let value = line.strip_prefix(field)?.strip_prefix(':')?;
            value.trim().trim_end_matches("kB").trim().parse().ok()
        })
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Resident memory of `pid` now, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS")
}

/// The most memory `pid` ever had resident, in KiB: catches a peak between samples.
pub fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM")
}

/// How many threads `pid` has.
pub fn threads(pid: u32) -> u64 {
    status_kib(pid, "Threads")
}

/// `(pid, state)` of each child of `parent` (`state` as in `/proc/<pid>/stat`: `Z` for
/// a zombie).
pub fn children(parent: u32) -> Vec<(i32, char)> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = fs::read_to_string(entry.path().join("stat")).ok()?;
            // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
            let (_, rest) = stat.rsplit_once(')')?;
            let mut fields = rest.split_whitespace();
            let state = fields.next()?.chars().next()?;
            let ppid: u32 = fields.next()?.parse().ok()?;
            (ppid == parent).then_some((pid, state))
        })
        .collect()
}

/// The children of `parent` that are zombies: exited, and not waited for.
pub fn zombie_children(parent: u32) -> Vec<i32> {
    children(parent)
        .into_iter()
        .filter(|(_, state)| *state == 'Z')
        .map(|(pid, _)| pid)
        .collect()
}

/// Megabytes, for reports.
pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// The file descriptors `pid` holds once it has settled (the same count twice in a
/// row, a moment apart): its idle level, after a warm-up.
pub fn settled_fds(pid: u32) -> Vec<String> {
    super::wait::wait_for(
        "the process's file descriptors to settle",
        super::wait::TIMEOUT,
        || {
            let before = fd_count(pid);
            std::thread::sleep(std::time::Duration::from_millis(100));
            (fd_count(pid) == before).then(|| open_fds(pid))
        },
    )
}

/// Waits until `pid` holds no more file descriptors than `baseline` (from
/// `settled_fds`); panics naming the ones it holds beyond it.
#[track_caller]
pub fn wait_fds_back(pid: u32, baseline: &[String]) {
    let deadline = std::time::Instant::now() + super::wait::TIMEOUT;
    while fd_count(pid) > baseline.len() {
        if std::time::Instant::now() >= deadline {
            let now = open_fds(pid);
            let extra: Vec<_> = now.iter().filter(|fd| !baseline.contains(fd)).collect();
            panic!(
                "pid {pid} holds {} file descriptors, {} when idle; beyond those: {extra:#?}",
                now.len(),
                baseline.len()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
