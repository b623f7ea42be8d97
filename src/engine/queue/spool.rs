//! The spool: accepted messages on disk until every recipient is final.
//!
//! Owns, under `Config::spool_dir()`, folders whose names are the states a
//! message can be in (like Postfix's queue folders):
//! - `incoming/`  files being written; never acknowledged. Emptied on start.
//! - `queue/`     `<id>.msg`: one file holding the envelope as accepted and
//!   the message (Received: header included), see `QueueFile`; once the
//!   envelope changes, `<id>.json` (the current `Envelope`, which then wins
//!   over the one inside `.msg`) and, between envelope rewrites, `<id>.log`
//!   (recipient outcomes appended one JSON line each, replayed over the
//!   envelope on load). A message is queued exactly when its `.msg` file is
//!   in `queue/`.
//! - `corrupt/`   queue files that could not be read, set aside for the
//!   admin, never deleted by the engine.
//! - `free/`      finished queue files kept to be written over by the next
//!   accepted messages (`recycle.rs`); never acknowledged content.
//!
//! Invariants:
//! - Accepting writes the one `.msg` file (a free one from `free/`, else
//!   a new one in `incoming/`), syncs its data (`fdatasync`: one per
//!   message, as Postfix's `cleanup` does), links it into `queue/` (a link
//!   never replaces an existing name), unlinks the first name, and fsyncs
//!   `queue/`. That last fsync is the step that makes the message durable;
//!   only after it may the SMTP session send 250. Every fsync of `queue/` (acceptances, removals, envelope
//!   rewrites) is shared by the callers asking at the same moment
//!   (`fsutil::group_sync`): each waits for one that began after its change.
//! - Envelope updates are atomic: write to `incoming/`, fsync, rename over
//!   the old `.json`, fsync `queue/`, then drop the `.log` it now includes.
//!   A crash leaves the old or the new state; replaying a log line twice
//!   sets the same values again (idempotent).
//! - Outcomes appended to the `.log` are durable once its fsync returns; a
//!   torn last line (crash mid-write) is ignored, so that outcome is
//!   attempted again. Appending a few lines instead of rewriting a
//!   30,000-recipient envelope keeps bulk delivery cheap. Outcomes that
//!   finish a message are not logged at all (see `Attempter::record`):
//!   its removal is their durable record.
//! - Removal takes the `.msg` out first (into `free/`, or deleted): a
//!   crash in between leaves an orphan `.json` or `.log`, which recovery
//!   deletes, never an envelope that is queued without its message.
//! - Files are owner-only (0600), folders 0700. All calls block: call them
//!   from `smol::unblock`.
//!
//! Reads untrusted input: message bytes are stored as given; queue files
//! are parsed on recovery and set aside if damaged.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::envelope::{Envelope, Recipient};
use super::id::QueueId;
use super::queue_file;
use super::recycle::FilePool;
use crate::fsutil::group_sync::GroupSync;

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("spool envelope {path} is damaged: {message}")]
    Corrupt { path: PathBuf, message: String },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub struct Spool {
    incoming: PathBuf,
    queue: PathBuf,
    corrupt: PathBuf,
    /// The fsync of `queue/`, shared by concurrent callers.
    queue_sync: GroupSync,
    /// Finished files to write new messages over (`free/`).
    free: FilePool,
}

impl Spool {
    /// Opens (creating if needed) the spool folders under `root`.
    pub fn open(root: &Path) -> Result<Spool, SpoolError> {
        let spool = Spool {
            incoming: root.join("incoming"),
            queue: root.join("queue"),
            corrupt: root.join("corrupt"),
            queue_sync: GroupSync::for_dir(&root.join("queue")),
            free: FilePool::open(&root.join("free")).map_err(io_err(&root.join("free")))?,
        };
        for dir in [&spool.incoming, &spool.queue, &spool.corrupt] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io_err(dir))?;
        }
        Ok(spool)
    }

    pub fn message_path(&self, id: &QueueId) -> PathBuf {
        self.queue.join(format!("{id}.msg"))
    }

    fn envelope_path(&self, id: &QueueId) -> PathBuf {
        self.queue.join(format!("{id}.json"))
    }

    fn log_path(&self, id: &QueueId) -> PathBuf {
        self.queue.join(format!("{id}.log"))
    }

    /// Appends recipients' new states (by index) to the message's outcome
    /// log and fsyncs it: durable when it returns.
    pub fn append_outcomes(
        &self,
        id: &QueueId,
        updates: &[(usize, Recipient)],
    ) -> Result<(), SpoolError> {
        if updates.is_empty() {
            return Ok(());
        }
        let path = self.log_path(id);
        let mut lines = Vec::new();
        for update in updates {
            let line =
                serde_json::to_vec(&LogLine::from(update)).map_err(|e| SpoolError::Corrupt {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            lines.extend_from_slice(&line);
            lines.push(b'\n');
        }
        let created = !path.exists();
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_err(&path))?;
        file.write_all(&lines).map_err(io_err(&path))?;
        file.sync_data().map_err(io_err(&path))?;
        if created {
            self.sync_queue_dir()?;
        }
        Ok(())
    }

    /// Writes a new message and its envelope durably (see the invariants).
    /// Returns the queue file's bytes (what the peer holds as its shadow
    /// copy), so they are encoded once.
    pub fn accept(
        &self,
        id: &QueueId,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<Vec<u8>, SpoolError> {
        let bytes = file_bytes(envelope, message)?;
        let (tmp, written) = match self.free.take() {
            Some((path, file)) => {
                let written = overwrite_synced(&path, file, &bytes);
                (path, written)
            }
            None => {
                let path = self.incoming.join(format!("{id}.msg"));
                let written = write_synced(&path, &bytes);
                (path, written)
            }
        };
        // Linking (not renaming) fails if the name is taken: an id is
        // never overwritten.
        let written = written.and_then(|()| link_new(&tmp, &self.message_path(id)));
        let _ = fs::remove_file(&tmp);
        written?;
        // Durable from here: the new name in queue/ is recorded on disk
        // (one fsync shared with the sessions accepting at the same time).
        self.sync_queue_dir()?;
        Ok(bytes)
    }

    /// Makes every change to `queue/`'s names so far durable: one fsync
    /// of the folder shared by everyone asking at the same moment
    /// (acceptances, removals and envelope rewrites alike).
    fn sync_queue_dir(&self) -> Result<(), SpoolError> {
        self.queue_sync.sync().map_err(io_err(&self.queue))
    }

    /// Replaces the envelope of a queued message atomically.
    pub fn save_envelope(&self, id: &QueueId, envelope: &Envelope) -> Result<(), SpoolError> {
        let tmp = self.incoming.join(format!("{id}.json.update"));
        let _ = fs::remove_file(&tmp);
        write_synced(&tmp, &envelope_bytes(envelope)?)?;
        let path = self.envelope_path(id);
        fs::rename(&tmp, &path).map_err(io_err(&path))?;
        // The new envelope includes every logged outcome: the log can go.
        let log = self.log_path(id);
        if let Err(e) = fs::remove_file(&log) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(io_err(&log)(e));
            }
        }
        self.sync_queue_dir()
    }

    pub fn read_message(&self, id: &QueueId) -> Result<Vec<u8>, SpoolError> {
        let path = self.message_path(id);
        let bytes = fs::read(&path).map_err(io_err(&path))?;
        let corrupt = |message: String| SpoolError::Corrupt {
            path: path.clone(),
            message,
        };
        let (envelope, message) = queue_file::split(&bytes).map_err(corrupt)?;
        // Files are reused (`recycle.rs`): make sure this one still holds
        // the message it is named for.
        #[derive(serde::Deserialize)]
        struct Named {
            id: String,
        }
        let named: Named = serde_json::from_slice(envelope).map_err(|e| corrupt(e.to_string()))?;
        if named.id != id.as_str() {
            return Err(corrupt(format!("holds queue id {:?}", named.id)));
        }
        Ok(message.to_vec())
    }

    /// Takes a finished message out of the queue.
    pub fn remove(&self, id: &QueueId) -> Result<(), SpoolError> {
        let message = self.message_path(id);
        if !self.free.give(&message).map_err(io_err(&message))? {
            fs::remove_file(&message).map_err(io_err(&message))?;
        }
        for path in [self.envelope_path(id), self.log_path(id)] {
            if let Err(e) = fs::remove_file(&path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(io_err(&path)(e));
                }
            }
        }
        self.sync_queue_dir()
    }

    /// Ids whose `.msg` is in `queue/` (names only; nothing is read).
    pub fn queued_ids(&self) -> Result<Vec<QueueId>, SpoolError> {
        let mut ids = Vec::new();
        for entry in fs::read_dir(&self.queue).map_err(io_err(&self.queue))? {
            let entry = entry.map_err(io_err(&self.queue))?;
            let name = entry.file_name();
            if let Some(id) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".msg"))
                .and_then(QueueId::parse)
            {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    /// Queues a complete queue file written elsewhere on this file system
    /// (a shadow copy this node takes over from its peer): links it into
    /// `queue/` as `id` and fsyncs `queue/`. `Ok(false)` when `id` is
    /// queued already. An `envelope` given first becomes its current one
    /// (recipients the peer finished).
    pub fn adopt(
        &self,
        id: &QueueId,
        file: &Path,
        envelope: Option<&Envelope>,
    ) -> Result<bool, SpoolError> {
        let target = self.message_path(id);
        if target.exists() {
            return Ok(false);
        }
        if let Some(envelope) = envelope {
            // Before the link: until the `.msg` exists this `.json` is a
            // leftover that recovery deletes, never a wrong envelope.
            let tmp = self.incoming.join(format!("{id}.json.adopt"));
            let _ = fs::remove_file(&tmp);
            write_synced(&tmp, &envelope_bytes(envelope)?)?;
            let path = self.envelope_path(id);
            fs::rename(&tmp, &path).map_err(io_err(&path))?;
        }
        match fs::hard_link(file, &target) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(io_err(&target)(e)),
        }
        self.sync_queue_dir()?;
        Ok(true)
    }

    /// Called once at start, before any session runs: empties `incoming/`,
    /// sets damaged envelopes aside, deletes orphan messages, and returns every
    /// queued envelope, oldest first.
    pub fn recover(&self) -> Result<Vec<Envelope>, SpoolError> {
        for entry in fs::read_dir(&self.incoming).map_err(io_err(&self.incoming))? {
            let path = entry.map_err(io_err(&self.incoming))?.path();
            tracing::info!(path = %path.display(), "discarding a message that was never acknowledged");
            fs::remove_file(&path).map_err(io_err(&path))?;
        }
        let mut envelopes = Vec::new();
        let mut leftovers = Vec::new();
        for entry in fs::read_dir(&self.queue).map_err(io_err(&self.queue))? {
            let path = entry.map_err(io_err(&self.queue))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let parsed = name
                .split_once('.')
                .and_then(|(stem, ext)| Some((QueueId::parse(stem)?, ext)));
            match parsed {
                Some((id, "msg")) => match self.load(&id) {
                    Ok(envelope) => envelopes.push(envelope),
                    Err(e) => {
                        tracing::warn!(error = %e, "setting a damaged queue entry aside in spool/corrupt");
                        self.set_aside(&id)?;
                    }
                },
                // Only meaningful beside their `.msg`; checked below.
                Some((id, "json" | "log")) => leftovers.push((id, path)),
                _ => {
                    tracing::warn!(path = %path.display(), "ignoring an unknown file in the queue folder")
                }
            }
        }
        for (id, path) in leftovers {
            // Its `.msg` may have been set aside above, taking it along.
            if path.exists() && !self.message_path(&id).exists() {
                tracing::info!(queue_id = %id, "deleting what a finished message left behind");
                fs::remove_file(&path).map_err(io_err(&path))?;
            }
        }
        envelopes.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(envelopes)
    }

    /// Every readable envelope, without changing anything on disk (for
    /// admin commands while the engine is stopped).
    pub fn list(&self) -> Result<Vec<Envelope>, SpoolError> {
        let mut envelopes = Vec::new();
        for entry in fs::read_dir(&self.queue).map_err(io_err(&self.queue))? {
            let path = entry.map_err(io_err(&self.queue))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if let Some(id) = name.strip_suffix(".msg").and_then(QueueId::parse) {
                if let Ok(envelope) = self.load(&id) {
                    envelopes.push(envelope);
                }
            }
        }
        Ok(envelopes)
    }

    /// The current envelope of `id`: its `.json` if it has one, else the
    /// one accepted with it in its `.msg`; then its outcome log replayed.
    fn load(&self, id: &QueueId) -> Result<Envelope, SpoolError> {
        let json = self.envelope_path(id);
        let (path, bytes) = match fs::read(&json) {
            Ok(bytes) => (json, bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let path = self.message_path(id);
                let file = fs::read(&path).map_err(io_err(&path))?;
                let envelope = queue_file::split(&file)
                    .map(|(envelope, _)| envelope.to_vec())
                    .map_err(|message| SpoolError::Corrupt {
                        path: path.clone(),
                        message,
                    })?;
                (path, envelope)
            }
            Err(e) => return Err(io_err(&json)(e)),
        };
        let corrupt = |message: String| SpoolError::Corrupt {
            path: path.clone(),
            message,
        };
        let mut envelope: Envelope =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if envelope.id != id.as_str() {
            return Err(corrupt(format!("names queue id {:?}", envelope.id)));
        }
        if !self.message_path(id).exists() {
            return Err(corrupt("its message file is missing".into()));
        }
        if let Ok(log) = fs::read(self.log_path(id)) {
            replay(&mut envelope, &log);
        }
        Ok(envelope)
    }

    /// Moves the files of `id` (whichever exist) into `corrupt/`.
    fn set_aside(&self, id: &QueueId) -> Result<(), SpoolError> {
        for ext in ["json", "msg", "log"] {
            let from = self.queue.join(format!("{id}.{ext}"));
            if from.exists() {
                let to = self.corrupt.join(format!("{id}.{ext}"));
                fs::rename(&from, &to).map_err(io_err(&from))?;
            }
        }
        sync_dir(&self.corrupt)?;
        sync_dir(&self.queue)
    }
}

/// One line of a message's outcome log: a recipient's whole new state.
#[derive(serde::Serialize, serde::Deserialize)]
struct LogLine {
    i: usize,
    r: Recipient,
}

impl From<&(usize, Recipient)> for LogLine {
    fn from((i, r): &(usize, Recipient)) -> LogLine {
        LogLine {
            i: *i,
            r: r.clone(),
        }
    }
}

/// Applies logged outcomes over `envelope`; stops at a damaged (torn) line.
fn replay(envelope: &mut Envelope, log: &[u8]) {
    for line in log.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let Ok(LogLine { i, r }) = serde_json::from_slice::<LogLine>(line) else {
            break;
        };
        match envelope.recipients.get_mut(i) {
            Some(slot) if slot.address == r.address => *slot = r,
            _ => break,
        }
    }
}

/// The bytes of the queue file `accept` writes for this message (what the
/// peer holds as its shadow copy).
pub fn file_bytes(envelope: &Envelope, message: &[u8]) -> Result<Vec<u8>, SpoolError> {
    Ok(queue_file::encode(&envelope_bytes(envelope)?, message))
}

/// The envelope inside a queue file's bytes, checked.
pub fn file_envelope(file: &[u8]) -> Result<Envelope, String> {
    let (envelope, _) = queue_file::split(file)?;
    serde_json::from_slice(envelope).map_err(|e| format!("envelope: {e}"))
}

fn envelope_bytes(envelope: &Envelope) -> Result<Vec<u8>, SpoolError> {
    serde_json::to_vec(envelope).map_err(|e| SpoolError::Corrupt {
        path: PathBuf::from(&envelope.id),
        message: e.to_string(),
    })
}

/// Writes `bytes` over the free file `file` (at `path`), cuts it to their
/// length, and syncs it, as `write_synced` does for a new file.
fn overwrite_synced(path: &Path, mut file: File, bytes: &[u8]) -> Result<(), SpoolError> {
    file.write_all(bytes).map_err(io_err(path))?;
    file.set_len(bytes.len() as u64).map_err(io_err(path))?;
    file.sync_data().map_err(io_err(path))
}

/// Creates `path` (it must not exist), writes `bytes` and fsyncs the file.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), SpoolError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err(path))?;
    file.write_all(bytes).map_err(io_err(path))?;
    // The data and the size needed to read it back (fdatasync); the name
    // is made durable by the folder's fsync.
    file.sync_data().map_err(io_err(path))
}

fn link_new(from: &Path, to: &Path) -> Result<(), SpoolError> {
    fs::hard_link(from, to).map_err(io_err(to))
}

fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

#[cfg(test)]
#[path = "spool_tests.rs"]
mod tests;
