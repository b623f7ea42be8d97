//! Search behaviour: Korean substrings, legacy charsets, fields and dates,
//! deletion and moves, announcements, isolation between users, the peer
//! building the same index from the ops, and rebuilding.

use std::path::Path;

use super::*;
use crate::store::op::Op;

fn open(dir: &Path, node: &str) -> Store {
    match Store::open(dir, node) {
        Ok(s) => s,
        Err(e) => panic!("open: {e}"),
    }
}

fn mail(from: &str, to: &str, subject: &str, date: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: =?UTF-8?B?{}?=\r\nDate: {date}\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n",
        base64_of(subject)
    )
    .into_bytes()
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
}

fn anywhere(words: &str) -> SearchQuery {
    SearchQuery {
        anywhere: words.into(),
        ..SearchQuery::default()
    }
}

/// The ids `user` finds, asked twice: while deliveries wait for the
/// indexer (if any do), and again once it has run; both must agree.
fn ids(store: &Store, user: &str, q: &SearchQuery) -> Vec<MessageId> {
    let found = |store: &Store| match store.search(user, q, 0, 100) {
        Ok(r) => r.messages.into_iter().map(|m| m.id).collect::<Vec<_>>(),
        Err(e) => panic!("search: {e}"),
    };
    let before = found(store);
    if let Err(e) = store.index_pending(usize::MAX) {
        panic!("index: {e}");
    }
    let after = found(store);
    assert_eq!(before, after, "waiting and indexed results differ");
    after
}

const DATE: &str = "Mon, 3 Mar 2025 09:00:00 +0900";

#[test]
fn korean_substrings_inside_words_are_found_exactly() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path(), "node-a");
    let user = "lee@campus.ac.kr";
    let notice = store.deliver(
        user,
        "INBOX",
        &mail(
            "학사팀 <office@campus.ac.kr>",
            user,
            "이번학기수강신청 안내",
            DATE,
            "기간을 지켜 주세요.",
        ),
    )?;
    // Has the pairs 가나 and 나다, but not "가나다" in a row.
    let other = store.deliver(
        user,
        "INBOX",
        &mail(
            "Kim <kim@campus.ac.kr>",
            user,
            "가나 나다",
            DATE,
            "학교 기숙사",
        ),
    )?;
    for (words, expected) in [
        ("학기", vec![notice.clone()]),
        ("기수강", vec![notice.clone()]),
        ("이번학기수강신청", vec![notice.clone()]),
        ("학기 안내", vec![notice.clone()]),
        ("가나다", vec![]),
        ("나다", vec![other.clone()]),
        ("학생", vec![]),
        ("OFFICE", vec![notice.clone()]),
        ("campus.ac.kr", vec![notice.clone(), other.clone()]),
        ("숙", vec![other.clone()]),
        ("청", vec![notice.clone()]),
    ] {
        let mut found = ids(&store, user, &anywhere(words));
        found.sort();
        let mut expected = expected;
        expected.sort();
        assert_eq!(found, expected, "{words}");
    }
    assert!(anywhere("  !? ").is_empty());
    assert_eq!(store.search(user, &anywhere(""), 0, 10)?.total, 0);
    Ok(())
}

#[test]
fn fields_and_dates_narrow_the_search() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path(), "node-a");
    let user = "lee@campus.ac.kr";
    let march = store.deliver(
        user,
        "INBOX",
        &mail(
            "김철수 <kim@campus.ac.kr>",
            "박영희 <park@campus.ac.kr>",
            "회의 일정",
            DATE,
            "회의실 301호",
        ),
    )?;
    let april = store.deliver(
        user,
        "INBOX",
        &mail(
            "박영희 <park@campus.ac.kr>",
            user,
            "회의록",
            "Tue, 1 Apr 2025 10:00:00 +0900",
            "김철수 님 참석",
        ),
    )?;
    let q = |f: fn(&mut SearchQuery)| {
        let mut q = SearchQuery::default();
        f(&mut q);
        ids(&store, user, &q)
    };
    assert_eq!(q(|q| q.from = "김철수".into()), vec![march.clone()]);
    assert_eq!(q(|q| q.to = "영희".into()), vec![march.clone()]);
    assert_eq!(q(|q| q.body = "김철수".into()), vec![april.clone()]);
    assert_eq!(q(|q| q.subject = "회의록".into()), vec![april.clone()]);
    assert_eq!(q(|q| q.anywhere = "회의".into()).len(), 2);
    let since_april = chrono::DateTime::parse_from_rfc3339("2025-04-01T00:00:00+09:00")
        .map(|d| d.timestamp())
        .ok();
    assert_eq!(
        ids(
            &store,
            user,
            &SearchQuery {
                anywhere: "회의".into(),
                since: since_april,
                ..SearchQuery::default()
            }
        ),
        vec![april.clone()]
    );
    assert_eq!(
        ids(
            &store,
            user,
            &SearchQuery {
                anywhere: "회의".into(),
                until: since_april,
                ..SearchQuery::default()
            }
        ),
        vec![march]
    );
    Ok(())
}

#[test]
fn legacy_charsets_and_html_bodies_are_searchable() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path(), "node-a");
    let user = "student@campus.ac.kr";
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let euc = store.deliver(user, "INBOX", &std::fs::read(fixtures.join("euc-kr.eml"))?)?;
    let cp949 = store.deliver(user, "INBOX", &std::fs::read(fixtures.join("cp949.eml"))?)?;
    let html = store.deliver(
        user,
        "INBOX",
        b"From: a@x\r\nSubject: h\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>\xec\x9e\xa5\xed\x95\x99\xea\xb8\x88 <b>\xec\x8b\xa0\xec\xb2\xad</b></p><script>secret()</script>\r\n",
    )?;
    // EUC-KR: the body says "수강 신청은 이번 주 금요일까지입니다", the sender is 교무처.
    assert_eq!(
        ids(&store, user, &anywhere("금요일까지")),
        vec![euc.clone()]
    );
    assert_eq!(
        ids(
            &store,
            user,
            &SearchQuery {
                from: "교무".into(),
                ..SearchQuery::default()
            }
        ),
        vec![euc]
    );
    let cp949_text = crate::mime::render(&std::fs::read(fixtures.join("cp949.eml"))?, false);
    let word: String = text::normalize(&cp949_text.subject)
        .split(' ')
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(!word.is_empty(), "cp949 fixture has a subject");
    assert!(ids(&store, user, &anywhere(&word)).contains(&cp949));
    assert_eq!(ids(&store, user, &anywhere("장학금")), vec![html.clone()]);
    assert_eq!(
        ids(&store, user, &anywhere("secret")),
        Vec::<MessageId>::new()
    );
    Ok(())
}

#[test]
fn deleted_and_moved_messages_are_handled() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path(), "node-a");
    let user = "lee@campus.ac.kr";
    let keep = store.deliver(
        user,
        "INBOX",
        &mail("a@x", user, "도서관 연체", DATE, "반납"),
    )?;
    let gone = store.deliver(
        user,
        "INBOX",
        &mail("a@x", user, "도서관 휴관", DATE, "공지"),
    )?;
    store.expunge(user, &gone)?;
    assert_eq!(ids(&store, user, &anywhere("도서관")), vec![keep.clone()]);
    store.move_message(user, &keep, "Trash")?;
    let in_folder = |folder: &str| {
        ids(
            &store,
            user,
            &SearchQuery {
                anywhere: "도서관".into(),
                folder: Some(folder.into()),
                ..SearchQuery::default()
            },
        )
    };
    assert_eq!(in_folder("INBOX"), Vec::<MessageId>::new());
    assert_eq!(in_folder("Trash"), vec![keep.clone()]);
    let results = store.search(user, &anywhere("도서관"), 0, 10)?;
    assert_eq!(results.messages[0].folder, "Trash");
    // The delivery's text goes with its last message.
    store.expunge(user, &keep)?;
    assert_eq!(store.trees.search_docs.len(), 0);
    assert!(store.fsck(false)?.is_clean());
    Ok(())
}

#[test]
fn announcements_are_found_by_each_recipient_only() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path(), "node-a");
    let users: Vec<String> = (0..60).map(|n| format!("s{n:03}@campus.ac.kr")).collect();
    let targets: Vec<(&str, &str)> = users.iter().map(|u| (u.as_str(), "INBOX")).collect();
    let raw = mail(
        "총장실 <president@campus.ac.kr>",
        "all@campus.ac.kr",
        "전체공지 개교기념일",
        DATE,
        "휴강합니다",
    );
    let delivered = store.deliver_many(&targets, &raw)?;
    // Queued by the delivery, found while it waits, by its recipients only.
    assert_eq!(store.search_backlog(), 1);
    assert_eq!(store.trees.search_docs.len(), 0);
    assert!(store.fsck(false)?.is_clean());
    let waiting = |user: &str| -> Result<usize, StoreError> {
        Ok(store.search(user, &anywhere("개교기념"), 0, 10)?.total)
    };
    assert_eq!(waiting(&users[7])?, 1);
    assert_eq!(waiting("outsider@campus.ac.kr")?, 0);
    assert_eq!(store.index_pending(10)?, 1);
    assert_eq!(store.search_backlog(), 0);
    // Indexed once: one document, a few hundred postings, one entry each.
    assert_eq!(store.trees.search_docs.len(), 1);
    assert_eq!(store.trees.search_shared.len(), 60);
    for (user, id) in users.iter().zip(&delivered) {
        assert_eq!(
            ids(&store, user, &anywhere("개교기념")),
            vec![id.clone()],
            "{user}"
        );
    }
    assert!(ids(&store, "outsider@campus.ac.kr", &anywhere("개교기념")).is_empty());
    store.expunge(&users[0], &delivered[0])?;
    assert!(ids(&store, &users[0], &anywhere("개교기념")).is_empty());
    assert_eq!(
        ids(&store, &users[1], &anywhere("휴강")),
        vec![delivered[1].clone()]
    );
    assert!(store.fsck(false)?.is_clean());
    Ok(())
}

#[test]
fn a_user_never_sees_another_users_mail() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path(), "node-a");
    let mine = store.deliver(
        "kim@x",
        "INBOX",
        &mail("a@x", "kim@x", "비밀 성적", DATE, "A+"),
    )?;
    store.deliver(
        "lee@x",
        "INBOX",
        &mail("a@x", "lee@x", "비밀 성적", DATE, "B0"),
    )?;
    // Both in one delivery: still each their own.
    let both = store.deliver_many(
        &[("kim@x", "INBOX"), ("lee@x", "INBOX")],
        &mail("b@x", "kim@x", "공동 과제", DATE, "조별"),
    )?;
    assert_eq!(ids(&store, "kim@x", &anywhere("성적")), vec![mine]);
    assert_eq!(
        ids(&store, "kim@x", &anywhere("과제")),
        vec![both[0].clone()]
    );
    assert_eq!(
        ids(&store, "lee@x", &anywhere("과제")),
        vec![both[1].clone()]
    );
    assert!(ids(&store, "park@x", &anywhere("성적")).is_empty());
    Ok(())
}

/// Node A's log replayed on node B (blobs first), as replication does.
fn replicate(from: &Store, to: &Store) -> Result<(), StoreError> {
    for op in from.ops_since(from.node(), 0, usize::MAX)? {
        if let Op::Deliver { blob, .. } = &op.op {
            match from.blobs.get(blob)? {
                Some(raw) => to.put_blob(&raw)?,
                // Deleted at the origin before it travelled.
                None => {
                    to.apply_remote_deleted(&op)?;
                    continue;
                }
            };
        }
        to.apply_remote(&op)?;
    }
    Ok(())
}

#[test]
fn the_peer_builds_the_same_index_from_the_ops() -> Result<(), StoreError> {
    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let a = open(da.path(), "node-a");
    let b = open(db.path(), "node-b");
    let user = "lee@campus.ac.kr";
    let kept = a.deliver(
        user,
        "INBOX",
        &mail("a@x", user, "제목", DATE, "장학금신청서 제출"),
    )?;
    let gone = a.deliver(
        user,
        "INBOX",
        &mail("a@x", user, "제목", DATE, "장학금 취소"),
    )?;
    a.expunge(user, &gone)?;
    replicate(&a, &b)?;
    assert_eq!(ids(&b, user, &anywhere("학금신")), vec![kept.clone()]);
    assert_eq!(ids(&b, user, &anywhere("장학금")), vec![kept]);
    assert!(b.fsck(false)?.is_clean());
    Ok(())
}

#[test]
fn a_store_without_an_index_builds_it_and_fsck_repairs_it() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let user = "lee@campus.ac.kr";
    let (one, shared) = {
        let store = open(dir.path(), "node-a");
        let one = store.deliver(
            user,
            "INBOX",
            &mail("a@x", user, "기말고사 시간표", DATE, "본문"),
        )?;
        let others: Vec<String> = (0..55).map(|n| format!("s{n}@x")).collect();
        let mut targets: Vec<(&str, &str)> = others.iter().map(|u| (u.as_str(), "INBOX")).collect();
        targets.push((user, "INBOX"));
        let shared = store.deliver_many(
            &targets,
            &mail("b@x", "all@x", "방학 안내", DATE, "겨울방학"),
        )?;
        // As a store from before search existed: no index at all.
        for tree in [
            &store.trees.search_postings,
            &store.trees.search_docs,
            &store.trees.search_shared,
            &store.trees.search_pending,
        ] {
            tree.clear()?;
        }
        store
            .trees
            .meta
            .remove(index::INDEX_VERSION_KEY_FOR_TESTS)?;
        store.db.flush()?;
        assert!(!store.fsck(false)?.is_clean());
        (one, shared[55].clone())
    };
    let store = open(dir.path(), "node-a");
    assert_eq!(ids(&store, user, &anywhere("시간표")), vec![one.clone()]);
    assert_eq!(ids(&store, user, &anywhere("겨울방")), vec![shared]);
    assert!(store.fsck(false)?.is_clean());
    // A lost document: found by fsck, and repair rebuilds the index.
    store.trees.search_docs.clear()?;
    let report = store.fsck(false)?;
    assert!(!report.is_clean(), "{report}");
    assert!(ids(&store, user, &anywhere("시간표")).is_empty());
    let repaired = store.fsck(true)?;
    assert!(!repaired.repaired.is_empty(), "{repaired}");
    assert_eq!(ids(&store, user, &anywhere("시간표")), vec![one]);
    assert!(store.fsck(false)?.is_clean());
    Ok(())
}

#[test]
fn many_matches_are_capped_and_paged_newest_first() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path(), "node-a");
    let user = "lee@x";
    for n in 0..30 {
        let date = format!("Mon, 3 Mar 2025 09:{n:02}:00 +0900");
        store.deliver(
            user,
            "INBOX",
            &mail("a@x", user, &format!("공지 {n}"), &date, "본문"),
        )?;
    }
    let page = store.search(user, &anywhere("공지"), 10, 10)?;
    assert_eq!(
        (page.total, page.capped, page.messages.len()),
        (30, false, 10)
    );
    assert_eq!(page.messages[0].subject, "공지 19");
    Ok(())
}

#[test]
fn mail_deleted_or_moved_while_waiting_for_the_indexer_is_handled() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path(), "node-a");
    let user = "lee@x";
    let gone = store.deliver(user, "INBOX", &mail("a@x", user, "휴학 신청", DATE, "서류"))?;
    let moved = store.deliver(user, "INBOX", &mail("a@x", user, "복학 신청", DATE, "서류"))?;
    let folder = store.create_folder(user, "학적", None)?;
    store.move_message(user, &moved, &folder)?;
    // Deleted before the indexer saw it: its queue entry goes with it.
    store.expunge(user, &gone)?;
    assert_eq!(store.search_backlog(), 1);
    assert!(store.fsck(false)?.is_clean());
    let in_folder = |folder: &str| SearchQuery {
        anywhere: "신청".into(),
        folder: Some(folder.into()),
        ..SearchQuery::default()
    };
    assert_eq!(ids(&store, user, &in_folder(&folder)), vec![moved]);
    assert!(ids(&store, user, &in_folder("INBOX")).is_empty());
    assert_eq!(store.search_backlog(), 0);
    assert_eq!(store.trees.search_docs.len(), 1);
    assert!(store.fsck(false)?.is_clean());
    // An indexer that finds nothing to do does nothing.
    assert_eq!(store.index_pending(100)?, 0);
    Ok(())
}
