//! A small temporary directory that removes itself on drop.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, ErrorKind, Result};

/// A fresh directory under the system temp dir (`$TMPDIR`, usually `/tmp`), named
/// `valkit-<label>-<pid>-<n>-<nanos>`. Removed, with everything in it, on drop.
///
/// Names stay short on purpose: Unix socket paths inside it must fit in 108 bytes.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
    keep: bool,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl TempDir {
    /// Create a new, empty directory. `label` becomes part of its name (keep it short).
    pub fn new(label: &str) -> Result<TempDir> {
        let base = std::env::temp_dir();
        let mut last_err = None;
        for _ in 0..16 {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let path = base.join(format!(
                "valkit-{label}-{}-{n}-{nanos:x}",
                std::process::id()
            ));
            // `create_dir`, not `create_dir_all`: an existing directory is a collision.
            match fs::create_dir(&path) {
                Ok(()) => return Ok(TempDir { path, keep: false }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some(e),
                Err(e) => return Err(create_error(&base, e)),
            }
        }
        let e = last_err.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists));
        Err(create_error(&base, e))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Do not remove the directory on drop (to inspect logs after a failure).
    pub fn keep(&mut self) {
        self.keep = true;
    }
}

fn create_error(base: &Path, e: io::Error) -> Error {
    Error::new(
        ErrorKind::Testkit,
        format!(
            "cannot create a temporary directory under {}: {e}",
            base.display()
        ),
    )
    .with_source(e)
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_unique_and_removed_on_drop() {
        let a = TempDir::new("t").unwrap();
        let b = TempDir::new("t").unwrap();
        assert_ne!(a.path(), b.path());
        fs::write(a.path().join("f"), b"x").unwrap();
        let p = a.path().to_path_buf();
        assert!(p.is_dir());
        drop(a);
        assert!(!p.exists());
    }
}
