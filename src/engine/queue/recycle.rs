//! Recycled queue files: a finished message's file is renamed into
//! `spool/free/` instead of being deleted, and a newly accepted message is
//! written over it.
//!
//! Why: creating and deleting a file are the dearest steps in a small
//! message's stay in the spool. Each allocates or frees an inode and
//! rewrites directory blocks, and on ext4 without a journal allocating an
//! inode scans past every inode freed in the last minutes (it will not
//! reuse one whose deletion may not be on disk yet): under a steady load
//! each new file cost more the more mail had gone through (a third of the
//! engine's CPU in `bench/smtp-throughput.sh`). Reusing files, as
//! databases recycle their log segments, takes both steps out.
//!
//! Invariants:
//! - A file in `free/` holds nothing anyone was promised: a finished
//!   message's old bytes or a new one half written. Any of them may be
//!   reused or deleted at any time; recovery keeps or deletes them.
//! - A file is reused only while `free/` is its one name (link count 1):
//!   a queue file also linked elsewhere (a shadow copy adopted from the
//!   peer) is deleted, never recycled, and a free file still linked into
//!   `queue/` (a crash between an acceptance's link and its unlink) loses
//!   its free name, never its bytes.
//! - Each free file is handed to one caller at a time (popped under a
//!   mutex), so two acceptances never write the same file.
//! - At most `MAX_FREE` files, `MAX_FREE_BYTES` in all and
//!   `MAX_RECYCLED_BYTES` each, are kept; anything else is deleted as
//!   before.
//!
//! All calls block: call them from `smol::unblock`.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Free files kept: a burst of mail as big as this leaves its files for the
/// next one instead of deleting them (and then allocating them again).
const MAX_FREE: usize = 65_536;
/// The pool's disk budget: 256 MiB is about 50,000 typical small messages.
const MAX_FREE_BYTES: u64 = 256 * 1024 * 1024;
/// Bigger files are deleted: keeping a 25 MB attachment's blocks around to
/// save one inode is a bad trade.
const MAX_RECYCLED_BYTES: u64 = 256 * 1024;

#[derive(Default)]
struct Free {
    /// Each free file and its size when it was given.
    files: Vec<(PathBuf, u64)>,
    bytes: u64,
}

impl Free {
    fn has_room_for(&self, len: u64) -> bool {
        self.files.len() < MAX_FREE && self.bytes + len <= MAX_FREE_BYTES
    }

    fn push(&mut self, path: PathBuf, len: u64) {
        self.files.push((path, len));
        self.bytes += len;
    }

    fn pop(&mut self) -> Option<PathBuf> {
        let (path, len) = self.files.pop()?;
        self.bytes -= len;
        Some(path)
    }
}

pub struct FilePool {
    dir: PathBuf,
    free: Mutex<Free>,
    /// The next free file's name (a number never used in this folder).
    next_name: AtomicU64,
}

impl FilePool {
    /// Opens (creating if needed) `dir` and takes stock of the files in
    /// it: those safe to reuse are kept, the others deleted.
    pub fn open(dir: &Path) -> std::io::Result<FilePool> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let mut free = Free::default();
        let mut highest = 0;
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            let number = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse::<u64>().ok());
            let reusable_len = fs::symlink_metadata(&path)
                .ok()
                .filter(|m| m.is_file() && m.nlink() == 1 && m.len() <= MAX_RECYCLED_BYTES)
                .map(|m| m.len());
            match (number, reusable_len) {
                (Some(n), Some(len)) if free.has_room_for(len) => {
                    highest = highest.max(n);
                    free.push(path, len);
                }
                // Not ours to reuse (a folder, a second name, too big):
                // a leftover that must not stop the engine from starting.
                _ => {
                    if let Err(e) = fs::remove_file(&path) {
                        tracing::warn!(path = %path.display(), error = %e,
                            "cannot delete a leftover in spool/free; ignoring it");
                    }
                }
            }
        }
        Ok(FilePool {
            dir: dir.to_path_buf(),
            free: Mutex::new(free),
            next_name: AtomicU64::new(highest + 1),
        })
    }

    /// A free file opened for writing, for this caller alone, or `None`
    /// when there is none (the caller creates a new one).
    pub fn take(&self) -> Option<(PathBuf, File)> {
        loop {
            let path = self.lock().pop()?;
            let opened = OpenOptions::new().write(true).open(&path);
            match opened {
                Ok(file) if file.metadata().is_ok_and(|m| m.nlink() == 1) => {
                    return Some((path, file))
                }
                // Linked elsewhere too, or gone: never write over it.
                _ => {
                    let _ = fs::remove_file(&path);
                }
            }
        }
    }

    /// Takes in a finished file (its folder's entry moves to `free/`), or
    /// says no (`Ok(false)`: the caller deletes it). The caller makes the
    /// old name's removal durable.
    pub fn give(&self, path: &Path) -> std::io::Result<bool> {
        let meta = fs::symlink_metadata(path)?;
        if !meta.is_file() || meta.nlink() != 1 || meta.len() > MAX_RECYCLED_BYTES {
            return Ok(false);
        }
        if !self.lock().has_room_for(meta.len()) {
            return Ok(false);
        }
        let name = self.next_name.fetch_add(1, Ordering::Relaxed);
        let free = self.dir.join(name.to_string());
        fs::rename(path, &free)?;
        self.lock().push(free, meta.len());
        Ok(true)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().files.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Free> {
        // A panic while holding it leaves a list of paths, still valid.
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_file_comes_back_once_and_keeps_nothing_linked_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let pool = FilePool::open(&dir.path().join("free")).unwrap();
        assert!(pool.take().is_none());

        let done = dir.path().join("done.msg");
        fs::write(&done, b"old message").unwrap();
        assert!(pool.give(&done).unwrap());
        assert!(!done.exists());
        assert_eq!(pool.len(), 1);
        let (path, _file) = pool.take().unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"old message");
        assert!(pool.take().is_none(), "each free file goes to one caller");

        // A file with a second name is never taken in...
        let shared = dir.path().join("shared.msg");
        fs::write(&shared, b"also a shadow copy").unwrap();
        fs::hard_link(&shared, dir.path().join("shadow-copy")).unwrap();
        assert!(!pool.give(&shared).unwrap());
        assert!(shared.exists());
        // ...nor handed out if it got one while free (a crash mid-accept).
        let victim = dir.path().join("victim.msg");
        fs::write(&victim, b"queued").unwrap();
        assert!(pool.give(&victim).unwrap());
        let free_name = fs::read_dir(dir.path().join("free"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p != &path)
            .unwrap();
        fs::hard_link(&free_name, dir.path().join("queued-again.msg")).unwrap();
        assert!(pool.take().is_none());
        assert_eq!(
            fs::read(dir.path().join("queued-again.msg")).unwrap(),
            b"queued"
        );
    }

    #[test]
    fn reopening_keeps_the_safe_files_and_deletes_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let free = dir.path().join("free");
        let pool = FilePool::open(&free).unwrap();
        for name in ["a.msg", "b.msg"] {
            let path = dir.path().join(name);
            fs::write(&path, name).unwrap();
            assert!(pool.give(&path).unwrap());
        }
        drop(pool);
        fs::write(free.join("not-a-number"), b"?").unwrap();
        fs::write(free.join("7"), vec![0u8; MAX_RECYCLED_BYTES as usize + 1]).unwrap();
        let doubly = free.join("8");
        fs::write(&doubly, b"queued too").unwrap();
        fs::hard_link(&doubly, dir.path().join("queued.msg")).unwrap();

        let pool = FilePool::open(&free).unwrap();
        assert_eq!(pool.len(), 2);
        let mut left: Vec<String> = fs::read_dir(&free)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["1", "2"]);
        assert_eq!(
            fs::read(dir.path().join("queued.msg")).unwrap(),
            b"queued too"
        );
        // New names continue past the kept ones.
        let path = dir.path().join("c.msg");
        fs::write(&path, b"c").unwrap();
        assert!(pool.give(&path).unwrap());
        assert!(free.join("3").exists());
    }
}
