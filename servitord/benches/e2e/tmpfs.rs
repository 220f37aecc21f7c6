//! `--tmpfs`: this run's working directories (the daemon's and the floor's files) on a
//! tmpfs mounted for it, so that throughput is not dominated by ext4's inode allocator
//! after the mass deletes that benchmarks and tests make here. Needs root.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Large enough for every run of the full benchmark (~20 000 small runs, 50 MiB logs).
const SIZE: &str = "size=4g";

/// A mounted tmpfs, unmounted (and its mount point removed) when dropped.
pub struct Tmpfs {
    point: PathBuf,
}

impl Tmpfs {
    /// Mounts a fresh tmpfs on `point` (created if missing).
    pub fn mount(point: &Path) -> io::Result<Self> {
        fs::create_dir_all(point)?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", SIZE, "tmpfs"])
            .arg(point)
            .stdin(Stdio::null())
            .output()?;
        if !output.status.success() {
            let _ = fs::remove_dir(point);
            return Err(io::Error::other(format!(
                "mount -t tmpfs -o {SIZE} tmpfs {}: {} {}",
                point.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(Self {
            point: point.to_owned(),
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.point)
            .stdin(Stdio::null())
            .status();
        match unmounted {
            Ok(status) if status.success() => {
                let _ = fs::remove_dir(&self.point);
            }
            _ => eprintln!(
                "e2e: cannot unmount the tmpfs on {}: run umount {0} by hand",
                self.point.display()
            ),
        }
    }
}
