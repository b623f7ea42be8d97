//! Tests of the address book (`contacts.rs`).

use super::*;

fn directory() -> (tempfile::TempDir, Directory) {
    let dir = tempfile::tempdir().unwrap();
    let d = Directory::open(&dir.path().join("db"), &dir.path().join("snap.json")).unwrap();
    d.add_domain("campus.test").unwrap();
    d.add_user("kim@campus.test", "long-password").unwrap();
    d.add_user("kimball@campus.test", "long-password").unwrap();
    (dir, d)
}

fn form(name: &str, address: &str) -> ContactForm {
    ContactForm {
        name: name.into(),
        address: address.into(),
        note: String::new(),
    }
}

#[test]
fn checks_each_field_with_its_own_problem() {
    let bad = |f: ContactForm| f.check("kim@campus.test").unwrap_err();
    assert_eq!(bad(form("x", "not an address")), ContactProblem::BadAddress);
    assert_eq!(bad(form("x", "이@campus.test")), ContactProblem::BadAddress);
    assert_eq!(
        bad(form(&"가".repeat(MAX_CONTACT_NAME + 1), "a@b.test")),
        ContactProblem::NameTooLong
    );
    assert_eq!(
        bad(form("a\u{7}b", "a@b.test")),
        ContactProblem::ControlCharacters
    );
    let mut long_note = form("x", "a@b.test");
    long_note.note = "n".repeat(MAX_NOTE + 1);
    assert_eq!(bad(long_note), ContactProblem::NoteTooLong);
    let ok = form(" 이민호 ", " Lee@Remote.TEST ").check("kim@campus.test");
    assert_eq!(
        ok,
        Ok(Contact {
            address: "lee@remote.test".into(),
            name: "이민호".into(),
            note: String::new()
        })
    );
}

#[test]
fn add_edit_delete_and_the_limit() {
    let (_dir, d) = directory();
    let owner = "kim@campus.test";
    d.save_contact(owner, &form("Lee", "lee@remote.test"), None)
        .unwrap();
    assert!(matches!(
        d.save_contact(owner, &form("Lee again", "LEE@remote.test"), None),
        Err(DirectoryError::Contact(ContactProblem::Duplicate))
    ));
    assert!(matches!(
        d.save_contact("ghost@campus.test", &form("x", "x@y.test"), None),
        Err(DirectoryError::NoSuchUser(_))
    ));
    // Edit: a new address replaces the old record.
    d.save_contact(
        owner,
        &form("Lee M.", "lee.m@remote.test"),
        Some("lee@remote.test"),
    )
    .unwrap();
    let book = d.contacts(owner).unwrap();
    assert_eq!(book.len(), 1);
    assert_eq!(book[0].address, "lee.m@remote.test");
    // Another user's book is apart.
    assert!(d.contacts("kimball@campus.test").unwrap().is_empty());
    d.delete_contact(owner, "lee.m@remote.test").unwrap();
    assert!(matches!(
        d.delete_contact(owner, "lee.m@remote.test"),
        Err(DirectoryError::Contact(ContactProblem::NotFound))
    ));
    for i in 0..MAX_CONTACTS {
        d.save_contact(owner, &form("", &format!("p{i}@x.test")), None)
            .unwrap();
    }
    assert!(matches!(
        d.save_contact(owner, &form("", "one-more@x.test"), None),
        Err(DirectoryError::Contact(ContactProblem::BookFull))
    ));
    // Editing one still works when the book is full.
    d.save_contact(owner, &form("P", "p0@x.test"), Some("p0@x.test"))
        .unwrap();
}

#[test]
fn collected_addresses_rank_by_use_and_stay_bounded() {
    let (_dir, d) = directory();
    let owner = "kim@campus.test";
    let to = |a: &[&str], now| {
        let v: Vec<String> = a.iter().map(|s| s.to_string()).collect();
        d.note_sent_to(owner, &v, now).unwrap();
    };
    to(&["a@x.test", "B@x.test", "kim@campus.test", "junk"], 10);
    to(&["b@x.test"], 20);
    let c = d.collected(owner).unwrap();
    let order: Vec<&str> = c.iter().map(|c| c.address.as_str()).collect();
    assert_eq!(order, ["b@x.test", "a@x.test"], "self and junk skipped");
    assert_eq!(c[0].uses, 2);
    for i in 0..MAX_COLLECTED {
        to(&[&format!("n{i}@x.test")], 30 + i as i64);
    }
    let c = d.collected(owner).unwrap();
    assert_eq!(c.len(), MAX_COLLECTED);
    assert_eq!(c[0].address, "b@x.test", "the most used stays");
}

#[test]
fn suggestions_come_from_the_book_the_sent_mail_and_the_campus() {
    let (_dir, d) = directory();
    let owner = "kim@campus.test";
    d.save_contact(owner, &form("이민호", "lee@remote.test"), None)
        .unwrap();
    d.note_sent_to(
        owner,
        &["park@remote.test".into(), "lee@remote.test".into()],
        5,
    )
    .unwrap();
    let all = d.suggestions(owner, "", 10).unwrap();
    let addrs: Vec<&str> = all.iter().map(|s| s.address.as_str()).collect();
    assert_eq!(addrs, ["lee@remote.test", "park@remote.test"]);
    assert_eq!(all[0].value, "이민호 <lee@remote.test>");
    assert_eq!(d.suggestions(owner, "민호", 10).unwrap().len(), 1);
    let campus = d.suggestions(owner, "kimb", 10).unwrap();
    assert_eq!(campus[0].address, "kimball@campus.test");
    // One letter does not list the campus.
    assert!(d.suggestions(owner, "i", 10).unwrap().is_empty());
    // Another user sees none of kim's book.
    assert!(d
        .suggestions("kimball@campus.test", "", 10)
        .unwrap()
        .is_empty());
}

#[test]
fn names_with_specials_are_quoted() {
    assert_eq!(
        Suggestion::new("Lee, \"M\"", "l@x.test").value,
        "\"Lee, \\\"M\\\"\" <l@x.test>"
    );
}

#[test]
fn every_problem_has_its_messages() {
    for lang in [crate::web::i18n::Lang::Ko, crate::web::i18n::Lang::En] {
        let t = lang.catalog();
        for p in ContactProblem::ALL {
            assert_ne!(t.get(p.catalog_key()), p.catalog_key(), "{p:?} {lang:?}");
        }
    }
}

#[test]
fn deleting_the_user_deletes_the_book() {
    let (_dir, d) = directory();
    d.save_contact("kim@campus.test", &form("", "a@x.test"), None)
        .unwrap();
    d.save_contact("kimball@campus.test", &form("", "a@x.test"), None)
        .unwrap();
    d.note_sent_to("kim@campus.test", &["b@x.test".into()], 1)
        .unwrap();
    d.delete_user("kim@campus.test").unwrap();
    d.add_user("kim@campus.test", "long-password").unwrap();
    assert!(d.contacts("kim@campus.test").unwrap().is_empty());
    assert!(d.collected("kim@campus.test").unwrap().is_empty());
    assert_eq!(d.contacts("kimball@campus.test").unwrap().len(), 1);
}
