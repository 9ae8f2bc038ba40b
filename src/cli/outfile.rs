//! Files a command writes with `-o FILE` (a report, a signed decision): created 0600, never
//! through a symbolic link, never over an existing file unless `--force` (SPEC §5.8.10).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::error::CliError;

/// Writes `bytes` to a new file `path`. With `force`, an existing regular file is replaced
/// (through a new file renamed over it); a symbolic link or anything else is refused either way.
pub fn write_new(path: &Path, bytes: &[u8], force: bool) -> Result<(), CliError> {
    let shown = path.display();
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(CliError::invalid(format!(
                "{shown} is a symbolic link: drctl does not write through links; name the file itself"
            )));
        }
        Ok(meta) if !meta.is_file() => {
            return Err(CliError::invalid(format!(
                "{shown} exists and is not a file"
            )));
        }
        Ok(_) if !force => {
            return Err(CliError::invalid(format!(
                "{shown} exists: pass --force to replace it"
            )));
        }
        Ok(_) => return replace(path, bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(CliError::invalid(format!("cannot write {shown}: {e}"))),
    }
    let mut file = create(path).map_err(|e| match e.kind() {
        // Created meanwhile, by someone else: never written over.
        std::io::ErrorKind::AlreadyExists => {
            CliError::invalid(format!("{shown} exists: pass --force to replace it"))
        }
        _ => CliError::invalid(format!("cannot write {shown}: {e}")),
    })?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| CliError::invalid(format!("cannot write {shown}: {e}")))
}

/// A new file, 0600, that fails rather than follow a link or open an existing file.
fn create(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(path)
}

/// Writes a new file beside `path` and renames it over `path`: a rename replaces the name
/// itself, so a link put there meanwhile is replaced, never followed.
fn replace(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let shown = path.display();
    let name = path
        .file_name()
        .ok_or_else(|| CliError::invalid(format!("{shown} is not a file name")))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".{}.tmp", std::process::id()));
    let temp: PathBuf = path.with_file_name(temp_name);
    let written = create(&temp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    });
    written.map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        CliError::invalid(format!("cannot write {shown}: {e}"))
    })
}
