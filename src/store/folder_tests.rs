//! Folder, flag, sort and purge tests: the local API's rules, the merge
//! rules under every arrival order (two stores replaying each other's
//! ops, randomised), and fsck over the new trees.

use std::collections::BTreeMap;
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

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

const U: &str = "kim@x";

/// Applies every op `from` has (of both origins) that `to` lacks, blobs
/// first; at most `limit` per origin (a partial sync).
fn sync(from: &Store, to: &Store, limit: usize) -> Result<(), StoreError> {
    for origin in ["node-a", "node-b"] {
        for op in from
            .ops_since(origin, 0, usize::MAX)?
            .into_iter()
            .take(limit)
        {
            if let Op::Deliver { blob, .. } = &op.op {
                match from.blobs.get(blob)? {
                    Some(raw) => {
                        to.put_blob(&raw)?;
                    }
                    // Deleted on `from` since: its Expunge follows.
                    None => continue,
                }
            }
            to.apply_remote(&op)?;
        }
    }
    Ok(())
}

/// Everything a user sees: folders (name, parent) and messages (folder,
/// flags), for comparing two nodes.
fn view(s: &Store) -> Result<String, StoreError> {
    let folders = s.user_folders(U)?;
    let mut out = format!("{folders:?}\n");
    let mut ids: Vec<String> = folders.iter().map(|f| f.id.clone()).collect();
    ids.extend(folders::SYSTEM_FOLDERS.iter().map(|f| f.to_string()));
    for f in ids {
        let page = s.list(U, &f, 0, 10_000)?;
        let counts = s.folder_counts(U, &f)?;
        assert_eq!(page.total, page.messages.len());
        assert_eq!(counts.total as usize, page.total);
        assert_eq!(
            counts.unseen as usize,
            page.messages.iter().filter(|m| !m.seen).count()
        );
        for m in page.messages {
            out.push_str(&format!(
                "{f} {} {} {} {}\n",
                m.id, m.seen, m.flagged, m.answered
            ));
        }
    }
    Ok(out)
}

fn assert_clean(s: &Store) -> Result<(), StoreError> {
    let report = s.fsck(false)?;
    assert!(report.is_clean(), "fsck: {report}");
    Ok(())
}

#[test]
fn folders_nest_rename_and_refuse_bad_requests() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let s = open(dir.path(), "node-a");
    let classes = s.create_folder(U, " 수업 ", None)?;
    let algebra = s.create_folder(U, "Algebra", Some(&classes))?;
    let deep = s.create_folder(U, "Homework", Some(&algebra))?;
    let names: Vec<(String, Option<String>)> = s
        .user_folders(U)?
        .into_iter()
        .map(|f| (f.name, f.parent))
        .collect();
    assert!(names.contains(&("수업".into(), None)));
    assert!(names.contains(&("Algebra".into(), Some(classes.clone()))));
    let refused = |r: Result<String, StoreError>, p: FolderProblem| match r {
        Err(StoreError::Folder(got)) => assert_eq!(got, p),
        other => panic!("expected {p:?}, got {other:?}"),
    };
    refused(
        s.create_folder(U, "algebra", Some(&classes)),
        FolderProblem::NameTaken,
    );
    refused(s.create_folder(U, "inbox", None), FolderProblem::NameTaken);
    refused(
        s.create_folder(U, "a/b", None),
        FolderProblem::NameBadCharacter,
    );
    refused(s.create_folder(U, "", None), FolderProblem::NameEmpty);
    refused(
        s.create_folder(U, "x", Some("node-a.ff")),
        FolderProblem::NoSuchFolder,
    );
    // Another user's folder is not ours.
    refused(
        s.create_folder("lee@x", "x", Some(&classes)),
        FolderProblem::NoSuchFolder,
    );
    // The same name under another parent is fine.
    s.create_folder(U, "Algebra", None)?;
    // No cycles: a folder cannot go under its own descendant.
    assert!(matches!(
        s.rename_folder(U, &classes, "수업", Some(&deep)),
        Err(StoreError::Folder(FolderProblem::Cycle))
    ));
    assert!(matches!(
        s.rename_folder(U, INBOX, "x", None),
        Err(StoreError::Folder(FolderProblem::System))
    ));
    // Rename keeps the id, so messages stay put.
    let m = s.deliver(U, INBOX, &mail("a@x", "hi", 1))?;
    s.move_message(U, &m, &algebra)?;
    s.rename_folder(U, &algebra, "Linear algebra", None)?;
    let page = s.list(U, &algebra, 0, 10)?;
    assert_eq!(page.messages.len(), 1);
    assert!(s
        .user_folders(U)?
        .iter()
        .any(|f| f.id == algebra && f.name == "Linear algebra" && f.parent.is_none()));
    // Nesting is bounded.
    let mut parent = classes.clone();
    let mut result = Ok(String::new());
    for n in 0..10 {
        result = s.create_folder(U, &format!("level {n}"), Some(&parent));
        match &result {
            Ok(id) => parent = id.clone(),
            Err(_) => break,
        }
    }
    refused(result, FolderProblem::TooDeep);
    assert!(matches!(
        s.move_message(U, &m, "node-a.ffff"),
        Err(StoreError::Folder(FolderProblem::NoSuchFolder))
    ));
    assert_clean(&s)
}

#[test]
fn deleting_a_folder_moves_its_mail_and_subfolders_mail_to_trash() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let s = open(dir.path(), "node-a");
    let top = s.create_folder(U, "Projects", None)?;
    let sub = s.create_folder(U, "2025", Some(&top))?;
    let a = s.deliver(U, INBOX, &mail("a@x", "one", 10))?;
    let b = s.deliver(U, INBOX, &mail("b@x", "two", 20))?;
    assert_eq!(s.move_messages(U, std::slice::from_ref(&a), &top)?, 1);
    assert_eq!(s.move_messages(U, std::slice::from_ref(&b), &sub)?, 1);
    assert_eq!(s.folder_counts(U, &top)?.unseen, 1);
    assert_eq!(s.delete_folder(U, &top)?, 2);
    assert!(s.user_folders(U)?.is_empty());
    let trash = s.list(U, TRASH, 0, 10)?;
    assert_eq!(trash.total, 2);
    assert_eq!(s.folder_counts(U, TRASH)?.unseen, 2);
    // Delivering or moving into the deleted folder lands in INBOX.
    let c = s.deliver(U, &top, &mail("c@x", "three", 5))?;
    assert_eq!(s.list(U, INBOX, 0, 10)?.messages[0].id, c);
    assert!(s.move_message(U, &a, &sub).is_err());
    // From Trash, deleting is for good.
    assert_eq!(s.expunge_messages(U, &[a, b])?, 2);
    assert_eq!(s.list(U, TRASH, 0, 10)?.total, 0);
    assert_clean(&s)
}

#[test]
fn flags_are_independent_last_writer_wins_registers() -> Result<(), StoreError> {
    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let a = open(da.path(), "node-a");
    let b = open(db.path(), "node-b");
    let m = a.deliver(U, INBOX, &mail("a@x", "hi", 1))?;
    sync(&a, &b, usize::MAX)?;
    // Concurrently: A marks read, B flags; then B unflags, A answers.
    a.set_seen(U, &m, true)?;
    b.set_flag(U, &m, Flag::Flagged, true)?;
    b.set_flag(U, &m, Flag::Flagged, false)?;
    a.set_flag(U, &m, Flag::Answered, true)?;
    sync(&a, &b, usize::MAX)?;
    sync(&b, &a, usize::MAX)?;
    for s in [&a, &b] {
        let got = &s.list(U, INBOX, 0, 1)?.messages[0];
        assert!(got.seen && !got.flagged && got.answered, "{got:?}");
        assert_eq!(s.folder_counts(U, INBOX)?.unseen, 0);
    }
    assert_eq!(view(&a)?, view(&b)?);
    // set_flags skips messages whose flag already has the value.
    assert_eq!(
        a.set_flags(U, std::slice::from_ref(&m), Flag::Seen, true)?,
        0
    );
    assert_eq!(a.set_flags(U, &[m], Flag::Seen, false)?, 1);
    assert_eq!(a.folder_counts(U, INBOX)?.unseen, 1);
    Ok(())
}

#[test]
fn delete_folder_against_deliver_and_move_loses_no_mail() -> Result<(), StoreError> {
    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let a = open(da.path(), "node-a");
    let b = open(db.path(), "node-b");
    let f = a.create_folder(U, "Lab", None)?;
    let m = a.deliver(U, INBOX, &mail("a@x", "old", 3))?;
    sync(&a, &b, usize::MAX)?;
    // A deletes the folder while B files mail into it and renames it.
    a.delete_folder(U, &f)?;
    let d = b.deliver(U, &f, &mail("b@x", "new", 4))?;
    b.move_message(U, &m, &f)?;
    b.rename_folder(U, &f, "Lab 2", None)?;
    sync(&a, &b, usize::MAX)?;
    sync(&b, &a, usize::MAX)?;
    for s in [&a, &b] {
        let inbox: Vec<MessageId> = s
            .list(U, INBOX, 0, 10)?
            .messages
            .into_iter()
            .map(|x| x.id)
            .collect();
        assert!(inbox.contains(&d) && inbox.contains(&m), "{inbox:?}");
        assert!(s.user_folders(U)?.is_empty());
        assert_clean(s)?;
    }
    assert_eq!(view(&a)?, view(&b)?);
    Ok(())
}

#[test]
fn a_move_into_a_folder_not_known_yet_waits_in_inbox() -> Result<(), StoreError> {
    let (da, dc) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let a = open(da.path(), "node-a");
    let c = open(dc.path(), "node-b");
    let m = a.deliver(U, INBOX, &mail("a@x", "hi", 3))?;
    let f = a.create_folder(U, "Later", None)?;
    a.move_message(U, &m, &f)?;
    // C gets the Deliver and the Move before the CreateFolder (as from a
    // third node or a restore): the message waits in INBOX.
    let ops = a.ops_since("node-a", 0, 10)?;
    assert!(matches!(ops[1].op, Op::CreateFolder { .. }));
    sync(&a, &c, 1)?;
    c.apply_remote(&ops[2])?;
    assert_eq!(c.list(U, INBOX, 0, 10)?.total, 1);
    assert_clean(&c)?;
    c.apply_remote(&ops[1])?;
    assert_eq!(c.list(U, INBOX, 0, 10)?.total, 0);
    assert_eq!(c.list(U, &f, 0, 10)?.messages[0].id, m);
    assert_clean(&c)?;
    assert_eq!(view(&a)?, view(&c)?);
    Ok(())
}

#[test]
fn the_same_name_made_on_both_nodes_gives_two_folders() -> Result<(), StoreError> {
    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let a = open(da.path(), "node-a");
    let b = open(db.path(), "node-b");
    let fa = a.create_folder(U, "Thesis", None)?;
    let fb = b.create_folder(U, "Thesis", None)?;
    sync(&a, &b, usize::MAX)?;
    sync(&b, &a, usize::MAX)?;
    for s in [&a, &b] {
        let ids: Vec<String> = s.user_folders(U)?.into_iter().map(|f| f.id).collect();
        assert!(ids.contains(&fa) && ids.contains(&fb), "{ids:?}");
    }
    // Concurrent renames: the later one wins on both.
    a.rename_folder(U, &fa, "Thesis A", None)?;
    b.rename_folder(U, &fa, "Thesis B", None)?;
    sync(&a, &b, usize::MAX)?;
    sync(&b, &a, usize::MAX)?;
    assert_eq!(view(&a)?, view(&b)?);
    Ok(())
}

#[test]
fn listings_sort_by_sender_subject_size_both_ways() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let s = open(dir.path(), "node-a");
    s.deliver(U, INBOX, &mail("\"Choi\" <c@x>", "Re: banana", 30))?;
    s.deliver(U, INBOX, &mail("alice <a@x>", "cherry", 10))?;
    s.deliver(U, INBOX, &mail("Bora <b@x>", "Apple", 20))?;
    let order = |key, descending| ListOrder { key, descending };
    let froms = |o| -> Result<Vec<String>, StoreError> {
        Ok(s.list_sorted(U, INBOX, o, 0, 10)?
            .messages
            .into_iter()
            .map(|m| m.subject)
            .collect())
    };
    assert_eq!(
        froms(order(SortKey::From, false))?,
        ["cherry", "Apple", "Re: banana"]
    );
    assert_eq!(
        froms(order(SortKey::Subject, false))?,
        ["Apple", "Re: banana", "cherry"]
    );
    assert_eq!(
        froms(order(SortKey::Size, true))?,
        ["Re: banana", "Apple", "cherry"]
    );
    assert_eq!(
        froms(order(SortKey::Date, false))?,
        ["Re: banana", "cherry", "Apple"]
    );
    // Paging from the far end.
    let page = s.list_sorted(U, INBOX, order(SortKey::Size, false), 2, 5)?;
    assert_eq!((page.total, page.messages.len()), (3, 1));
    assert_eq!(page.messages[0].subject, "Re: banana");
    Ok(())
}

#[test]
fn every_page_is_a_slice_of_the_whole_listing() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let s = open(dir.path(), "node-a");
    for n in 0..7 {
        s.deliver(
            U,
            INBOX,
            &mail(&format!("s{} <x@y>", n % 3), &format!("t{}", 7 - n), n * 5),
        )?;
    }
    for key in [
        SortKey::Date,
        SortKey::From,
        SortKey::Subject,
        SortKey::Size,
    ] {
        for descending in [false, true] {
            let order = ListOrder { key, descending };
            let all: Vec<MessageId> = s
                .list_sorted(U, INBOX, order, 0, 100)?
                .messages
                .into_iter()
                .map(|m| m.id)
                .collect();
            assert_eq!(all.len(), 7);
            for offset in 0..9 {
                let page: Vec<MessageId> = s
                    .list_sorted(U, INBOX, order, offset, 3)?
                    .messages
                    .into_iter()
                    .map(|m| m.id)
                    .collect();
                let want: Vec<MessageId> = all.iter().skip(offset).take(3).cloned().collect();
                assert_eq!(page, want, "{order:?} offset {offset}");
            }
        }
    }
    Ok(())
}

#[test]
fn fsck_checks_and_repairs_the_sort_index_and_waiting_list() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let s = open(dir.path(), "node-a");
    let m = s.deliver(U, INBOX, &mail("a@x", "hi", 3))?;
    // Small folders are sorted in memory; index this one as a big
    // folder's would be.
    s.build_sort_index(U, INBOX)?;
    assert_clean(&s)?;
    let first = s
        .trees
        .sort_index
        .iter()
        .next()
        .ok_or(StoreError::NoSuchMessage)??;
    s.trees.sort_index.remove(&first.0)?;
    s.trees
        .orphans
        .insert(b"kim@x\0node-a.99\0node-a.1", &[][..])?;
    let report = s.fsck(false)?;
    assert_eq!(report.problems.len(), 2, "{report}");
    let report = s.fsck(true)?;
    assert_eq!(report.repaired.len(), 2, "{report}");
    assert_clean(&s)?;
    assert_eq!(
        s.list_sorted(
            U,
            INBOX,
            ListOrder {
                key: SortKey::From,
                descending: false
            },
            0,
            5
        )?
        .messages[0]
            .id,
        m
    );
    Ok(())
}

#[test]
fn purge_deletes_only_what_sat_long_enough() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let s = open(dir.path(), "node-a");
    let old = s.deliver(U, INBOX, &mail("a@x", "old", 3))?;
    let junk = s.deliver(U, folders::JUNK, &mail("s@x", "spam", 3))?;
    s.move_message(U, &old, TRASH)?;
    let now = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
    // Nothing has been there a day.
    assert_eq!(s.purge_folder(TRASH, now - 86_400_000)?, 0);
    // Everything has been there since before "in a minute".
    assert_eq!(s.purge_folder(TRASH, now + 60_000)?, 1);
    assert_eq!(s.purge_folder(folders::JUNK, now + 60_000)?, 1);
    assert!(s.message(U, &old)?.is_none() && s.message(U, &junk)?.is_none());
    assert_eq!(s.usage(U)?, Usage::default());
    assert_clean(&s)
}

/// Two nodes doing random folder and message work, syncing partially at
/// random moments, end up showing the user the same mailbox.
#[test]
fn random_concurrent_work_converges() -> Result<(), StoreError> {
    for seed in 0..8u64 {
        let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
        let nodes = [open(da.path(), "node-a"), open(db.path(), "node-b")];
        let mut rng = StdRng::seed_from_u64(seed);
        for _ in 0..150 {
            let n = rng.gen_range(0..2);
            let s = &nodes[n];
            random_action(&mut rng, s)?;
            if rng.gen_bool(0.15) {
                let limit = rng.gen_range(1..40);
                sync(&nodes[n], &nodes[1 - n], limit)?;
            }
        }
        sync(&nodes[0], &nodes[1], usize::MAX)?;
        sync(&nodes[1], &nodes[0], usize::MAX)?;
        assert_eq!(view(&nodes[0])?, view(&nodes[1])?, "seed {seed}");
        for s in &nodes {
            assert_clean(s)?;
        }
    }
    Ok(())
}

fn random_action(rng: &mut StdRng, s: &Store) -> Result<(), StoreError> {
    let folders: Vec<String> = s.user_folders(U)?.into_iter().map(|f| f.id).collect();
    let mut targets: Vec<String> = folders.clone();
    targets.extend([INBOX, TRASH].map(String::from));
    let messages: BTreeMap<MessageId, ()> = targets
        .iter()
        .flat_map(|f| {
            s.list(U, f, 0, 1000)
                .map(|p| p.messages)
                .unwrap_or_default()
        })
        .map(|m| (m.id, ()))
        .collect();
    let any_message = |rng: &mut StdRng| {
        messages
            .keys()
            .nth(rng.gen_range(0..messages.len().max(1)))
            .cloned()
    };
    let any_folder = |rng: &mut StdRng| targets[rng.gen_range(0..targets.len())].clone();
    match rng.gen_range(0..100) {
        0..=29 => {
            let f = any_folder(rng);
            s.deliver(
                U,
                &f,
                &mail(
                    "a@x",
                    &format!("m{}", rng.gen_range(0..9)),
                    rng.gen_range(0..50),
                ),
            )?;
        }
        30..=44 => {
            if let Some(m) = any_message(rng) {
                let f = any_folder(rng);
                s.move_messages(U, &[m], &f)?;
            }
        }
        45..=59 => {
            if let Some(m) = any_message(rng) {
                let flag = [Flag::Seen, Flag::Flagged, Flag::Answered][rng.gen_range(0..3)];
                s.set_flags(U, &[m], flag, rng.gen_bool(0.5))?;
            }
        }
        60..=69 => {
            if let Some(m) = any_message(rng) {
                s.expunge_messages(U, &[m])?;
            }
        }
        70..=81 => {
            let parent = (!folders.is_empty() && rng.gen_bool(0.5))
                .then(|| folders[rng.gen_range(0..folders.len())].clone());
            let name = format!("f{}", rng.gen_range(0..6));
            match s.create_folder(U, &name, parent.as_deref()) {
                Ok(_) | Err(StoreError::Folder(_)) => {}
                Err(e) => return Err(e),
            }
        }
        82..=90 => {
            if !folders.is_empty() {
                let f = &folders[rng.gen_range(0..folders.len())];
                let parent = rng
                    .gen_bool(0.5)
                    .then(|| folders[rng.gen_range(0..folders.len())].clone());
                match s.rename_folder(
                    U,
                    f,
                    &format!("r{}", rng.gen_range(0..6)),
                    parent.as_deref(),
                ) {
                    Ok(()) | Err(StoreError::Folder(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        _ => {
            if !folders.is_empty() {
                s.delete_folder(U, &folders[rng.gen_range(0..folders.len())])?;
            }
        }
    }
    Ok(())
}
