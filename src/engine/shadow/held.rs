//! The holder's side on disk: the peer's accepted mail, kept until the peer
//! says it is finished, and taken into our own queue if the peer goes
//! silent.
//!
//! Owns `spool/shadow/`:
//! - `<id>.msg`: the peer's queue file exactly as its spool wrote it
//!   (envelope as accepted + message), durable before `Held` is answered;
//! - `<id>.progress`: recipients the peer reported final, one JSON line
//!   each (not synced: losing a line costs at most a duplicate, never mail);
//! - `taken/<id>`: an empty marker per message we took over, kept until
//!   the peer has seen it (`TakenSeen`).
//!
//! Invariants:
//! - Taking over links the very file into our `queue/` (same id, same
//!   bytes: no copy, and a second takeover of one id finds it queued),
//!   then writes the marker, then unlinks the copy. `recover`, run before
//!   the spool's own recovery and the scheduler, finishes an interrupted
//!   takeover from what is on disk: copy and queue entry both present =
//!   taken, finish; copy and marker present = taken and delivered already.
//! - Ids are checked with `QueueId::parse` before they name a file.
//!
//! Reads untrusted input: frames from the peer (checked ids, checked queue
//! files). Blocking file I/O: call from a thread or `smol::unblock`.

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::engine::queue::spool::{file_envelope, Spool};
use crate::engine::queue::{Envelope, QueueId, Recipient};

#[derive(Debug, thiserror::Error)]
pub enum HeldError {
    #[error("shadow copy {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the peer sent a bad shadow copy: {0}")]
    Bad(String),
    #[error(transparent)]
    Spool(#[from] crate::engine::queue::SpoolError),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> HeldError + '_ {
    move |source| HeldError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub struct HeldCopies {
    dir: PathBuf,
    taken: PathBuf,
}

impl HeldCopies {
    pub fn open(spool_root: &Path) -> Result<HeldCopies, HeldError> {
        let held = HeldCopies {
            dir: spool_root.join("shadow"),
            taken: spool_root.join("shadow").join("taken"),
        };
        for dir in [&held.dir, &held.taken] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io_err(dir))?;
        }
        Ok(held)
    }

    /// The store if it was ever made here (nothing is created).
    pub fn existing(spool_root: &Path) -> Option<HeldCopies> {
        let dir = spool_root.join("shadow");
        dir.is_dir().then(|| HeldCopies {
            taken: dir.join("taken"),
            dir,
        })
    }

    fn copy_path(&self, id: &QueueId) -> PathBuf {
        self.dir.join(format!("{id}.msg"))
    }

    fn progress_path(&self, id: &QueueId) -> PathBuf {
        self.dir.join(format!("{id}.progress"))
    }

    fn marker_path(&self, id: &QueueId) -> PathBuf {
        self.taken.join(id.as_str())
    }

    /// Keeps the peer's queue file durably (answered with `Held` after).
    pub fn put(&self, id: &str, file: &[u8]) -> Result<(), HeldError> {
        let id = parse(id)?;
        let envelope = file_envelope(file).map_err(HeldError::Bad)?;
        if envelope.id != id.as_str() {
            return Err(HeldError::Bad(format!(
                "the copy of {id} names queue id {:?}",
                envelope.id
            )));
        }
        let path = self.copy_path(&id);
        crate::fsutil::write_atomically(&path, file, 0o600).map_err(io_err(&path))
    }

    /// Notes recipients the peer finished, for a takeover.
    pub fn progress(&self, id: &str, recipients: &[(usize, Recipient)]) -> Result<(), HeldError> {
        let id = parse(id)?;
        if !self.copy_path(&id).exists() {
            return Ok(());
        }
        let mut lines = Vec::new();
        for line in recipients {
            serde_json::to_writer(&mut lines, line).map_err(|e| HeldError::Bad(e.to_string()))?;
            lines.push(b'\n');
        }
        let path = self.progress_path(&id);
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(&lines))
            .map_err(io_err(&path))
    }

    /// The peer finished `id`: its copy goes.
    pub fn forget(&self, id: &str) -> Result<(), HeldError> {
        let id = parse(id)?;
        for path in [self.copy_path(&id), self.progress_path(&id)] {
            remove_if_there(&path)?;
        }
        Ok(())
    }

    /// Ids of the copies held now.
    pub fn ids(&self) -> Result<Vec<QueueId>, HeldError> {
        names_in(&self.dir, ".msg")
    }

    /// Ids taken over and not yet seen by the peer.
    pub fn taken_ids(&self) -> Result<Vec<QueueId>, HeldError> {
        names_in(&self.taken, "")
    }

    /// The peer is back and says which of its messages are still queued:
    /// every other copy is finished there (its `Done` was lost) and goes.
    pub fn keep_only(&self, queued: &[String]) -> Result<usize, HeldError> {
        let queued: HashSet<&str> = queued.iter().map(String::as_str).collect();
        let mut dropped = 0;
        for id in self.ids()? {
            if !queued.contains(id.as_str()) {
                self.forget(id.as_str())?;
                dropped += 1;
            }
        }
        Ok(dropped)
    }

    /// The peer has seen these takeovers.
    pub fn release_taken(&self, ids: &[String]) -> Result<(), HeldError> {
        for id in ids {
            remove_if_there(&self.marker_path(&parse(id)?))?;
        }
        Ok(())
    }

    /// Puts the copy of `id` into our own queue (see the invariants).
    /// `Some(envelope)` when it is queued now; `None` when nothing was left
    /// to deliver or it was taken already.
    pub fn take_over(&self, id: &QueueId, spool: &Spool) -> Result<Option<Envelope>, HeldError> {
        let copy = self.copy_path(id);
        let file = fs::read(&copy).map_err(io_err(&copy))?;
        let mut envelope = file_envelope(&file).map_err(HeldError::Bad)?;
        let finished = self.replay_progress(id, &mut envelope);
        if envelope.is_final() {
            self.forget(id.as_str())?;
            return Ok(None);
        }
        let queued = spool.adopt(id, &copy, finished.then_some(&envelope))?;
        self.mark_taken(id)?;
        Ok(queued.then_some(envelope))
    }

    /// Applies the peer's progress lines; true if any changed a recipient.
    fn replay_progress(&self, id: &QueueId, envelope: &mut Envelope) -> bool {
        let Ok(text) = fs::read_to_string(self.progress_path(id)) else {
            return false;
        };
        let mut changed = false;
        // A torn last line (crash mid-append) fails to parse and is skipped.
        for (index, recipient) in text
            .lines()
            .filter_map(|l| serde_json::from_str::<(usize, Recipient)>(l).ok())
        {
            if let Some(r) = envelope.recipients.get_mut(index) {
                if r.address == recipient.address {
                    *r = recipient;
                    changed = true;
                }
            }
        }
        changed
    }

    fn mark_taken(&self, id: &QueueId) -> Result<(), HeldError> {
        crate::fsutil::write_atomically(&self.marker_path(id), b"", 0o600)
            .map_err(io_err(&self.taken))?;
        self.forget(id.as_str())
    }

    /// Finishes takeovers a crash interrupted; call before `Spool::recover`.
    pub fn recover(&self, spool: &Spool) -> Result<(), HeldError> {
        for id in self.ids()? {
            if spool.message_path(&id).exists() {
                tracing::info!(queue_id = %id, "finishing the takeover of a shadow copy");
                self.mark_taken(&id)?;
            } else if self.marker_path(&id).exists() {
                // Taken, delivered and gone from our queue; only the copy was left.
                self.forget(id.as_str())?;
            }
        }
        Ok(())
    }
}

fn parse(id: &str) -> Result<QueueId, HeldError> {
    QueueId::parse(id).ok_or_else(|| HeldError::Bad(format!("{id:?} is not a queue id")))
}

fn remove_if_there(path: &Path) -> Result<(), HeldError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// Queue ids named by the files in `dir` ending in `suffix`.
fn names_in(dir: &Path, suffix: &str) -> Result<Vec<QueueId>, HeldError> {
    let mut ids = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let name = entry.map_err(io_err(dir))?.file_name();
        if let Some(id) = name
            .to_str()
            .and_then(|n| n.strip_suffix(suffix))
            .and_then(QueueId::parse)
        {
            ids.push(id);
        }
    }
    ids.sort();
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::queue::spool::file_bytes;
    use crate::engine::queue::{QueueLane, RecipientState};

    fn envelope(id: &QueueId, recipients: &[&str]) -> Envelope {
        Envelope {
            id: id.to_string(),
            sender: "a@example.org".into(),
            recipients: recipients
                .iter()
                .map(|r| Recipient::new(r.to_string(), 0))
                .collect(),
            arrived_at: 0,
            size: 4,
            body_8bit: false,
            smtputf8: false,
            authenticated: None,
            lane: QueueLane::Normal,
            held: false,
            delay_notified: false,
        }
    }

    fn setup() -> (tempfile::TempDir, HeldCopies, Spool) {
        let dir = tempfile::tempdir().unwrap();
        let held = HeldCopies::open(dir.path()).unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        (dir, held, spool)
    }

    #[test]
    fn a_copy_is_kept_until_done_and_refused_when_damaged() {
        let (_dir, held, _spool) = setup();
        let id = QueueId::generate();
        let file = file_bytes(&envelope(&id, &["b@x.test"]), b"hi\r\n").unwrap();
        held.put(id.as_str(), &file).unwrap();
        assert_eq!(held.ids().unwrap(), vec![id.clone()]);
        assert!(held.put(id.as_str(), b"garbage").is_err());
        assert!(held.put("../etc", &file).is_err());
        let other = QueueId::generate();
        assert!(held.put(other.as_str(), &file).is_err(), "id must match");
        held.forget(id.as_str()).unwrap();
        assert!(held.ids().unwrap().is_empty());
    }

    #[test]
    fn takeover_queues_the_same_file_without_finished_recipients() {
        let (_dir, held, spool) = setup();
        let id = QueueId::generate();
        let env = envelope(&id, &["b@x.test", "c@x.test"]);
        held.put(id.as_str(), &file_bytes(&env, b"hi\r\n").unwrap())
            .unwrap();
        let mut done = env.recipients[0].clone();
        done.delivered();
        held.progress(id.as_str(), &[(0, done)]).unwrap();

        let queued = held.take_over(&id, &spool).unwrap().expect("queued");
        assert_eq!(queued.recipients[0].state, RecipientState::Delivered);
        assert_eq!(queued.recipients[1].state, RecipientState::Pending);
        assert_eq!(spool.read_message(&id).unwrap(), b"hi\r\n");
        let recovered = spool.recover().unwrap();
        assert_eq!(recovered, vec![queued], "the spool reads the progress back");
        assert!(held.ids().unwrap().is_empty());
        assert_eq!(held.taken_ids().unwrap(), vec![id.clone()]);
        held.release_taken(&[id.to_string()]).unwrap();
        assert!(held.taken_ids().unwrap().is_empty());
    }

    #[test]
    fn a_copy_whose_recipients_are_all_finished_is_not_queued() {
        let (_dir, held, spool) = setup();
        let id = QueueId::generate();
        let env = envelope(&id, &["b@x.test"]);
        held.put(id.as_str(), &file_bytes(&env, b"hi\r\n").unwrap())
            .unwrap();
        let mut done = env.recipients[0].clone();
        done.failed("550 no".into());
        held.progress(id.as_str(), &[(0, done)]).unwrap();
        assert_eq!(held.take_over(&id, &spool).unwrap(), None);
        assert!(spool.queued_ids().unwrap().is_empty());
        assert!(held.ids().unwrap().is_empty());
    }

    #[test]
    fn an_interrupted_takeover_is_finished_by_recover() {
        let (_dir, held, spool) = setup();
        let id = QueueId::generate();
        let env = envelope(&id, &["b@x.test"]);
        let file = file_bytes(&env, b"hi\r\n").unwrap();
        held.put(id.as_str(), &file).unwrap();
        // Crash after the link into queue/, before the marker.
        assert!(spool.adopt(&id, &held.copy_path(&id), None).unwrap());
        held.recover(&spool).unwrap();
        assert!(held.ids().unwrap().is_empty());
        assert_eq!(held.taken_ids().unwrap(), vec![id.clone()]);
        // A second takeover of the same id finds it queued.
        held.put(id.as_str(), &file).unwrap();
        assert_eq!(held.take_over(&id, &spool).unwrap(), None);
    }

    #[test]
    fn copies_the_peer_no_longer_queues_are_dropped_on_hello() {
        let (_dir, held, _spool) = setup();
        let (a, b) = (QueueId::generate(), QueueId::generate());
        for id in [&a, &b] {
            let env = envelope(id, &["b@x.test"]);
            held.put(id.as_str(), &file_bytes(&env, b"x\r\n").unwrap())
                .unwrap();
        }
        assert_eq!(held.keep_only(&[b.to_string()]).unwrap(), 1);
        assert_eq!(held.ids().unwrap(), vec![b]);
    }
}
