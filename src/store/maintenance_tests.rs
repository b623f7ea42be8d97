//! Tests of deletion, moves, quotas' usage counts, compaction, placement
//! over several data directories, rebalance, drain and fsck.

use std::path::{Path, PathBuf};

use super::*;

fn msg(n: usize, pad: usize) -> Vec<u8> {
    format!(
        "From: Kim <kim@campus.ac.kr>\r\nSubject: note {n}\r\n\r\nbody {n} {}\r\n",
        "x".repeat(pad)
    )
    .into_bytes()
}

fn specs(root: &Path, weights: &[u32]) -> Vec<DataDirSpec> {
    weights
        .iter()
        .enumerate()
        .map(|(i, w)| DataDirSpec {
            path: root.join(format!("disk{i}")),
            weight: *w,
        })
        .collect()
}

fn open_dirs(root: &Path, dirs: &[DataDirSpec]) -> Store {
    match Store::open_with(&root.join("meta"), dirs, "node-a") {
        Ok(s) => s,
        Err(e) => panic!("open: {e}"),
    }
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("blobs"))
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn assert_clean(store: &Store) -> Result<(), StoreError> {
    let report = store.fsck(false)?;
    assert!(report.is_clean(), "fsck: {report}");
    Ok(())
}

#[test]
fn expunge_releases_the_blob_and_counts() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path(), "node-a")?;
    let raw = msg(1, 100);
    let a = store.deliver("kim@x", "INBOX", &raw)?;
    let b = store.deliver("lee@x", "INBOX", &raw)?;
    assert_eq!(
        store.usage("kim@x")?,
        Usage {
            bytes: raw.len() as u64,
            messages: 1
        }
    );
    store.expunge("kim@x", &a)?;
    assert!(matches!(
        store.expunge("kim@x", &b),
        Err(StoreError::NoSuchMessage)
    ));
    let loc = store.blobs.location(&BlobId::of(&raw))?;
    assert_eq!(loc.map(|l| l.refcount), Some(1));
    store.expunge("lee@x", &b)?;
    assert_eq!(store.blobs.location(&BlobId::of(&raw))?, None);
    assert_eq!(
        store.blobs.segment_info(1)?.map(|s| s.garbage),
        Some(44 + raw.len() as u64)
    );
    assert_eq!(store.usage("kim@x")?, Usage::default());
    assert_eq!(store.list("lee@x", "INBOX", 0, 10)?.total, 0);
    assert_eq!(store.unseen_count("lee@x", "INBOX")?, 0);
    assert_eq!(store.message("lee@x", &b)?, None);
    assert_clean(&store)
}

#[test]
fn a_deleted_message_never_comes_back_and_moves_are_last_writer_wins() -> Result<(), StoreError> {
    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let a = Store::open(da.path(), "node-a")?;
    let b = Store::open(db.path(), "node-b")?;
    let m = a.deliver("kim@x", "INBOX", &msg(1, 10))?;
    a.move_message("kim@x", &m, "Trash")?;
    a.expunge("kim@x", &m)?;
    // B receives the ops with the delete first: the delivery stays dead.
    let ops = a.ops_since("node-a", 0, 10)?;
    b.put_blob(&msg(1, 10))?;
    b.apply_remote(&ops[2])?;
    b.apply_remote(&ops[0])?;
    b.apply_remote(&ops[1])?;
    assert_eq!(b.list("kim@x", "INBOX", 0, 10)?.total, 0);
    assert_eq!(b.list("kim@x", "Trash", 0, 10)?.total, 0);
    assert_eq!(b.usage("kim@x")?, Usage::default());

    // Concurrent moves: both sides end in the folder of the later op.
    let m2 = a.deliver("kim@x", "INBOX", &msg(2, 10))?;
    for op in a.ops_since("node-a", 3, 10)? {
        b.put_blob(&msg(2, 10))?;
        b.apply_remote(&op)?;
    }
    a.move_message("kim@x", &m2, "Junk")?;
    b.move_message("kim@x", &m2, "Trash")?;
    let from_a = a.ops_since("node-a", 4, 10)?;
    let from_b = b.ops_since("node-b", 0, 10)?;
    for op in &from_b {
        a.apply_remote(op)?;
    }
    for op in &from_a {
        b.apply_remote(op)?;
    }
    let winner = if (from_a[0].ts, &from_a[0].id) > (from_b[0].ts, &from_b[0].id) {
        "Junk"
    } else {
        "Trash"
    };
    for s in [&a, &b] {
        assert_eq!(s.list("kim@x", winner, 0, 10)?.total, 1);
        assert_eq!(s.unseen_count("kim@x", winner)?, 1);
        assert_eq!(s.list("kim@x", "INBOX", 0, 10)?.total, 0);
        assert_clean(s)?;
    }
    Ok(())
}

#[test]
fn compaction_gives_space_back_and_keeps_live_mail() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let mut kept = Vec::new();
    {
        let store = Store::open(dir.path(), "node-a")?;
        store.blobs.set_segment_limit(1000);
        for n in 0..30 {
            let id = store.deliver("kim@x", "INBOX", &msg(n, 200))?;
            if n % 5 == 0 {
                kept.push((id, n));
            } else {
                store.expunge("kim@x", &id)?;
            }
        }
        let before = segment_files(dir.path()).len();
        let report = store.compact(25)?;
        assert!(report.segments > 0, "{report:?}");
        assert!(segment_files(dir.path()).len() < before);
        for (id, n) in &kept {
            assert_eq!(
                store.message("kim@x", id)?.map(|m| m.raw),
                Some(msg(*n, 200))
            );
        }
        assert_clean(&store)?;
    }
    let store = Store::open(dir.path(), "node-a")?;
    for (id, n) in &kept {
        assert_eq!(
            store.message("kim@x", id)?.map(|m| m.raw),
            Some(msg(*n, 200))
        );
    }
    assert_clean(&store)
}

#[test]
fn four_directories_share_bytes_and_operations_by_weight() -> Result<(), StoreError> {
    for weights in [[1u32, 1, 1, 1], [1, 2, 3, 4]] {
        let root = tempfile::tempdir()?;
        let dirs = specs(root.path(), &weights);
        let store = open_dirs(root.path(), &dirs);
        let n = 2400;
        let mut ids = Vec::new();
        for i in 0..n {
            ids.push(store.deliver("kim@x", "INBOX", &msg(i, 500 + (i * 37) % 400))?);
        }
        for id in &ids {
            store.message("kim@x", id)?;
        }
        let stats = store.stats()?;
        let total_w: u32 = weights.iter().sum();
        let bytes: u64 = stats.disks.iter().map(|d| d.bytes).sum();
        let writes: u64 = stats.disks.iter().map(|d| d.writes).sum();
        let reads: u64 = stats.disks.iter().map(|d| d.reads).sum();
        for (d, w) in stats.disks.iter().zip(weights) {
            let share = f64::from(w) / f64::from(total_w);
            for (what, got, all) in [
                ("bytes", d.bytes, bytes),
                ("writes", d.writes, writes),
                ("reads", d.reads, reads),
            ] {
                let want = all as f64 * share;
                assert!(
                    (got as f64 - want).abs() <= want * 0.10,
                    "weights {weights:?}, disk {}: {what} {got}, share {want}",
                    d.disk
                );
            }
        }
        assert_clean(&store)?;
    }
    Ok(())
}

#[test]
fn adding_a_directory_and_rebalancing_moves_only_its_share() -> Result<(), StoreError> {
    let root = tempfile::tempdir()?;
    let mut dirs = specs(root.path(), &[1, 1, 1]);
    let n = 1200;
    let mut ids = Vec::new();
    {
        let store = open_dirs(root.path(), &dirs);
        for i in 0..n {
            ids.push(store.deliver("kim@x", "INBOX", &msg(i, 300))?);
        }
    }
    dirs.push(DataDirSpec {
        path: root.path().join("disk-new"),
        weight: 1,
    });
    let store = open_dirs(root.path(), &dirs);
    store.blobs.set_segment_limit(64 * 1024);
    let report = store.rebalance()?;
    let want = n as f64 / 4.0;
    assert!(
        (report.moved_blobs as f64 - want).abs() <= want * 0.15,
        "moved {}",
        report.moved_blobs
    );
    let stats = store.stats()?;
    assert_eq!(stats.disks[3].blobs, report.moved_blobs as u64);
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            store.message("kim@x", id)?.map(|m| m.raw),
            Some(msg(i, 300))
        );
    }
    // Moving again changes nothing.
    assert_eq!(store.rebalance()?.moved_blobs, 0);
    assert_clean(&store)
}

#[test]
fn a_drained_directory_empties_and_can_then_be_removed() -> Result<(), StoreError> {
    let root = tempfile::tempdir()?;
    let dirs = specs(root.path(), &[1, 1]);
    let mut ids = Vec::new();
    {
        let store = open_dirs(root.path(), &dirs);
        for i in 0..200 {
            ids.push(store.deliver("kim@x", "INBOX", &msg(i, 100))?);
        }
        // Removing a directory that holds mail is refused.
        drop(store);
        let err = Store::open_with(&root.path().join("meta"), &dirs[..1], "node-a");
        assert!(matches!(err, Err(StoreError::InvalidName(m)) if m.contains("store drain")));
        let store = open_dirs(root.path(), &dirs);
        let report = store.drain(&dirs[1].path)?;
        assert_eq!(report.left_on_drained, Some(0), "{report:?}");
        assert!(segment_files(&dirs[1].path).is_empty());
        // New mail does not go to a draining directory.
        store.deliver("kim@x", "INBOX", &msg(999, 100))?;
        assert!(segment_files(&dirs[1].path).is_empty());
        assert!(matches!(
            store.drain(&dirs[0].path),
            Err(StoreError::InvalidName(m)) if m.contains("last data directory")
        ));
    }
    let store = open_dirs(root.path(), &dirs[..1]);
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            store.message("kim@x", id)?.map(|m| m.raw),
            Some(msg(i, 100))
        );
    }
    assert_clean(&store)
}

#[test]
fn fsck_finds_damage_and_repairs_what_it_can() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path(), "node-a")?;
    store.blobs.set_segment_limit(400);
    let a = store.deliver("kim@x", "INBOX", &msg(1, 300))?;
    store.deliver("kim@x", "INBOX", &msg(2, 300))?;
    assert_clean(&store)?;

    // A wrong reference count and wrong folder counts: repairable.
    let id = BlobId::of(&msg(2, 300));
    let mut loc = store
        .blobs
        .location(&id)?
        .ok_or(StoreError::NoSuchMessage)?;
    loc.refcount = 7;
    store.blobs.index_tree().insert(id.0, &loc.encode())?;
    store.trees.folder_stats.insert(
        state::stats_key("kim@x", "INBOX"),
        &state::encode_stats(9, 9),
    )?;
    let report = store.fsck(false)?;
    assert_eq!(report.problems.len(), 2, "{report}");
    assert!(report
        .to_string()
        .contains("counted 7 reference(s); 1 message(s) use it"));
    let repaired = store.fsck(true)?;
    assert_eq!(repaired.repaired.len(), 2, "{repaired}");
    assert_clean(&store)?;
    assert_eq!(store.list("kim@x", "INBOX", 0, 10)?.total, 2);

    // A flipped byte in a sealed segment: found, named, not "repaired".
    let first = store.blobs.segment_file(1)?;
    let mut bytes = std::fs::read(&first)?;
    let at = bytes.len() - 5;
    bytes[at] ^= 1;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&first, std::fs::Permissions::from_mode(0o600))?;
    std::fs::write(&first, &bytes)?;
    drop(store);
    let store = Store::open(dir.path(), "node-a")?;
    let report = store.fsck(true)?;
    assert!(!report.is_clean());
    assert!(report.to_string().contains("hash mismatch"), "{report}");
    assert!(matches!(
        store.message("kim@x", &a),
        Err(StoreError::Corrupt(_))
    ));
    Ok(())
}

#[test]
fn concurrent_appends_share_syncs_and_survive_rotation_and_reopen() -> Result<(), StoreError> {
    // Small segments, so they rotate many times while eight threads append
    // at once: a segment is sealed only after the appends written to it
    // were indexed, and its committed length covers every one of them.
    let dir = tempfile::tempdir()?;
    let store = std::sync::Arc::new(Store::open(dir.path(), "node-a")?);
    store.blobs.set_segment_limit(4 * 1024);
    let workers: Vec<_> = (0..8)
        .map(|t| {
            let store = std::sync::Arc::clone(&store);
            std::thread::spawn(
                move || -> Result<Vec<(String, MessageId, Vec<u8>)>, StoreError> {
                    let mut out = Vec::new();
                    for n in 0..40 {
                        let user = format!("u{t}@x");
                        let raw = msg(t * 1000 + n, 200 + 37 * (n % 5));
                        let id = store.deliver(&user, "INBOX", &raw)?;
                        out.push((user, id, raw));
                    }
                    Ok(out)
                },
            )
        })
        .collect();
    let mut delivered = Vec::new();
    for w in workers {
        delivered.extend(w.join().map_err(|_| StoreError::Poisoned)??);
    }
    assert_eq!(delivered.len(), 320);
    let segments = store.blobs.all_segments()?;
    assert!(segments.len() > 10, "rotated: {} segments", segments.len());
    let check = |store: &Store| -> Result<(), StoreError> {
        for (user, id, raw) in &delivered {
            let stored = store.message(user, id)?.ok_or(StoreError::NoSuchMessage)?;
            assert_eq!(&stored.raw, raw);
        }
        assert_clean(store)
    };
    check(&store)?;
    drop(store);
    // Every committed length survives a reopen, which cuts only bytes
    // past it.
    let store = Store::open(dir.path(), "node-a")?;
    check(&store)?;
    Ok(())
}
