//! The state file on disk: written whole to a temporary file, `fsync`ed, renamed over the old
//! one and the directory `fsync`ed, so a crash at any moment leaves either the old file or the
//! new one, never a torn one.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// The file's name inside the state directory.
pub const STATE_FILE: &str = "fakes-state.json";

/// The state file of `dir`.
pub fn state_path(dir: &Path) -> PathBuf {
    dir.join(STATE_FILE)
}

/// Replaces `path` with `bytes` atomically and durably.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .with_context(|| format!("{}: no parent directory", path.display()))?;
    let tmp = path.with_extension("json.tmp");
    {
        let mut file = std::fs::File::create(&tmp)
            .with_context(|| format!("{}: cannot create", tmp.display()))?;
        file.write_all(bytes)
            .with_context(|| format!("{}: cannot write", tmp.display()))?;
        file.sync_all()
            .with_context(|| format!("{}: cannot fsync", tmp.display()))?;
    }
    std::fs::rename(&tmp, path)
        .with_context(|| format!("{}: cannot rename to {}", tmp.display(), path.display()))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("{}: cannot fsync the directory", dir.display()))?;
    Ok(())
}

/// The file's bytes, or `None` when there is none yet.
pub fn read(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("{}: cannot read", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_replaces_the_file_and_leaves_no_temporary_behind() {
        let dir = std::env::temp_dir().join(format!("fakes-file-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = state_path(&dir);
        assert_eq!(read(&path).unwrap(), None);
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(read(&path).unwrap().as_deref(), Some(&b"two"[..]));
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(STATE_FILE)]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
