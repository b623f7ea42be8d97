//! Group commit for fsync: concurrent callers that need the same file or
//! folder durable at the same moment share one fsync instead of paying for
//! one each. Used for the spool folder (SMTP sessions accepting mail share
//! one `fsync(queue/)`), for the store's active segments (deliveries
//! appending blobs share one `fdatasync`) and for the store's metadata
//! (deliveries share one sled flush).
//!
//! A caller that has written its bytes (or linked its files) asks for a sync and
//! returns only after a sync that *started after its request* finished: a
//! sync already in flight when it asked might not cover its directory
//! entries. The first waiter to find no sync running runs it for everyone
//! who asked so far.
//!
//! Invariant: `sync()` returns Ok only if an fsync of the folder that began
//! after the call began has succeeded; an fsync error is returned to every
//! caller it covered (none of them may send 250).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

/// What one sync makes durable.
enum Target {
    /// A folder's entries (`fsync` of the folder).
    Dir(PathBuf),
    /// A file's data (`fdatasync`: the bytes written and the length, not
    /// the times).
    FileData(Arc<File>),
    /// Everything written to a sled database (`Db::flush`).
    Sled(sled::Db),
}

impl Target {
    fn sync(&self) -> std::io::Result<()> {
        match self {
            Target::Dir(dir) => File::open(dir).and_then(|d| d.sync_all()),
            Target::FileData(file) => file.sync_data(),
            Target::Sled(db) => db.flush().map(|_| ()).map_err(std::io::Error::other),
        }
    }

    fn describe(&self) -> String {
        match self {
            Target::Dir(dir) => dir.display().to_string(),
            Target::FileData(_) => "a store segment".into(),
            Target::Sled(_) => "the store's metadata".into(),
        }
    }
}

#[derive(Default)]
struct State {
    /// Requests handed out so far.
    requested: u64,
    /// Every request up to this number is covered by a finished sync.
    completed: u64,
    /// Requests up to this number were covered by a sync that failed.
    failed_upto: u64,
    failure: Option<String>,
    running: bool,
}

pub struct GroupSync {
    target: Target,
    state: Mutex<State>,
    done: Condvar,
}

impl GroupSync {
    /// Syncs of the folder `dir`'s entries.
    pub fn for_dir(dir: &Path) -> GroupSync {
        GroupSync::new(Target::Dir(dir.to_path_buf()))
    }

    /// Syncs of `file`'s data.
    pub fn for_file_data(file: Arc<File>) -> GroupSync {
        GroupSync::new(Target::FileData(file))
    }

    /// Flushes of the sled database `db`.
    pub fn for_sled(db: sled::Db) -> GroupSync {
        GroupSync::new(Target::Sled(db))
    }

    fn new(target: Target) -> GroupSync {
        GroupSync {
            target,
            state: Mutex::new(State::default()),
            done: Condvar::new(),
        }
    }

    /// Makes every change to the target made before this call durable.
    pub fn sync(&self) -> std::io::Result<()> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.requested += 1;
        let mine = s.requested;
        loop {
            if s.completed >= mine {
                return match (&s.failure, mine <= s.failed_upto) {
                    (Some(e), true) => Err(std::io::Error::other(e.clone())),
                    _ => Ok(()),
                };
            }
            if !s.running {
                // Run a sync for everyone who asked until now.
                s.running = true;
                let upto = s.requested;
                drop(s);
                let result = self.target.sync();
                s = self.state.lock().unwrap_or_else(|p| p.into_inner());
                s.running = false;
                s.completed = upto;
                match result {
                    Ok(()) => {
                        if s.failed_upto < upto {
                            s.failure = None;
                        }
                    }
                    Err(e) => {
                        s.failed_upto = upto;
                        s.failure = Some(format!("fsync of {}: {e}", self.target.describe()));
                    }
                }
                self.done.notify_all();
                continue;
            }
            s = self.done.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn many_callers_all_return_after_a_covering_sync() {
        let dir = tempfile::tempdir().unwrap();
        let g = Arc::new(GroupSync::for_dir(dir.path()));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let g = g.clone();
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        g.sync().unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = g.state.lock().unwrap();
        assert_eq!(s.requested, 320);
        assert_eq!(s.completed, 320);
        assert!(!s.running);
    }

    #[test]
    fn a_failed_sync_fails_its_callers() {
        let g = GroupSync::for_dir(Path::new("/nonexistent/campusmail-spool"));
        assert!(g.sync().is_err());
    }
}
