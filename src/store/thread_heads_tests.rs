//! Tests of the list grouped by conversation (`thread_heads.rs`): its
//! order, counts and unread marks, its upkeep through moves, deletions,
//! folder deletion and replication, and fsck's check and repair.

use std::path::Path;

use super::folders::{INBOX, TRASH};
use super::*;

fn open(dir: &Path, node: &str) -> Store {
    match Store::open(dir, node) {
        Ok(s) => s,
        Err(e) => panic!("open: {e}"),
    }
}

fn clean(s: &Store) -> Result<(), StoreError> {
    let report = s.fsck(false)?;
    assert!(report.is_clean(), "fsck: {report}");
    Ok(())
}

fn mail(id: &str, refs: &str, subject: &str) -> Vec<u8> {
    let refs = if refs.is_empty() {
        String::new()
    } else {
        format!("References: {refs}\r\n")
    };
    format!("From: a@x\r\nMessage-ID: {id}\r\n{refs}Subject: {subject}\r\n\r\nbody\r\n")
        .into_bytes()
}

/// (newest id, in-folder count, unread) of every row, newest first.
fn rows(s: &Store, folder: &str) -> Result<Vec<(MessageId, usize, bool)>, StoreError> {
    let page = s.list_conversations("u@x", folder, true, 0, 100)?;
    assert_eq!(page.total, page.rows.len(), "count kept with the heads");
    Ok(page
        .rows
        .into_iter()
        .map(|r| (r.newest.id, r.in_folder, r.unread))
        .collect())
}

#[test]
fn one_row_per_conversation_by_its_newest_message() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let s = open(dir.path(), "node-a");
    let root = s.deliver("u@x", INBOX, &mail("<root@x>", "", "과제"))?;
    let alone = s.deliver("u@x", INBOX, &mail("<alone@x>", "", "공지"))?;
    let sent = s.deliver("u@x", "Sent", &mail("<r1@x>", "<root@x>", "Re: 과제"))?;
    let reply = s.deliver("u@x", INBOX, &mail("<r2@x>", "<root@x> <r1@x>", "Re: 과제"))?;
    // No Message-ID and no references: its own conversation, unindexed.
    let bare = s.deliver("u@x", INBOX, b"From: b@x\r\nSubject: hi\r\n\r\nx\r\n")?;
    assert_eq!(
        rows(&s, INBOX)?,
        vec![
            (bare.clone(), 1, true),
            (reply.clone(), 2, true),
            (alone.clone(), 1, true)
        ]
    );
    assert_eq!(rows(&s, "Sent")?, vec![(sent.clone(), 1, true)]);
    // Unread while any message of it here is unread.
    s.set_seen("u@x", &reply, true)?;
    assert!(rows(&s, INBOX)?[1].2);
    s.set_seen("u@x", &root, true)?;
    assert!(!rows(&s, INBOX)?[1].2);
    // Oldest first, and paging.
    let oldest = s.list_conversations("u@x", INBOX, false, 0, 1)?;
    assert_eq!(oldest.rows[0].newest.id, alone);
    assert_eq!(oldest.total, 3);
    let second = s.list_conversations("u@x", INBOX, true, 1, 1)?;
    assert_eq!(second.rows[0].newest.id, reply);
    clean(&s)?;
    // The newest leaves: the next newest heads the row; the last one
    // leaving takes the row away.
    s.move_message("u@x", &reply, TRASH)?;
    assert_eq!(rows(&s, INBOX)?[2], (root.clone(), 1, false));
    assert_eq!(rows(&s, TRASH)?, vec![(reply.clone(), 1, false)]);
    clean(&s)?;
    s.expunge("u@x", &root)?;
    assert_eq!(
        rows(&s, INBOX)?,
        vec![(bare.clone(), 1, true), (alone.clone(), 1, true)]
    );
    // An older message coming back does not take the head from a newer.
    s.move_message("u@x", &reply, INBOX)?;
    s.move_message("u@x", &sent, INBOX)?;
    assert_eq!(rows(&s, INBOX)?[1], (reply, 2, true));
    clean(&s)
}

#[test]
fn announcements_are_each_their_own_row() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let s = open(dir.path(), "node-a");
    let users: Vec<String> = std::iter::once("u@x".to_string())
        .chain((0..threads::THREAD_TARGETS_MAX).map(|n| format!("s{n}@x")))
        .collect();
    let targets: Vec<(&str, &str)> = users.iter().map(|u| (u.as_str(), INBOX)).collect();
    let first = s.deliver_many(&targets, &mail("<notice@x>", "", "공지"))?;
    let again = s.deliver_many(&targets, &mail("<n2@x>", "<notice@x>", "Re: 공지"))?;
    assert_eq!(
        rows(&s, INBOX)?,
        vec![(again[0].clone(), 1, true), (first[0].clone(), 1, true)]
    );
    s.expunge("u@x", &first[0])?;
    assert_eq!(rows(&s, INBOX)?.len(), 1);
    clean(&s)
}

#[test]
fn deleting_a_folder_moves_its_conversations_out() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let s = open(dir.path(), "node-a");
    let folder = s.create_folder("u@x", "수업", None)?;
    let mut ids = Vec::new();
    for n in 0..5 {
        let refs = if n == 0 { "" } else { "<c0@x>" };
        ids.push(s.deliver("u@x", &folder, &mail(&format!("<c{n}@x>"), refs, "q"))?);
    }
    s.deliver("u@x", INBOX, &mail("<c9@x>", "<c0@x>", "q"))?;
    assert_eq!(rows(&s, &folder)?, vec![(ids[4].clone(), 5, true)]);
    // Here: to Trash (the peer's DeleteFolder rehomes to INBOX, below).
    s.delete_folder("u@x", &folder)?;
    assert!(rows(&s, &folder)?.is_empty());
    assert_eq!(rows(&s, TRASH)?, vec![(ids[4].clone(), 5, true)]);
    assert_eq!(rows(&s, INBOX)?.len(), 1);
    clean(&s)
}

/// A folder deleted on the peer while mail was still arriving here: its
/// mail comes to INBOX in the DeleteFolder op's own transaction, several
/// messages of one conversation at once.
#[test]
fn a_folder_deleted_by_the_peer_rehomes_whole_conversations() -> Result<(), StoreError> {
    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let a = open(da.path(), "node-a");
    let b = open(db.path(), "node-b");
    let folder = a.create_folder("u@x", "수업", None)?;
    let copy = |from: &Store, to: &Store, origin: &str| -> Result<(), StoreError> {
        for op in from.ops_since(origin, to.last_seq(origin)?, 100)? {
            if let Op::Deliver { blob, .. } = &op.op {
                let bytes = from.blob(blob)?.ok_or(StoreError::NoSuchMessage)?;
                to.put_blob(&bytes)?;
            }
            to.apply_remote(&op)?;
        }
        Ok(())
    };
    copy(&a, &b, "node-a")?;
    // B files a conversation into the folder; A deletes it (empty there).
    let mut ids = Vec::new();
    for n in 0..4 {
        let refs = if n == 0 { "" } else { "<c0@x>" };
        ids.push(b.deliver("u@x", &folder, &mail(&format!("<c{n}@x>"), refs, "q"))?);
    }
    let newest = b.deliver("u@x", INBOX, &mail("<c9@x>", "<c0@x>", "q"))?;
    a.delete_folder("u@x", &folder)?;
    copy(&a, &b, "node-a")?;
    assert!(rows(&b, &folder)?.is_empty());
    assert_eq!(rows(&b, INBOX)?, vec![(newest, 5, true)]);
    // The head leaving makes the next newest of the four the head.
    let moved = rows(&b, INBOX)?[0].0.clone();
    b.move_message("u@x", &moved, TRASH)?;
    assert_eq!(rows(&b, INBOX)?, vec![(ids[3].clone(), 4, true)]);
    clean(&b)?;
    copy(&b, &a, "node-b")?;
    assert_eq!(rows(&a, INBOX)?, rows(&b, INBOX)?);
    clean(&a)
}

#[test]
fn the_peer_builds_the_same_list_from_the_log() -> Result<(), StoreError> {
    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let a = open(da.path(), "node-a");
    let b = open(db.path(), "node-b");
    let root = a.deliver("u@x", INBOX, &mail("<root@x>", "", "s"))?;
    a.deliver("u@x", INBOX, &mail("<o@x>", "", "s"))?;
    let reply = a.deliver("u@x", INBOX, &mail("<r@x>", "<root@x>", "s"))?;
    a.move_message("u@x", &reply, TRASH)?;
    a.set_seen("u@x", &root, true)?;
    for op in a.ops_since("node-a", 0, 100)? {
        if let Op::Deliver { blob, .. } = &op.op {
            let bytes = a.blob(blob)?.ok_or(StoreError::NoSuchMessage)?;
            b.put_blob(&bytes)?;
        }
        b.apply_remote(&op)?;
    }
    assert_eq!(rows(&a, INBOX)?, rows(&b, INBOX)?);
    assert_eq!(rows(&a, TRASH)?, rows(&b, TRASH)?);
    clean(&b)
}

#[test]
fn fsck_repairs_and_an_old_store_builds_the_list_at_open() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let want = {
        let s = open(dir.path(), "node-a");
        s.deliver("u@x", INBOX, &mail("<root@x>", "", "s"))?;
        s.deliver("u@x", INBOX, &mail("<r@x>", "<root@x>", "s"))?;
        s.deliver("u@x", INBOX, &mail("<o@x>", "", "s"))?;
        let want = rows(&s, INBOX)?;
        let (k, _) = s
            .trees
            .thread_heads
            .iter()
            .next()
            .ok_or(StoreError::NoSuchMessage)??;
        s.trees.thread_heads.remove(&k)?;
        assert!(!s.fsck(false)?.is_clean());
        s.fsck(true)?;
        clean(&s)?;
        assert_eq!(rows(&s, INBOX)?, want);
        // As a store made before the list existed.
        for t in [
            &s.trees.thread_heads,
            &s.trees.thread_members,
            &s.trees.thread_tips,
        ] {
            t.clear()?;
        }
        s.trees.meta.remove(b"thread_heads_built")?;
        s.db.flush()?;
        want
    };
    let s = open(dir.path(), "node-a");
    assert_eq!(rows(&s, INBOX)?, want);
    clean(&s)
}

/// A random mix of deliveries into a few conversations, moves, deletions
/// and folder changes keeps the three trees exactly what fsck derives
/// from the messages.
#[test]
fn random_changes_keep_the_list_exact() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let s = open(dir.path(), "node-a");
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let mut folders = vec![INBOX.to_string(), TRASH.to_string()];
    let mut live: Vec<MessageId> = Vec::new();
    for step in 0..300 {
        match next(10) {
            0..=4 => {
                let conv = next(4);
                let refs = if next(2) == 0 {
                    String::new()
                } else {
                    format!("<c{conv}@x>")
                };
                let f = folders[next(folders.len())].clone();
                live.push(s.deliver("u@x", &f, &mail(&format!("<m{step}@x>"), &refs, "s"))?);
            }
            5 | 6 if !live.is_empty() => {
                let id = live[next(live.len())].clone();
                let f = folders[next(folders.len())].clone();
                s.move_message("u@x", &id, &f)?;
            }
            7 if !live.is_empty() => {
                let id = live.swap_remove(next(live.len()));
                s.expunge("u@x", &id)?;
            }
            8 => {
                folders.push(s.create_folder("u@x", &format!("f{step}"), None)?);
            }
            9 if folders.len() > 2 => {
                let f = folders.swap_remove(2 + next(folders.len() - 2));
                s.delete_folder("u@x", &f)?;
            }
            _ => {}
        }
        if step % 25 == 0 {
            clean(&s)?;
        }
    }
    clean(&s)
}

#[test]
fn a_conversations_members_in_one_folder() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let s = open(dir.path(), "node-a");
    let root = s.deliver("u@x", INBOX, &mail("<root@x>", "", "과제"))?;
    let sent = s.deliver("u@x", "Sent", &mail("<r1@x>", "<root@x>", "Re: 과제"))?;
    let reply = s.deliver("u@x", INBOX, &mail("<r2@x>", "<root@x> <r1@x>", "Re: 과제"))?;
    let alone = s.deliver("u@x", INBOX, &mail("<alone@x>", "", "공지"))?;
    let bare = s.deliver("u@x", INBOX, b"From: b@x\r\nSubject: hi\r\n\r\nx\r\n")?;
    let theirs = s.deliver("v@x", INBOX, &mail("<root@x>", "", "과제"))?;
    // Any member in the folder names the conversation; only the folder's
    // members count, newest first, and the limit holds.
    for key in [&root, &reply] {
        assert_eq!(
            s.conversation_members("u@x", INBOX, key, 10)?,
            vec![reply.clone(), root.clone()]
        );
    }
    assert_eq!(
        s.conversation_members("u@x", "Sent", &sent, 10)?,
        vec![sent.clone()]
    );
    assert!(s.conversation_members("u@x", INBOX, &sent, 10)?.is_empty());
    assert!(s.conversation_members("u@x", "Sent", &root, 10)?.is_empty());
    assert_eq!(
        s.conversation_members("u@x", INBOX, &root, 1)?,
        vec![reply.clone()]
    );
    assert_eq!(
        s.conversation_members("u@x", INBOX, &alone, 10)?,
        vec![alone.clone()]
    );
    // Outside the index: itself, where it is.
    assert_eq!(
        s.conversation_members("u@x", INBOX, &bare, 10)?,
        vec![bare.clone()]
    );
    assert!(s.conversation_members("u@x", TRASH, &bare, 10)?.is_empty());
    // Another mailbox's message reaches nothing, even with the same root.
    assert!(s
        .conversation_members("u@x", INBOX, &theirs, 10)?
        .is_empty());
    assert_eq!(
        s.conversation_members("v@x", INBOX, &theirs, 10)?,
        vec![theirs]
    );
    // A member moved away leaves the rest.
    s.move_message("u@x", &reply, TRASH)?;
    assert_eq!(s.conversation_members("u@x", INBOX, &root, 10)?, vec![root]);
    assert_eq!(
        s.conversation_members("u@x", TRASH, &reply, 10)?,
        vec![reply]
    );
    Ok(())
}
