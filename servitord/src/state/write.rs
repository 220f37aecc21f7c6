//! Writing state files so that a crash (and, with `fsync`, a power loss) leaves each
//! one whole: appends of one short line, new files in folders nobody reads yet, and
//! write-then-rename for files that are replaced.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Appends `line` to `path` (made if missing) with one write: a short append lands
/// whole. With `fsync`, the line is on the disk when it returns.
pub fn append(fsync: bool, path: &Path, line: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new().append(true).create(true).open(path)?;
    file.write_all(line)?;
    if fsync {
        file.sync_data()?;
    }
    Ok(())
}

/// Writes `path` so that readers see either the old or the new content, never a mix.
/// With `fsync`, the content and the rename are on the disk when it returns.
pub fn replace(fsync: bool, path: &Path, contents: &[u8]) -> io::Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let temporary = path.with_file_name(format!(".{name}.tmp"));
    let mut file = fs::File::create(&temporary)?;
    file.write_all(contents)?;
    if fsync {
        file.sync_data()?;
    }
    fs::rename(&temporary, path)?;
    if fsync && let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// `replace` with `value` as a line of JSON, its folder made first when missing: the
/// daemon's own state files (`schedules.json`, `retries.json`).
pub fn replace_json(fsync: bool, path: &Path, value: &impl serde::Serialize) -> io::Result<()> {
    let mut json = serde_json::to_vec(value).map_err(io::Error::other)?;
    json.push(b'\n');
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    replace(fsync, path, &json)
}

/// Writes a file that does not exist yet, in a folder nobody reads yet.
pub fn create(fsync: bool, path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
    file.write_all(contents)?;
    if fsync {
        file.sync_data()?;
    }
    Ok(())
}

/// Makes a folder's entries (new files, renames) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}
