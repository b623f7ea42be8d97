//! Store unit tests: delivery, listing, flags, single-instance storage,
//! crash tolerance, and the op log's idempotence and last-writer-wins.

use std::io::Write;
use std::path::Path;

use super::*;

fn msg(n: usize) -> Vec<u8> {
    format!(
        "From: Kim <kim@campus.ac.kr>\r\nTo: lee@campus.ac.kr\r\nSubject: note {n}\r\n\
         Date: Mon, 3 Mar 2025 09:00:{:02} +0900\r\n\r\nbody {n}\r\n",
        n % 60
    )
    .into_bytes()
}

fn open(dir: &Path, node: &str) -> Store {
    match Store::open(dir, node) {
        Ok(s) => s,
        Err(e) => panic!("open: {e}"),
    }
}

#[test]
fn store_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Store>();
}

#[test]
fn deliver_list_pages_newest_first() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path(), "node-a");
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(store.deliver("lee@campus.ac.kr", "INBOX", &msg(n))?);
    }
    let page = store.list("lee@campus.ac.kr", "INBOX", 0, 2)?;
    assert_eq!(page.total, 5);
    assert_eq!(
        page.messages
            .iter()
            .map(|m| m.id.clone())
            .collect::<Vec<_>>(),
        vec![ids[4].clone(), ids[3].clone()]
    );
    let first = &page.messages[0];
    assert_eq!(first.subject, "note 4");
    assert_eq!(first.from, "Kim <kim@campus.ac.kr>");
    assert_eq!(first.size, msg(4).len() as u64);
    assert!(!first.seen);
    assert_eq!(first.date, 1_740_960_004); // 2025-03-03T00:00:04Z
    let page = store.list("lee@campus.ac.kr", "INBOX", 4, 10)?;
    assert_eq!(page.messages.len(), 1);
    assert_eq!(page.messages[0].id, ids[0]);
    assert!(store
        .list("lee@campus.ac.kr", "INBOX", 9, 10)?
        .messages
        .is_empty());
    let other = store.list("lee@campus.ac.kr", "Sent", 0, 10)?;
    assert_eq!((other.total, other.messages.len()), (0, 0));
    // Ids are URL-safe and parse back.
    for id in &ids {
        assert_eq!(id.to_string().parse::<MessageId>()?, *id);
    }
    Ok(())
}

#[test]
fn concurrent_deliveries_get_gap_free_sequence() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let store = std::sync::Arc::new(open(dir.path(), "node-a"));
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let store = std::sync::Arc::clone(&store);
            std::thread::spawn(move || -> Result<(), StoreError> {
                for n in 0..10 {
                    // Threads 0 and 1 send identical bytes: stored once.
                    store.deliver(&format!("u{t}@x"), "INBOX", &msg(n + 100 * (t / 2)))?;
                }
                Ok(())
            })
        })
        .collect();
    for w in workers {
        w.join().map_err(|_| StoreError::Poisoned)??;
    }
    let seqs: Vec<u64> = store
        .ops_since("node-a", 0, 100)?
        .iter()
        .map(|o| o.id.seq)
        .collect();
    assert_eq!(seqs, (1..=40).collect::<Vec<_>>());
    assert_eq!(store.blobs.index_tree().len(), 20);
    for t in 0..4 {
        assert_eq!(store.list(&format!("u{t}@x"), "INBOX", 0, 100)?.total, 10);
    }
    assert!(store.ops_since("node-a", u64::MAX, 10)?.is_empty());
    Ok(())
}

#[test]
fn date_falls_back_to_received_at() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path(), "node-a");
    store.deliver("u@x", "INBOX", b"Subject: no date\r\n\r\nhi\r\n")?;
    let m = &store.list("u@x", "INBOX", 0, 1)?.messages[0];
    assert_eq!(m.date, m.received_at);
    Ok(())
}

#[test]
fn messages_are_isolated_between_users() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path(), "node-a");
    let id = store.deliver("kim@x", "INBOX", &msg(1))?;
    let got = store
        .message("kim@x", &id)?
        .ok_or(StoreError::NoSuchMessage)?;
    assert_eq!(got.raw, msg(1));
    assert_eq!(got.summary.id, id);
    assert!(store.message("lee@x", &id)?.is_none());
    assert!(matches!(
        store.set_seen("lee@x", &id, true),
        Err(StoreError::NoSuchMessage)
    ));
    assert!(store.list("lee@x", "INBOX", 0, 10)?.messages.is_empty());
    let unknown: MessageId = "node-a.ff".parse()?;
    assert!(store.message("kim@x", &unknown)?.is_none());
    Ok(())
}

#[test]
fn set_seen_and_unseen_count() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path(), "node-a");
    let a = store.deliver("kim@x", "INBOX", &msg(1))?;
    let _b = store.deliver("kim@x", "INBOX", &msg(2))?;
    assert_eq!(store.unseen_count("kim@x", "INBOX")?, 2);
    store.set_seen("kim@x", &a, true)?;
    store.set_seen("kim@x", &a, true)?; // no-op, logs nothing
    assert_eq!(store.unseen_count("kim@x", "INBOX")?, 1);
    assert!(store.message("kim@x", &a)?.is_some_and(|m| m.summary.seen));
    assert_eq!(store.ops_since("node-a", 0, 100)?.len(), 3);
    store.set_seen("kim@x", &a, false)?;
    assert_eq!(store.unseen_count("kim@x", "INBOX")?, 2);
    assert_eq!(store.unseen_count("kim@x", "Sent")?, 0);
    Ok(())
}

#[test]
fn identical_bytes_are_stored_once() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path(), "node-a");
    let raw = msg(7);
    let a = store.deliver("kim@x", "INBOX", &raw)?;
    let b = store.deliver("lee@x", "INBOX", &raw)?;
    assert_ne!(a, b);
    let loc = store
        .blobs
        .location(&BlobId::of(&raw))?
        .ok_or(StoreError::NoSuchMessage)?;
    assert_eq!(loc.refcount, 2);
    assert_eq!(store.blobs.index_tree().len(), 1);
    // One record on disk: header + bytes.
    assert_eq!(
        store.blobs.segment_info(1)?.map(|s| s.len),
        Some(44 + raw.len() as u64)
    );
    assert_eq!(
        std::fs::metadata(store.blobs.segment_file(1)?)?.len(),
        44 + raw.len() as u64
    );
    assert_eq!(store.message("lee@x", &b)?.map(|m| m.raw), Some(raw));
    Ok(())
}

#[test]
fn reopen_keeps_everything() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let (a, b) = {
        let store = open(dir.path(), "node-a");
        let a = store.deliver("kim@x", "INBOX", &msg(1))?;
        let b = store.deliver("kim@x", "INBOX", &msg(2))?;
        store.set_seen("kim@x", &a, true)?;
        (a, b)
    };
    let store = open(dir.path(), "node-a");
    let page = store.list("kim@x", "INBOX", 0, 10)?;
    assert_eq!(page.total, 2);
    assert_eq!(page.messages[0].id, b);
    assert!(page.messages[1].seen);
    assert_eq!(store.unseen_count("kim@x", "INBOX")?, 1);
    assert_eq!(store.message("kim@x", &a)?.map(|m| m.raw), Some(msg(1)));
    // Sequence numbers and clock continue: new ids are new and sort first.
    let c = store.deliver("kim@x", "INBOX", &msg(3))?;
    assert!(c != a && c != b);
    assert_eq!(store.list("kim@x", "INBOX", 0, 1)?.messages[0].id, c);
    assert_eq!(
        store
            .ops_since("node-a", 0, 100)?
            .iter()
            .map(|o| o.id.seq)
            .collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    Ok(())
}

#[test]
fn torn_trailing_record_is_tolerated() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let a = {
        let store = open(dir.path(), "node-a");
        store.deliver("kim@x", "INBOX", &msg(1))?
    };
    let seg = dir.path().join("blobs").join("segment-00000001.seg");
    let good_len = std::fs::metadata(&seg)?.len();
    // A crash mid-append: a record header and half its bytes.
    let mut f = std::fs::OpenOptions::new().append(true).open(&seg)?;
    f.write_all(b"CMB1\0\0\0\0\0\0\x10\0partial")?;
    drop(f);
    let store = open(dir.path(), "node-a");
    assert_eq!(std::fs::metadata(&seg)?.len(), good_len);
    assert_eq!(store.message("kim@x", &a)?.map(|m| m.raw), Some(msg(1)));
    let b = store.deliver("kim@x", "INBOX", &msg(2))?;
    drop(store);
    let store = open(dir.path(), "node-a");
    assert_eq!(store.message("kim@x", &b)?.map(|m| m.raw), Some(msg(2)));
    assert_eq!(store.message("kim@x", &a)?.map(|m| m.raw), Some(msg(1)));
    Ok(())
}

#[test]
fn segments_rotate_past_the_limit() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let mut ids = Vec::new();
    {
        let store = open(dir.path(), "node-a");
        store.blobs.set_segment_limit(300);
        for n in 0..6 {
            ids.push(store.deliver("kim@x", "INBOX", &msg(n))?);
        }
        assert!(store.blobs.segment_info(3)?.is_some_and(|s| s.len > 0));
        for (n, id) in ids.iter().enumerate() {
            assert_eq!(store.message("kim@x", id)?.map(|m| m.raw), Some(msg(n)));
        }
    }
    let store = open(dir.path(), "node-a");
    for (n, id) in ids.iter().enumerate() {
        assert_eq!(store.message("kim@x", id)?.map(|m| m.raw), Some(msg(n)));
    }
    Ok(())
}

#[test]
fn corrupt_segment_bytes_are_detected() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path(), "node-a");
    let a = store.deliver("kim@x", "INBOX", &msg(1))?;
    let seg = dir.path().join("blobs").join("segment-00000001.seg");
    let mut bytes = std::fs::read(&seg)?;
    let last = bytes.len() - 3;
    bytes[last] ^= 0x20;
    std::fs::write(&seg, bytes)?;
    assert!(matches!(
        store.message("kim@x", &a),
        Err(StoreError::Corrupt(_))
    ));
    Ok(())
}

/// Replays node A's log on node B (blobs first), as replication will.
fn replicate(from: &Store, to: &Store) -> Result<usize, StoreError> {
    let mut applied = 0;
    for op in from.ops_since(from.node(), 0, usize::MAX)? {
        if let Op::Deliver { blob, .. } = &op.op {
            let raw = from.blobs.get(blob)?.ok_or(StoreError::NoSuchMessage)?;
            to.put_blob(&raw)?;
        }
        applied += usize::from(to.apply_remote(&op)?);
    }
    Ok(applied)
}

#[test]
fn applying_ops_is_idempotent() -> Result<(), StoreError> {
    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let a = open(da.path(), "node-a");
    let b = open(db.path(), "node-b");
    let m1 = a.deliver("kim@x", "INBOX", &msg(1))?;
    a.deliver("kim@x", "INBOX", &msg(2))?;
    a.set_seen("kim@x", &m1, true)?;
    assert_eq!(replicate(&a, &b)?, 3);
    let before = b.list("kim@x", "INBOX", 0, 10)?;
    assert_eq!(replicate(&a, &b)?, 0);
    // Applying even bypassing the log check changes nothing either.
    assert_eq!(replicate(&a, &a)?, 0);
    assert_eq!(b.list("kim@x", "INBOX", 0, 10)?, before);
    assert_eq!(before, a.list("kim@x", "INBOX", 0, 10)?);
    assert_eq!(b.unseen_count("kim@x", "INBOX")?, 1);
    let loc = b
        .blobs
        .location(&BlobId::of(&msg(1)))?
        .ok_or(StoreError::NoSuchMessage)?;
    assert_eq!(loc.refcount, 1);
    assert_eq!(b.message("kim@x", &m1)?.map(|m| m.raw), Some(msg(1)));
    // B's own ops get B's origin and never collide with A's.
    let m3 = b.deliver("kim@x", "INBOX", &msg(3))?;
    assert!(m3.to_string().starts_with("node-b."));
    assert_eq!(b.ops_since("node-a", 1, 10)?.len(), 2);
    Ok(())
}

#[test]
fn remote_deliver_needs_its_blob() -> Result<(), StoreError> {
    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let a = open(da.path(), "node-a");
    let b = open(db.path(), "node-b");
    a.deliver("kim@x", "INBOX", &msg(1))?;
    let ops = a.ops_since("node-a", 0, 10)?;
    assert!(matches!(
        b.apply_remote(&ops[0]),
        Err(StoreError::MissingBlob(_))
    ));
    assert_eq!(b.list("kim@x", "INBOX", 0, 10)?.total, 0);
    // Message ids are derived from the op id, so a forged op can only
    // be malformed: no targets, or sequence numbers past the end.
    let mut empty = ops[0].clone();
    if let Op::Deliver { targets, .. } = &mut empty.op {
        targets.clear();
    }
    let mut overflowing = ops[0].clone();
    overflowing.id.seq = u64::MAX;
    for forged in [empty, overflowing] {
        assert!(matches!(
            b.apply_remote(&forged),
            Err(StoreError::InvalidOp(_))
        ));
    }
    Ok(())
}

fn set_seen_op(origin: &str, seq: u64, ms: u64, message: &MessageId, seen: bool) -> ReplicationOp {
    ReplicationOp {
        id: OpId {
            origin: origin.into(),
            seq,
        },
        ts: HlcTimestamp { ms, logical: 0 },
        op: Op::SetSeen {
            message: message.clone(),
            seen,
        },
    }
}

#[test]
fn seen_flag_is_last_writer_wins() -> Result<(), StoreError> {
    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let a = open(da.path(), "node-a");
    let b = open(db.path(), "node-b");
    let m = a.deliver("kim@x", "INBOX", &msg(1))?;
    replicate(&a, &b)?;
    let base = a.ops_since("node-a", 0, 1)?[0].ts.ms;
    let newer = set_seen_op("node-c", 1, base + 10_000, &m, true);
    let older = set_seen_op("node-d", 1, base + 5_000, &m, false);
    // A sees newer then older; B sees older then newer: both end seen.
    a.apply_remote(&newer)?;
    assert!(a.apply_remote(&older)?); // logged, but does not override
    b.apply_remote(&older)?;
    b.apply_remote(&newer)?;
    for s in [&a, &b] {
        let page = s.list("kim@x", "INBOX", 0, 1)?;
        assert!(page.messages[0].seen);
        assert_eq!(s.unseen_count("kim@x", "INBOX")?, 0);
    }
    // A flag op that arrives before its message takes effect on delivery.
    let c_dir = tempfile::tempdir()?;
    let c = open(c_dir.path(), "node-c2");
    c.apply_remote(&newer)?;
    replicate(&a, &c)?;
    assert!(c.list("kim@x", "INBOX", 0, 1)?.messages[0].seen);
    assert_eq!(c.unseen_count("kim@x", "INBOX")?, 0);
    // A local change after observing the newer op orders after it.
    a.set_seen("kim@x", &m, false)?;
    assert_eq!(a.unseen_count("kim@x", "INBOX")?, 1);
    Ok(())
}

#[test]
fn bad_names_are_refused() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    assert!(matches!(
        Store::open(dir.path(), "Node A"),
        Err(StoreError::InvalidName(_))
    ));
    let store = open(dir.path(), "node-a");
    assert!(matches!(
        store.deliver("", "INBOX", b"x"),
        Err(StoreError::InvalidName(_))
    ));
    assert!(matches!(
        store.deliver("a\0b", "INBOX", b"x"),
        Err(StoreError::InvalidName(_))
    ));
    assert!(matches!(
        store.list("kim@x", "", 0, 1),
        Err(StoreError::InvalidName(_))
    ));
    Ok(())
}
