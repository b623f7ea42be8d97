//! Snapshots (`snapshot.rs`): a copy installed into an empty store gives
//! the same digest, the log tail after it converges, an install cut short
//! seeds again, and the log base moves `last_seq` and the next own
//! sequence number past everything the snapshot reflected.

use std::path::Path;

use super::snapshot::{read_record, SnapshotRecord};
use super::{encode_entry, Flag, Op, Store, StoreError};

fn raw(n: usize) -> Vec<u8> {
    format!("Subject: m{n}\r\nMessage-ID: <m{n}@x>\r\n\r\nbody {n}\r\n").into_bytes()
}

/// A store with a bit of everything: deliveries (one to two mailboxes),
/// flags, a move, a delete, a user folder renamed, a directory record
/// and a login; and two deliveries made by `b_life` (node-b before its
/// disk was wiped), which A holds.
fn history(a: &Store, b_life: &Store) -> Result<(), StoreError> {
    let m1 = a.deliver("kim@x", "INBOX", &raw(1))?;
    let both = a.deliver_many(&[("kim@x", "INBOX"), ("lee@x", "INBOX")], &raw(2))?;
    let m3 = a.deliver("kim@x", "INBOX", &raw(3))?;
    a.set_seen("kim@x", &m1, true)?;
    a.set_flag("lee@x", &both[1], Flag::Flagged, true)?;
    let folder = a.create_folder("kim@x", "Projects", None)?;
    a.move_message("kim@x", &m3, &folder)?;
    a.rename_folder("kim@x", &folder, "Work", None)?;
    a.expunge("kim@x", &both[0])?;
    a.record_directory("users", "kim@x", Some("{\"v\":1}"))?;
    a.record_login("kim@x", "127.0.0.1", 1_700_000_000)?;
    // node-b's own earlier changes, which A holds.
    b_life.deliver("lee@x", "INBOX", &raw(4))?;
    b_life.deliver_many(&[("kim@x", "INBOX"), ("lee@x", "Junk")], &raw(5))?;
    exchange(b_life, a)?;
    Ok(())
}

/// What the puller does: every op of `from` past what `to` has.
fn exchange(from: &Store, to: &Store) -> Result<usize, StoreError> {
    let mut applied = 0;
    for origin in from.origins()? {
        for op in from.ops_since(&origin, to.last_seq(&origin)?, usize::MAX)? {
            if let Op::Deliver { blob, .. } = &op.op {
                match from.blob(blob)? {
                    Some(bytes) => {
                        to.put_blob(&bytes)?;
                    }
                    None => {
                        to.apply_remote_deleted(&op)?;
                        continue;
                    }
                }
            }
            to.apply_remote(&op)?;
            applied += 1;
        }
    }
    Ok(applied)
}

/// Takes a snapshot of `from` and installs it into `to` the way the link
/// does (entries in batches, blobs with their refcounts), running
/// `meanwhile` on `from` after the copy and before the blobs are read;
/// `stop_after` entries, if set, ends the install without `finish`.
fn seed(
    from: &Store,
    to: &Store,
    meanwhile: impl FnOnce(&Store) -> Result<(), StoreError>,
    stop_after: Option<usize>,
) -> Result<bool, StoreError> {
    let mut file = Vec::new();
    let taken = from.take_snapshot(&mut file)?;
    meanwhile(from)?;
    let mut install = to.begin_snapshot_install(from.node())?;
    let mut r = &file[..];
    let (mut tree, mut entries) = (String::new(), 0);
    while let Some(record) = read_record(&mut r)? {
        match record {
            SnapshotRecord::Tree(name) => tree = name,
            SnapshotRecord::Entry(k, v) => {
                let mut payload = Vec::new();
                encode_entry(&mut payload, &k, &v)?;
                install.entries(&tree, &payload)?;
                entries += 1;
                if stop_after == Some(entries) {
                    return Ok(false); // dropped: a crash mid-install
                }
            }
            SnapshotRecord::Blob(id, loc) => {
                install.blobs(&[(taken.blob(&id, &loc)?, loc.refcount)])?;
            }
        }
    }
    assert_eq!(install.messages, taken.messages);
    install.finish(&taken.base, taken.hlc_high)?;
    Ok(true)
}

fn open(dir: &Path, node: &str) -> Result<Store, StoreError> {
    Store::open(dir, node)
}

#[test]
fn a_snapshot_installed_into_an_empty_store_has_the_same_digest() -> Result<(), StoreError> {
    let (da, db, dold) = (
        tempfile::tempdir()?,
        tempfile::tempdir()?,
        tempfile::tempdir()?,
    );
    let a = open(da.path(), "node-a")?;
    let b_life = open(dold.path(), "node-b")?;
    history(&a, &b_life)?;
    let b = open(db.path(), "node-b")?;
    assert!(b.needs_snapshot()?);
    assert!(seed(&a, &b, |_| Ok(()), None)?);
    assert_eq!(a.digest()?, b.digest()?);
    assert!(!b.needs_snapshot()?);
    // The base counts as applied: positions match A's, the log is empty.
    for origin in ["node-a", "node-b"] {
        assert_eq!(b.last_seq(origin)?, a.last_seq(origin)?, "{origin}");
        assert!(b.ops_since(origin, 0, 10)?.is_empty());
    }
    assert_eq!(b.origins()?, a.origins()?);
    // Mail reads back with its bytes, in the folder it was moved to.
    let page = b.list("kim@x", "INBOX", 0, 10)?;
    let first = page
        .messages
        .iter()
        .find(|m| m.subject == "m1")
        .expect("m1 on B");
    assert!(first.seen);
    assert_eq!(b.message("kim@x", &first.id)?.map(|m| m.raw), Some(raw(1)));
    assert_eq!(b.usage("kim@x")?, a.usage("kim@x")?);
    assert_eq!(
        b.unseen_count("kim@x", "INBOX")?,
        a.unseen_count("kim@x", "INBOX")?
    );
    assert_eq!(b.user_folders("kim@x")?, a.user_folders("kim@x")?);
    assert!(b.fsck(false)?.is_clean(), "{}", b.fsck(false)?);
    // B's next own change gets a number past its earlier life's (a
    // delivery to two mailboxes used two), also after a restart.
    let old_ids: Vec<_> = b_life.ops_since("node-b", 0, 100)?;
    let next = b.deliver("lee@x", "INBOX", &raw(6))?;
    drop(b);
    let b = open(db.path(), "node-b")?;
    let after_restart = b.deliver("lee@x", "INBOX", &raw(7))?;
    for op in &old_ids {
        for id in op.delivered_ids() {
            assert_ne!(id, next);
            assert_ne!(id, after_restart);
        }
    }
    assert_eq!(exchange(&b, &a)?, 2, "A takes both new changes");
    assert_eq!(a.digest()?, b.digest()?);
    Ok(())
}

#[test]
fn the_tail_after_the_snapshot_converges_even_when_it_deletes_its_mail() -> Result<(), StoreError> {
    let (da, db, dold) = (
        tempfile::tempdir()?,
        tempfile::tempdir()?,
        tempfile::tempdir()?,
    );
    let a = open(da.path(), "node-a")?;
    history(&a, &open(dold.path(), "node-b")?)?;
    let doomed = a.list("kim@x", "INBOX", 0, 10)?.messages[0].id.clone();
    let b = open(db.path(), "node-b")?;
    // After the copy, before its blobs are read: the message goes and its
    // blob leaves the index; the pinned segment still holds the bytes.
    seed(
        &a,
        &b,
        |a| {
            a.expunge("kim@x", &doomed)?;
            a.deliver("kim@x", "INBOX", &raw(9))?;
            Ok(())
        },
        None,
    )?;
    assert!(b.message("kim@x", &doomed)?.is_some(), "in the snapshot");
    assert_eq!(
        exchange(&a, &b)?,
        2,
        "the tail: the delete and the delivery"
    );
    assert_eq!(a.digest()?, b.digest()?);
    assert!(b.message("kim@x", &doomed)?.is_none());
    assert!(b.fsck(false)?.is_clean(), "{}", b.fsck(false)?);
    Ok(())
}

#[test]
fn an_install_cut_short_seeds_again_or_is_discarded() -> Result<(), StoreError> {
    let (da, db, dold) = (
        tempfile::tempdir()?,
        tempfile::tempdir()?,
        tempfile::tempdir()?,
    );
    let a = open(da.path(), "node-a")?;
    history(&a, &open(dold.path(), "node-b")?)?;
    let b = open(db.path(), "node-b")?;
    assert!(!seed(&a, &b, |_| Ok(()), Some(5))?);
    assert!(
        matches!(
            b.take_snapshot(&mut Vec::new()),
            Err(StoreError::InvalidOp(_))
        ),
        "half an install is never sent on"
    );
    drop(b);
    // The next start sees the marker and seeds again, from scratch.
    let b = open(db.path(), "node-b")?;
    assert!(b.needs_snapshot()?);
    assert!(seed(&a, &b, |_| Ok(()), None)?);
    assert_eq!(a.digest()?, b.digest()?);
    assert!(b.fsck(false)?.is_clean(), "{}", b.fsck(false)?);
    assert!(!b.discard_partial_snapshot()?, "nothing to discard");

    // Cut short again on a fresh store; given up: it becomes empty.
    let dc = tempfile::tempdir()?;
    let c = open(dc.path(), "node-c")?;
    let empty = c.digest()?;
    assert!(!seed(&a, &c, |_| Ok(()), Some(40))?);
    assert_ne!(c.digest()?, empty);
    assert!(c.discard_partial_snapshot()?);
    assert_eq!(c.digest()?, empty);
    assert!(c.origins()?.is_empty());
    assert!(c.needs_snapshot()?);
    Ok(())
}

#[test]
fn only_a_store_without_history_takes_a_snapshot() -> Result<(), StoreError> {
    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let a = open(da.path(), "node-a")?;
    let b = open(db.path(), "node-b")?;
    // An empty peer's snapshot seeds an empty store: nothing, but seeded.
    assert!(seed(&a, &b, |_| Ok(()), None)?);
    assert!(!b.needs_snapshot()?);
    assert!(b.log_base()?.is_empty());
    a.deliver("kim@x", "INBOX", &raw(1))?;
    assert!(!a.needs_snapshot()?);
    assert!(matches!(
        a.begin_snapshot_install("node-b"),
        Err(StoreError::InvalidOp(_))
    ));
    // The plain catch-up still works on the seeded store.
    assert_eq!(exchange(&a, &b)?, 1);
    assert_eq!(a.digest()?, b.digest()?);
    Ok(())
}

#[test]
fn entry_payloads_from_the_peer_are_checked() {
    let mut payload = Vec::new();
    encode_entry(&mut payload, b"key", b"value").unwrap();
    assert_eq!(
        super::decode_entries(&payload).unwrap(),
        vec![(&b"key"[..], &b"value"[..])]
    );
    for cut in 1..payload.len() {
        assert!(super::decode_entries(&payload[..cut]).is_err(), "{cut}");
    }
    assert!(super::decode_entries(&u32::MAX.to_be_bytes()).is_err());
}

#[test]
fn a_seeded_store_searches_indexes_and_rebuilds_without_the_old_ops() -> Result<(), StoreError> {
    use super::SearchQuery;
    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let a = open(da.path(), "node-a")?;
    let mail = |subject: &str| -> Vec<u8> {
        format!("Subject: {subject}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n본문\r\n")
            .into_bytes()
    };
    let indexed = a.deliver("kim@x", "INBOX", &mail("indexed 장학금신청"))?;
    let students: Vec<String> = (0..60).map(|n| format!("s{n}@x")).collect();
    let mut targets: Vec<(&str, &str)> = students.iter().map(|s| (s.as_str(), "INBOX")).collect();
    targets.push(("kim@x", "INBOX"));
    let announcement = a.deliver_many(&targets, &mail("announcement 개교기념일"))?;
    a.index_pending(usize::MAX)?;
    // Still waiting for A's indexer when the snapshot is taken.
    let queued = a.deliver("kim@x", "INBOX", &mail("queued 기숙사신청"))?;
    assert_eq!(a.search_backlog(), 1);
    let b = open(db.path(), "node-b")?;
    assert!(seed(&a, &b, |_| Ok(()), None)?);
    let found = |store: &Store, words: &str| -> Result<Vec<super::MessageId>, StoreError> {
        let q = SearchQuery {
            anywhere: words.into(),
            ..SearchQuery::default()
        };
        Ok(store
            .search("kim@x", &q, 0, 10)?
            .messages
            .into_iter()
            .map(|m| m.id)
            .collect())
    };
    let expect = |store: &Store| -> Result<(), StoreError> {
        assert_eq!(found(store, "학금신")?, vec![indexed.clone()]);
        assert_eq!(found(store, "개교기념")?, vec![announcement[60].clone()]);
        assert_eq!(found(store, "숙사신")?, vec![queued.clone()]);
        assert!(store.fsck(false)?.is_clean(), "{}", store.fsck(false)?);
        Ok(())
    };
    // B has none of these deliveries' ops, only their rows.
    assert!(b.ops_since("node-a", 0, 10)?.is_empty());
    expect(&b)?;
    assert_eq!(b.search_backlog(), 1);
    assert_eq!(b.index_pending(10)?, 1, "the queued one is indexed on B");
    assert_eq!(b.search_backlog(), 0);
    expect(&b)?;
    // A rebuild from the rows alone (what fsck --repair runs).
    b.trees.search_docs.clear()?;
    assert!(!b.fsck(false)?.is_clean());
    assert!(!b.fsck(true)?.repaired.is_empty());
    expect(&b)?;
    Ok(())
}
