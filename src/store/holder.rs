//! Which process holds a sled store: sled locks its database file with `flock`, and Linux
//! lists each lock with its process in `/proc/locks`. A refusal names that process rather
//! than guessing.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The process holding the lock of the store in state directory `dir`, with its command line
/// when it can be read: `1234 (drctl run failover.toml)`. `None` where it cannot be told.
pub fn holder(dir: &Path) -> Option<String> {
    let db = std::fs::metadata(dir.join("store").join("db")).ok()?;
    let (major, minor) = device_numbers(db.dev());
    let wanted = format!("{major:02x}:{minor:02x}:{}", db.ino());
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let pid = locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // `1: FLOCK  ADVISORY  WRITE 1069 fe:00:5701634 0 EOF`
        let at = fields.iter().position(|f| *f == "FLOCK")?;
        (fields.get(at + 4) == Some(&wanted.as_str()))
            .then(|| fields.get(at + 3)?.parse::<u32>().ok())
            .flatten()
    })?;
    let command = std::fs::read(format!("/proc/{pid}/cmdline"))
        .ok()
        .map(|raw| {
            raw.split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
        })
        .filter(|args| !args.is_empty());
    Some(match command {
        Some(mut args) => {
            if let Some(program) = args.first_mut()
                && let Some(name) = Path::new(program.as_str()).file_name()
            {
                *program = name.to_string_lossy().into_owned();
            }
            format!("{pid} ({})", args.join(" "))
        }
        None => pid.to_string(),
    })
}

/// The major and minor numbers of device `dev`, as Linux encodes them.
fn device_numbers(dev: u64) -> (u64, u64) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major, minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_process_holding_a_store_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let _store = crate::store::SledStore::open(dir.path()).unwrap();
        let held = holder(dir.path()).expect("this process holds the store");
        assert!(
            held.starts_with(&format!("{} (", std::process::id())),
            "{held}"
        );
        let other = tempfile::tempdir().unwrap();
        assert_eq!(holder(other.path()), None);
    }
}
