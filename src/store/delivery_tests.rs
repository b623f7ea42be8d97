//! Tests of the compact delivery layout: one op for all the mailboxes of a
//! delivery, shared delivery rows, and sort indexes only for big folders.

use std::path::Path;

use super::folders::{INBOX, TRASH};
use super::*;

fn open(dir: &Path, node: &str) -> Store {
    match Store::open(dir, node) {
        Ok(s) => s,
        Err(e) => panic!("open: {e}"),
    }
}

fn mail(from: &str, subject: &str, pad: usize) -> Vec<u8> {
    format!(
        "From: {from}\r\nSubject: {subject}\r\n\r\n{}\r\n",
        "x".repeat(pad)
    )
    .into_bytes()
}

fn clean(s: &Store) -> Result<(), StoreError> {
    let report = s.fsck(false)?;
    assert!(report.is_clean(), "fsck: {report}");
    Ok(())
}

#[test]
fn one_delivery_to_many_mailboxes_is_one_op_and_one_shared_row() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let s = open(dir.path(), "node-a");
    let users: Vec<String> = (0..50).map(|n| format!("s{n}@x")).collect();
    let targets: Vec<(&str, &str)> = users.iter().map(|u| (u.as_str(), INBOX)).collect();
    let raw = mail("office@x", "공지", 500);
    let ids = s.deliver_many(&targets, &raw)?;
    assert_eq!(ids.len(), 50);
    // One op in the log, occupying one sequence number per target.
    let ops = s.ops_since("node-a", 0, 100)?;
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0].seq_span(), 50);
    assert_eq!(ops[0].delivered_ids(), ids);
    assert_eq!(s.trees.deliveries.len(), 1);
    for (user, id) in users.iter().zip(&ids) {
        let m = s.message(user, id)?.ok_or(StoreError::NoSuchMessage)?;
        assert_eq!(m.raw, raw);
        assert_eq!(m.summary.subject, "공지");
        assert_eq!(m.summary.folder, INBOX);
        // The id is this mailbox's only.
        assert!(s.message("nobody@x", id)?.is_none());
    }
    // The next op continues after the span, also after a reopen.
    let next = s.deliver("lee@x", INBOX, &raw)?;
    assert_eq!(next.to_string(), "node-a.33");
    drop(s);
    let s = open(dir.path(), "node-a");
    assert_eq!(s.deliver("lee@x", INBOX, &raw)?.to_string(), "node-a.34");
    clean(&s)?;
    // The shared row lives as long as one of its messages does.
    for (user, id) in users.iter().zip(&ids).skip(1) {
        s.expunge(user, id)?;
    }
    assert_eq!(s.trees.deliveries.len(), 3);
    s.expunge("s0@x", &ids[0])?;
    assert_eq!(s.trees.deliveries.len(), 2);
    clean(&s)
}

#[test]
fn a_delivery_replicates_as_one_op_and_converges() -> Result<(), StoreError> {
    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let a = open(da.path(), "node-a");
    let b = open(db.path(), "node-b");
    let raw = mail("office@x", "hello", 100);
    let ids = a.deliver_many(
        &[("kim@x", INBOX), ("lee@x", "Junk"), ("kim@x", INBOX)],
        &raw,
    )?;
    a.expunge("lee@x", &ids[1])?;
    for op in a.ops_since("node-a", 0, 100)? {
        if let Op::Deliver { blob, .. } = &op.op {
            let bytes = a.blob(blob)?.ok_or(StoreError::NoSuchMessage)?;
            b.put_blob(&bytes)?;
        }
        b.apply_remote(&op)?;
        // Applying twice changes nothing.
        assert!(!b.apply_remote(&op)?);
    }
    assert_eq!(a.digest()?, b.digest()?);
    assert_eq!(b.list("kim@x", INBOX, 0, 10)?.total, 2);
    assert_eq!(b.list("lee@x", "Junk", 0, 10)?.total, 0);
    clean(&b)
}

#[test]
fn a_delivery_deleted_everywhere_at_its_origin_arrives_as_tombstones() -> Result<(), StoreError> {
    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let a = open(da.path(), "node-a");
    let b = open(db.path(), "node-b");
    let ids = a.deliver_many(&[("kim@x", INBOX), ("lee@x", INBOX)], &mail("o@x", "s", 10))?;
    let ops = a.ops_since("node-a", 0, 10)?;
    b.apply_remote_deleted(&ops[0])?;
    for id in &ids {
        assert!(b.is_deleted(id)?);
    }
    assert_eq!(b.list("kim@x", INBOX, 0, 10)?.total, 0);
    clean(&b)
}

#[test]
fn small_and_indexed_folders_sort_alike() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let s = open(dir.path(), "node-a");
    let senders = ["Park <p@x>", "kim@x", "\"Lee\" <l@x>", "<choi@x>"];
    let subjects = ["Re: 과제", "hello", "Fwd: 안내", "zeta", "Alpha"];
    for n in 0..23 {
        s.deliver(
            "u@x",
            INBOX,
            &mail(senders[n % 4], subjects[n % 5], (n * 37) % 100),
        )?;
    }
    let orders: Vec<ListOrder> = [SortKey::From, SortKey::Subject, SortKey::Size]
        .into_iter()
        .flat_map(|key| {
            [true, false]
                .into_iter()
                .map(move |descending| ListOrder { key, descending })
        })
        .collect();
    let pages = |s: &Store| -> Result<Vec<Vec<MessageSummary>>, StoreError> {
        let mut out = Vec::new();
        for order in &orders {
            for offset in [0, 5, 15, 20] {
                out.push(s.list_sorted("u@x", INBOX, *order, offset, 5)?.messages);
            }
        }
        Ok(out)
    };
    let in_memory = pages(&s)?;
    assert!(s.trees.sort_index.is_empty());
    s.build_sort_index("u@x", INBOX)?;
    assert_eq!(s.trees.sort_index.len(), 23 * 3);
    assert_eq!(pages(&s)?, in_memory);
    // The index follows moves and deletes once it exists.
    let page = s.list("u@x", INBOX, 0, 3)?;
    s.move_message("u@x", &page.messages[0].id, TRASH)?;
    s.expunge("u@x", &page.messages[1].id)?;
    assert_eq!(s.trees.sort_index.len(), 21 * 3);
    clean(&s)
}

#[test]
fn a_big_folder_gets_its_index_when_first_sorted() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let s = open(dir.path(), "node-a");
    let n = sort_index::IN_MEMORY_MAX + 1;
    let targets = vec![("big@x", INBOX); n];
    s.deliver_many(&targets, &mail("a@x", "b", 1))?;
    assert!(s.trees.sort_index.is_empty());
    let order = ListOrder {
        key: SortKey::Size,
        descending: false,
    };
    assert_eq!(
        s.list_sorted("big@x", INBOX, order, 0, 10)?.messages.len(),
        10
    );
    assert_eq!(s.trees.sort_index.len(), n * 3);
    // Arrival order never needs one.
    assert!(s
        .trees
        .sorted_folders
        .contains_key(state::stats_key("big@x", INBOX))?);
    clean(&s)
}

#[test]
fn fsck_repairs_a_delivery_row_count() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let s = open(dir.path(), "node-a");
    s.deliver_many(&[("a@x", INBOX), ("b@x", INBOX)], &mail("o@x", "s", 1))?;
    let (key, _) = s
        .trees
        .deliveries
        .iter()
        .next()
        .ok_or(StoreError::NoSuchMessage)??;
    message_rows::set_live(&s.trees.deliveries, &key, 7)?;
    let report = s.fsck(false)?;
    assert_eq!(report.problems.len(), 1, "{report}");
    assert!(report.problems[0].contains("delivery record"), "{report}");
    s.fsck(true)?;
    clean(&s)
}

fn threaded_mail(id: &str, refs: &str, subject: &str) -> Vec<u8> {
    let refs = if refs.is_empty() {
        String::new()
    } else {
        format!(
            "In-Reply-To: {}\r\nReferences: {refs}\r\n",
            refs.split(' ').next_back().unwrap_or("")
        )
    };
    format!("From: a@x\r\nMessage-ID: {id}\r\n{refs}Subject: {subject}\r\n\r\nbody\r\n")
        .into_bytes()
}

#[test]
fn replies_join_their_conversation_in_every_folder() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let s = open(dir.path(), "node-a");
    let root = s.deliver("u@x", INBOX, &threaded_mail("<root@x>", "", "과제"))?;
    let reply = s.deliver(
        "u@x",
        "Sent",
        &threaded_mail("<r1@x>", "<root@x>", "Re: 과제"),
    )?;
    let again = s.deliver(
        "u@x",
        INBOX,
        &threaded_mail("<r2@x>", "<root@x> <r1@x>", "Re: Re: 과제"),
    )?;
    let other = s.deliver("u@x", INBOX, &threaded_mail("<other@x>", "", "과제"))?;
    // The same conversation in another mailbox is that mailbox's own.
    s.deliver(
        "v@x",
        INBOX,
        &threaded_mail("<r3@x>", "<root@x>", "Re: 과제"),
    )?;
    let ids = |c: Vec<MessageSummary>| c.into_iter().map(|m| m.id).collect::<Vec<_>>();
    let thread = vec![root.clone(), reply.clone(), again.clone()];
    for id in &thread {
        assert_eq!(ids(s.conversation("u@x", id)?), thread);
    }
    assert_eq!(ids(s.conversation("u@x", &other)?), vec![other.clone()]);
    assert!(s.conversation("v@x", &root)?.is_empty());
    let listed = [
        s.message("u@x", &root)?
            .ok_or(StoreError::NoSuchMessage)?
            .summary,
        s.message("u@x", &other)?
            .ok_or(StoreError::NoSuchMessage)?
            .summary,
    ];
    assert_eq!(s.conversation_sizes("u@x", &listed), vec![3, 1]);
    // Moving keeps it in the conversation; deleting takes it out.
    s.move_message("u@x", &again, TRASH)?;
    assert_eq!(s.conversation("u@x", &root)?.len(), 3);
    s.expunge("u@x", &reply)?;
    assert_eq!(
        ids(s.conversation("u@x", &root)?),
        vec![root.clone(), again]
    );
    clean(&s)?;
    // fsck finds and repairs a lost entry.
    let (k, _) = s
        .trees
        .threads
        .iter()
        .next()
        .ok_or(StoreError::NoSuchMessage)??;
    s.trees.threads.remove(&k)?;
    assert_eq!(s.fsck(false)?.problems.len(), 1);
    s.fsck(true)?;
    clean(&s)
}

#[test]
fn announcements_are_not_indexed_by_conversation() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let s = open(dir.path(), "node-a");
    let users: Vec<String> = (0..=threads::THREAD_TARGETS_MAX)
        .map(|n| format!("s{n}@x"))
        .collect();
    let targets: Vec<(&str, &str)> = users.iter().map(|u| (u.as_str(), INBOX)).collect();
    let ids = s.deliver_many(&targets, &threaded_mail("<notice@x>", "", "공지"))?;
    assert!(s.trees.threads.is_empty());
    assert_eq!(s.conversation("s0@x", &ids[0])?.len(), 1);
    clean(&s)
}
