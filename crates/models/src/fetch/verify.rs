//! Checksums, and a small sidecar per model file that remembers a verified checksum together with the
//! file's size and modification time, so that checking a 100 MB file again costs one `stat`.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// Hashes a whole file.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[derive(Serialize, Deserialize, PartialEq, Eq, Debug)]
struct Sidecar {
    sha256: String,
    size: u64,
    modified_ns: u128,
}

fn sidecar_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    path.with_file_name(format!(".{name}.verified"))
}

fn stamp(path: &Path) -> Option<(u64, u128)> {
    let meta = fs::metadata(path).ok()?;
    let modified = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?.as_nanos();
    Some((meta.len(), modified))
}

/// Whether `path` exists and has the sha256 `expected`. A checksum remembered for the same size and
/// modification time is trusted; otherwise the file is hashed and, when it matches, remembered.
pub fn is_verified(path: &Path, expected: &str) -> Result<bool> {
    let Some((size, modified_ns)) = stamp(path) else { return Ok(false) };
    let remembered =
        fs::read(sidecar_path(path)).ok().and_then(|b| serde_json::from_slice::<Sidecar>(&b).ok());
    if remembered.as_ref().is_some_and(|s| s.size == size && s.modified_ns == modified_ns) {
        return Ok(remembered.is_some_and(|s| s.sha256.eq_ignore_ascii_case(expected)));
    }
    let actual = sha256_file(path)?;
    remember(path, &actual)?;
    Ok(actual.eq_ignore_ascii_case(expected))
}

/// Records that `path` (as it is now) has the checksum `sha256`.
pub fn remember(path: &Path, sha256: &str) -> Result<()> {
    let Some((size, modified_ns)) = stamp(path) else { return Ok(()) };
    let sidecar = Sidecar { sha256: sha256.to_ascii_lowercase(), size, modified_ns };
    let body = serde_json::to_vec(&sidecar).map_err(|e| Error::Invalid(e.to_string()))?;
    write_atomically(&sidecar_path(path), |f| f.write_all(&body))
}

/// Writes a file through a temporary file in the same folder and a rename, so that readers see either
/// the old file or the whole new one. The temporary file is removed when `write` fails.
pub fn write_atomically(path: &Path, write: impl FnOnce(&mut fs::File) -> std::io::Result<()>) -> Result<()> {
    let temp = temp_path(path);
    let result = (|| {
        let mut file = fs::File::create(&temp)?;
        write(&mut file)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if let Err(err) = result {
        let _ = fs::remove_file(&temp);
        return Err(Error::io(path, err));
    }
    Ok(())
}

/// A temporary name next to `path`, unique to this process.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_and_rechecks_after_a_change() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("f.bin");
        fs::write(&path, b"hello").expect("write");
        let hello = hex::encode(Sha256::digest(b"hello"));
        assert!(is_verified(&path, &hello).expect("check"));
        assert!(sidecar_path(&path).exists());
        assert!(!is_verified(&path, &"0".repeat(64)).expect("check"), "a remembered checksum still compares");
        // Same size, different content and another modification time: hashed again.
        let before = fs::metadata(&path).and_then(|m| m.modified()).expect("mtime");
        fs::write(&path, b"jello").expect("write");
        let file = fs::File::options().write(true).open(&path).expect("open");
        file.set_modified(before + std::time::Duration::from_secs(1)).expect("set mtime");
        assert!(!is_verified(&path, &hello).expect("check"));
        assert!(!is_verified(&dir.path().join("absent"), &hello).expect("check"));
    }

    #[test]
    fn atomic_writes_leave_nothing_on_failure() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("out");
        let err = write_atomically(&path, |f| {
            f.write_all(b"partial")?;
            Err(std::io::Error::other("boom"))
        });
        assert!(err.is_err());
        assert_eq!(fs::read_dir(dir.path()).expect("list").count(), 0);
        write_atomically(&path, |f| f.write_all(b"whole")).expect("write");
        assert_eq!(fs::read(&path).expect("read"), b"whole");
    }
}
