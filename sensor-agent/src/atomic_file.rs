//! Files written so that a process killed at any point leaves either the old or the new
//! content, never a mix: a temporary file in the same directory, written and fsynced,
//! renamed over the target, then the directory fsynced.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Temporary files start with this; [`remove_temporary_files`] removes leftovers.
pub(crate) const TEMP_PREFIX: &str = ".tmp-";

/// Writes `dir/name` atomically with file mode `mode`. On failure the temporary file is
/// removed and the target is untouched.
pub(crate) fn write(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let target = dir.join(name);
    let temp = dir.join(format!("{TEMP_PREFIX}{name}.{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        pause_for_tests(name);
        std::fs::rename(&temp, &target)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Mode of files that hold keys or password hashes: owner only.
pub(crate) const PRIVATE_FILE_MODE: u32 = 0o600;
/// Mode of directories that hold such files: owner only.
pub(crate) const PRIVATE_DIR_MODE: u32 = 0o700;

/// Creates `dir` (and its parents) if needed and makes it [`PRIVATE_DIR_MODE`].
pub(crate) fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(PRIVATE_DIR_MODE))
}

/// Makes an existing `file` [`PRIVATE_FILE_MODE`] (one an older agent wrote readable by
/// everyone); a missing file is fine.
pub(crate) fn make_private(file: &Path) -> std::io::Result<()> {
    match std::fs::set_permissions(file, std::fs::Permissions::from_mode(PRIVATE_FILE_MODE)) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Removes the temporary files an interrupted [`write`] left in `dir`.
pub(crate) fn remove_temporary_files(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Tests that kill the agent mid-apply set `SENSOR_AGENT_TEST_PAUSE_BEFORE_RENAME` to
/// a file name; the write of that file then stops before its rename, after printing
/// a marker on stderr, until the process is killed.
fn pause_for_tests(name: &str) {
    if std::env::var_os("SENSOR_AGENT_TEST_PAUSE_BEFORE_RENAME").is_some_and(|n| n == name) {
        eprintln!("paused before renaming {name}");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(60));
        }
    }
}
