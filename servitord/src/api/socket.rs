//! The API socket: `<wd>/sockets/servitor.sock`, mode 770 in a folder of mode 770.

use std::fs::{self, Permissions};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use anyhow::Context;
use tokio::net::UnixListener;

const MODE: u32 = 0o770;

/// Binds the socket at `path`, replacing whatever socket a crashed daemon left there.
///
/// The socket is bound under a temporary name, given its mode, then renamed into
/// place: clients never see it with another mode, and the stale one is replaced
/// atomically. Call this only while holding the working-directory lock.
pub fn bind(path: &Path) -> anyhow::Result<UnixListener> {
    let dir = path.parent().context("the socket path has no folder")?;
    // Created with no more than its final mode (the umask can only narrow it).
    fs::DirBuilder::new()
        .recursive(true)
        .mode(MODE)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    crate::state::workdir::check_private(dir)?;
    fs::set_permissions(dir, Permissions::from_mode(MODE))
        .with_context(|| format!("cannot set the mode of {}", dir.display()))?;

    let temporary = dir.join(format!(".servitor.sock.{}", std::process::id()));
    let _ = fs::remove_file(&temporary);
    let listener = std::os::unix::net::UnixListener::bind(&temporary)
        .with_context(|| format!("cannot bind {}", temporary.display()))?;
    let placed = fs::set_permissions(&temporary, Permissions::from_mode(MODE))
        .and_then(|()| fs::rename(&temporary, path));
    if let Err(e) = placed {
        let _ = fs::remove_file(&temporary);
        return Err(e).with_context(|| format!("cannot place the socket at {}", path.display()));
    }
    listener.set_nonblocking(true)?;
    Ok(UnixListener::from_std(listener)?)
}
