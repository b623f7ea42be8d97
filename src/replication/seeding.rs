//! Seeding a new or wiped node: instead of replaying the peer's whole log,
//! the puller asks for a snapshot of the peer's state (`Frame::Snapshot`),
//! installs it, and the same connection goes on with the ops after the
//! snapshot's version vector, then follows the log as usual.
//!
//! Server side (`send`): `Store::take_snapshot` copies the metadata into an
//! unlinked scratch file in `<data_dir>/pair/` under the writer lock (the
//! copy is consistent, see `store::snapshot`), then the file is streamed:
//! tree entries in batches of about 1 MB, then every live blob with its
//! refcount, then `SnapshotEnd`. The blobs' segments are pinned until the
//! end, so a message deleted meanwhile still has its bytes; its `Expunge`
//! follows in the tail. The tail starts at the vector: exactly the ops
//! the snapshot does not reflect.
//!
//! Client side (`receive`): only a store that `needs_snapshot` (no ops, no
//! log base, or an install cut short) asks. A peer that does not answer
//! with `SnapshotBegin` (an older version closes the connection) is marked
//! as not offering snapshots; the next connection pulls its whole log, as
//! seeding did before snapshots. `Replication::seed` holds the mailbox role
//! until the node has caught up; if it gives up (the peer unreachable), a
//! partly installed snapshot is discarded first, so the node never serves
//! half a copy or numbers changes from 1 again over a copy it lacks.
//!
//! Untrusted input: every frame from the peer (lengths bounded by
//! `wire`, entries and tree names checked by `store::snapshot`).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use super::wire::{self, Frame, WireError};
use super::{Peer, Replication};
use crate::store::{encode_entry, read_record, SnapshotRecord, StoreError};

/// Tree entries per frame, by bytes.
const ENTRY_BATCH: usize = 1024 * 1024;
/// Blobs stored with one sync, at most this many or bytes.
const BLOB_GROUP: usize = 256;
const BLOB_GROUP_BYTES: u64 = 16 * 1024 * 1024;
/// How long the puller waits for `SnapshotBegin` while the peer copies
/// its metadata (a few seconds per million messages).
const COPY_WAIT: Duration = Duration::from_secs(600);

/// What a snapshot seeding did, for `pair status` and the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedReport {
    pub peer: String,
    pub messages: u64,
    pub blobs: u64,
    pub bytes: u64,
    pub millis: u64,
    /// Unix seconds when it finished.
    pub at: i64,
}

impl SeedReport {
    pub fn describe(&self) -> String {
        format!(
            "seeded from {}'s snapshot: {} message(s), {} blob(s), {} byte(s) in {:.1} s, then its log tail",
            self.peer,
            self.messages,
            self.blobs,
            self.bytes,
            self.millis as f64 / 1000.0
        )
    }
}

/// How asking for a snapshot went.
pub enum Received {
    Installed(SeedReport),
    /// The peer did not offer one (why); pull its log instead.
    NotOffered(String),
}

fn store_error(e: StoreError) -> WireError {
    WireError::Bad(e.to_string())
}

/// True (and marked as running) when this node should ask the peer for a
/// snapshot now. Decided under the status lock, which `seed` also takes
/// to give up, so a snapshot never starts after it gave up.
pub fn wants_snapshot(rep: &Replication) -> bool {
    let Ok(mut s) = rep.status.lock() else {
        return false;
    };
    if s.snapshot_running || s.snapshot_unsupported || s.seeding_given_up {
        return false;
    }
    match rep.store.needs_snapshot() {
        Ok(true) => {
            s.snapshot_running = true;
            true
        }
        Ok(false) => false,
        Err(e) => {
            tracing::error!(error = %e, "cannot tell whether this store needs seeding");
            false
        }
    }
}

/// Records how a snapshot attempt ended.
pub fn finished(rep: &Replication, outcome: &Result<Received, WireError>) {
    if let Ok(mut s) = rep.status.lock() {
        s.snapshot_running = false;
        match outcome {
            Ok(Received::Installed(report)) => s.seeded = Some(report.clone()),
            Ok(Received::NotOffered(_)) => s.snapshot_unsupported = true,
            Err(_) => {}
        }
    }
}

/// Receives and installs the peer's snapshot (after `Frame::Snapshot` was
/// sent); the connection then carries the log tail.
pub fn receive(
    rep: &Replication,
    tls: &mut super::client::Tls,
    peer: &Peer,
) -> Result<Received, WireError> {
    let started = Instant::now();
    tls.sock.set_read_timeout(Some(COPY_WAIT))?;
    let first = wire::read(tls);
    tls.sock.set_read_timeout(Some(super::client::SILENCE))?;
    let (base, hlc_high, trees) = match first {
        Ok(Frame::SnapshotBegin {
            base,
            hlc_high,
            trees,
            messages,
            blobs,
            blob_bytes,
        }) => {
            tracing::info!(peer = %peer.name, messages, blobs, bytes = blob_bytes,
                "receiving a snapshot of the peer's store");
            (base, hlc_high, trees)
        }
        Ok(Frame::Refused { reason }) => return Ok(Received::NotOffered(reason)),
        Err(WireError::Io(e)) => {
            return Ok(Received::NotOffered(format!(
                "it closed the connection when asked ({e})"
            )))
        }
        Ok(other) => {
            return Err(WireError::Bad(format!(
                "expected SnapshotBegin, got {other:?}"
            )))
        }
        Err(e) => return Err(e),
    };
    let mut install = rep
        .store
        .begin_snapshot_install(&peer.name)
        .map_err(store_error)?;
    let mut group: Vec<(Vec<u8>, u64)> = Vec::new();
    let mut group_bytes = 0;
    loop {
        match wire::read(tls)? {
            Frame::SnapshotEntries { tree, len } => {
                let payload = wire::read_payload(tls, len)?;
                install.entries(&tree, &payload).map_err(store_error)?;
            }
            Frame::SnapshotBlob { refcount, len } => {
                group.push((wire::read_payload(tls, len)?, refcount));
                group_bytes += len;
                if group.len() >= BLOB_GROUP || group_bytes >= BLOB_GROUP_BYTES {
                    install.blobs(&group).map_err(store_error)?;
                    group.clear();
                    group_bytes = 0;
                }
            }
            Frame::SnapshotEnd => break,
            Frame::Refused { reason } => return Err(WireError::Bad(format!("refused: {reason}"))),
            other => {
                return Err(WireError::Bad(format!(
                    "unexpected frame in a snapshot: {other:?}"
                )))
            }
        }
    }
    install.blobs(&group).map_err(store_error)?;
    let missing = install.not_sent(&trees);
    let report = SeedReport {
        peer: peer.name.clone(),
        messages: install.messages,
        blobs: install.blobs,
        bytes: install.blob_bytes,
        millis: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        at: chrono::Utc::now().timestamp(),
    };
    if !install.skipped.is_empty() {
        tracing::warn!(peer = %peer.name, trees = ?install.skipped,
            "the peer's snapshot has trees this version does not know; they were left out");
    }
    install.finish(&base, hlc_high).map_err(store_error)?;
    if !missing.is_empty() {
        // An older peer lacks some of our indexes: rebuild them.
        tracing::warn!(peer = %peer.name, trees = ?missing,
            "the peer's snapshot lacks some of this version's indexes; rebuilding them with fsck");
        rep.store.fsck(true).map_err(store_error)?;
    }
    tracing::info!(peer = %peer.name, messages = report.messages, blobs = report.blobs,
        bytes = report.bytes, ms = report.millis, "installed the peer's snapshot; pulling the log after it");
    Ok(Received::Installed(report))
}

/// A scratch file in `dir`, already unlinked (nothing is left behind by a
/// crash), readable only by us.
fn scratch_file(dir: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    for n in 0u32.. {
        let path = dir.join(format!("snapshot-{}-{n}.tmp", std::process::id()));
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(file) => {
                std::fs::remove_file(&path)?;
                return Ok(file);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no scratch file name is free"))
}

fn send_entries(
    tls: &mut impl Write,
    tree: &Option<String>,
    batch: &mut Vec<u8>,
) -> Result<(), WireError> {
    if let (Some(tree), false) = (tree, batch.is_empty()) {
        let frame = Frame::SnapshotEntries {
            tree: tree.clone(),
            len: batch.len() as u64,
        };
        wire::write(tls, &frame, Some(batch))?;
    }
    batch.clear();
    Ok(())
}

/// Sends a snapshot of this store (the peer asked with `Frame::Snapshot`);
/// returns the positions the log tail starts after.
pub fn send(
    rep: &Replication,
    tls: &mut impl Write,
    peer: &str,
) -> Result<BTreeMap<String, u64>, WireError> {
    let started = Instant::now();
    let copied = scratch_file(&rep.files.dir)
        .map_err(WireError::Io)
        .and_then(|mut file| {
            let mut out = BufWriter::new(&mut file);
            let taken = rep.store.take_snapshot(&mut out).map_err(store_error)?;
            out.flush()?;
            drop(out);
            file.seek(SeekFrom::Start(0))?;
            Ok((file, taken))
        });
    let (file, taken) = match copied {
        Ok(copied) => copied,
        Err(e) => {
            // Said to the peer, which then pulls the whole log instead.
            let refusal = Frame::Refused {
                reason: format!("no snapshot here: {e}"),
            };
            wire::write(tls, &refusal, None)?;
            tls.flush()?;
            return Err(e);
        }
    };
    wire::write(
        tls,
        &Frame::SnapshotBegin {
            base: taken.base.clone(),
            hlc_high: taken.hlc_high,
            trees: taken.trees.clone(),
            messages: taken.messages,
            blobs: taken.blobs,
            blob_bytes: taken.blob_bytes,
        },
        None,
    )?;
    let mut reader = BufReader::new(file);
    let (mut tree, mut batch) = (None, Vec::with_capacity(ENTRY_BATCH));
    while let Some(record) = read_record(&mut reader).map_err(store_error)? {
        match record {
            SnapshotRecord::Tree(name) => {
                send_entries(tls, &tree, &mut batch)?;
                tree = Some(name);
            }
            SnapshotRecord::Entry(key, value) => {
                encode_entry(&mut batch, &key, &value).map_err(store_error)?;
                if batch.len() >= ENTRY_BATCH {
                    send_entries(tls, &tree, &mut batch)?;
                }
            }
            SnapshotRecord::Blob(id, loc) => {
                send_entries(tls, &tree, &mut batch)?;
                let bytes = taken.blob(&id, &loc).map_err(store_error)?;
                let frame = Frame::SnapshotBlob {
                    refcount: loc.refcount,
                    len: bytes.len() as u64,
                };
                wire::write(tls, &frame, Some(&bytes))?;
            }
        }
    }
    send_entries(tls, &tree, &mut batch)?;
    wire::write(tls, &Frame::SnapshotEnd, None)?;
    tls.flush()?;
    tracing::info!(%peer, messages = taken.messages, blobs = taken.blobs, bytes = taken.blob_bytes,
        ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "sent a snapshot of this store to seed the peer; the log tail follows");
    Ok(taken
        .base
        .iter()
        .map(|(origin, p)| (origin.clone(), p.last))
        .collect())
}

impl Replication {
    /// Seeding a new or wiped node: while this node's store holds none of
    /// its own changes and a peer is named, waits (up to `limit`, longer
    /// while a snapshot is still arriving) until the peer's snapshot and
    /// the log after it (or, from a peer without snapshots, its whole log)
    /// are here. The peer may hold this node's earlier changes (the disk
    /// was wiped); the snapshot's vector, or those changes pulled back,
    /// move the sequence past them, so no new change reuses a number the
    /// peer has (it would ignore it). Call before anything writes local ops.
    pub fn seed(&self, limit: Duration) {
        let own = self.store.last_seq(&self.node).unwrap_or(0);
        let Some(peer) = self.peer() else { return };
        if own > 0 {
            return;
        }
        tracing::info!(peer = %peer.name, "this node's store is empty: seeding it from the peer before serving");
        let deadline = Instant::now() + limit;
        loop {
            let (done, applied, seeded) = self
                .status
                .lock()
                .map(|s| (s.caught_up_once, s.applied, s.seeded.clone()))
                .unwrap_or((false, 0, None));
            if done {
                match seeded {
                    Some(r) => tracing::info!(peer = %peer.name, tail_ops = applied,
                        "{}", r.describe()),
                    None => {
                        tracing::info!(peer = %peer.name, ops = applied, "seeded from the peer")
                    }
                }
                return;
            }
            if Instant::now() >= deadline && self.give_up_seeding() {
                tracing::error!(peer = %peer.name,
                    "could not seed from the peer in time; serving anyway (if this node's data was wiped, stop it and start it again once the peer is reachable)");
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// True when this process seeded the store from the peer's snapshot
    /// and the snapshot held this node's own earlier changes (its disk was
    /// replaced): then the log, not this node's copy of the directory, is
    /// what the pair agreed on (`mailbox::directory_sync`).
    pub fn seeded_over_own_history(&self) -> bool {
        let seeded = self
            .status
            .lock()
            .map(|s| s.seeded.is_some())
            .unwrap_or(false);
        seeded
            && self
                .store
                .log_base()
                .is_ok_and(|base| base.contains_key(&self.node))
    }

    /// Stops seeding unless a snapshot is arriving right now; a partly
    /// installed one is discarded. Returns whether it gave up.
    fn give_up_seeding(&self) -> bool {
        match self.status.lock() {
            Ok(s) if s.snapshot_running => return false,
            Ok(mut s) => s.seeding_given_up = true,
            Err(_) => {}
        }
        match self.store.discard_partial_snapshot() {
            Ok(true) => tracing::warn!("discarded a partly installed snapshot"),
            Ok(false) => {}
            Err(e) => tracing::error!(error = %e, "cannot discard a partly installed snapshot"),
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex, RwLock};

    use super::*;
    use crate::replication::pki::PairFiles;
    use crate::replication::status::{execute, LinkStatus, PairCommand};
    use crate::store::{encode_entry, Store};

    fn replication(dir: &Path) -> Replication {
        Replication {
            node: "node-b".into(),
            store: Arc::new(Store::open(&dir.join("store"), "node-b").unwrap()),
            files: PairFiles::new(dir),
            config_path: dir.join("appliance.toml"),
            peer: RwLock::new(Some(Peer {
                addr: "127.0.0.1:1".into(),
                name: "node-a".into(),
                fingerprint: String::new(),
            })),
            status: Mutex::new(LinkStatus::default()),
            alerts: Mutex::new(Vec::new()),
            observers: RwLock::new(Vec::new()),
        }
    }

    #[test]
    fn a_snapshot_is_asked_for_while_needed_and_never_after_a_refusal() {
        let dir = tempfile::tempdir().unwrap();
        let rep = replication(dir.path());
        assert!(wants_snapshot(&rep));
        assert!(!wants_snapshot(&rep), "one at a time");
        assert!(!rep.give_up_seeding(), "not while one is arriving");
        finished(&rep, &Err(WireError::Bad("link dropped".into())));
        assert!(wants_snapshot(&rep), "asked again after a failure");
        finished(&rep, &Ok(Received::NotOffered("older peer".into())));
        assert!(!wants_snapshot(&rep), "an older peer is pulled whole");
        // A store with history never asks.
        let other = tempfile::tempdir().unwrap();
        let rep = replication(other.path());
        rep.store
            .deliver("kim@x", "INBOX", b"Subject: x\r\n\r\nx\r\n")
            .unwrap();
        assert!(!wants_snapshot(&rep));
    }

    #[test]
    fn giving_up_discards_half_an_install_and_asks_no_more() {
        let dir = tempfile::tempdir().unwrap();
        let rep = replication(dir.path());
        {
            let mut install = rep.store.begin_snapshot_install("node-a").unwrap();
            let mut payload = Vec::new();
            encode_entry(&mut payload, b"kim@x", &[0u8; 16]).unwrap();
            install.entries("usage", &payload).unwrap();
        } // dropped: cut short
        assert!(rep.store.needs_snapshot().unwrap());
        // No peer answers: seeding gives up at once with no time allowed.
        rep.seed(Duration::ZERO);
        assert!(rep.status.lock().unwrap().seeding_given_up);
        assert!(
            !rep.store.discard_partial_snapshot().unwrap(),
            "discarded already"
        );
        assert_eq!(rep.store.usage("kim@x").unwrap().bytes, 0);
        assert!(!wants_snapshot(&rep));
    }

    #[test]
    fn pair_status_says_what_seeding_did() {
        let dir = tempfile::tempdir().unwrap();
        let rep = replication(dir.path());
        rep.status.lock().unwrap().seeded = Some(SeedReport {
            peer: "node-a".into(),
            messages: 3,
            blobs: 2,
            bytes: 2048,
            millis: 1500,
            at: 0,
        });
        let text = execute(&rep, &PairCommand::Status).unwrap();
        assert!(
            text.contains("seeded from node-a's snapshot: 3 message(s), 2 blob(s), 2048 byte(s) in 1.5 s, then its log tail (at 1970-01-01 00:00:00 UTC)"),
            "{text}"
        );
    }
}
