//! Keeping a state directory private (SPEC §5.8.4): the directory 0700, the store's
//! directories 0700 and its files 0600. sled creates its files with the process's umask
//! (snapshots and blobs later on, too); the directory's mode already keeps others out, and
//! the files are tightened again when the store is opened and closed.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Sets `dir` to 0700 and everything under `dir/store` to 0700 (directories) or 0600
/// (files). Entries that vanish meanwhile (sled removes old snapshots) are skipped.
pub fn tighten(dir: &Path) -> std::io::Result<()> {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    tighten_tree(&dir.join("store"));
    Ok(())
}

fn tighten_tree(path: &Path) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if meta.is_dir() {
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700));
        if let Ok(entries) = std::fs::read_dir(path) {
            for entry in entries.flatten() {
                tighten_tree(&entry.path());
            }
        }
    } else if meta.is_file() && meta.permissions().mode() & 0o077 != 0 {
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
}
