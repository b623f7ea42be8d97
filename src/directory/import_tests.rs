//! Tests of `user import`: the CSV reader and the all-or-nothing import.

use super::*;
use crate::directory::snapshot::{AuthOutcome, DirectorySnapshot};

fn open() -> (tempfile::TempDir, Directory) {
    let dir = tempfile::tempdir().unwrap();
    let d = Directory::open(&dir.path().join("db"), &dir.path().join("snap.json")).unwrap();
    d.add_domain("campus.test").unwrap();
    (dir, d)
}

fn lines_of(p: &ImportProblems) -> Vec<usize> {
    p.problems.iter().map(|p| p.line).collect()
}

#[test]
fn columns_in_any_order_quotes_bom_and_crlf() {
    let text = "\u{feff}Password,ADDRESS,class\r\n\
                \"pa,ss \"\"word\"\"\",kim@campus.test,student\r\n\
                \r\n\
                ,lee@campus.test,\r\n\
                \"multi\nline pw\",park@campus.test,staff";
    let rows = parse_csv(text).unwrap();
    assert_eq!(
        rows,
        [
            ImportRow {
                line: 2,
                address: "kim@campus.test".into(),
                class: Some("student".into()),
                password: Some("pa,ss \"word\"".into()),
                display_name: None,
                leave_date: None,
                state: None,
            },
            ImportRow {
                line: 4,
                address: "lee@campus.test".into(),
                class: None,
                password: None,
                display_name: None,
                leave_date: None,
                state: None,
            },
            ImportRow {
                line: 5,
                address: "park@campus.test".into(),
                class: Some("staff".into()),
                password: Some("multi\nline pw".into()),
                display_name: None,
                leave_date: None,
                state: None,
            },
        ]
    );
    // Only an address column is needed.
    let rows = parse_csv("address\nchoi@campus.test\n").unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].class, None);
    assert_eq!(rows[0].password, None);
}

#[test]
fn syntax_problems_are_reported_with_their_lines() {
    let err = parse_csv("address,class\na@campus.test\nb@campus.test,x,y\nc@campus.test,ok\n")
        .unwrap_err();
    assert_eq!(lines_of(&err), [2, 3]);
    assert!(
        err.to_string()
            .contains("line 3: 3 fields, but the header names 2"),
        "{err}"
    );

    let err = parse_csv("name,class\nx,y\n").unwrap_err();
    assert!(err.to_string().contains("unknown column \"name\""), "{err}");
    assert!(err.to_string().contains("no address column"), "{err}");

    let err = parse_csv("address,address\n").unwrap_err();
    assert!(err.to_string().contains("named twice"), "{err}");

    let err = parse_csv("address,password\na@campus.test,\"open\n").unwrap_err();
    assert_eq!(lines_of(&err), [2]);
    assert!(err.to_string().contains("never closed"), "{err}");

    let err = parse_csv("address,password\na@campus.test,ab\"c\n").unwrap_err();
    assert!(
        err.to_string().contains("quote inside an unquoted field"),
        "{err}"
    );

    let err = parse_csv("address,password\na@campus.test,\"abc\"d\n").unwrap_err();
    assert!(err.to_string().contains("after a closing quote"), "{err}");

    let err = parse_csv("\n\n").unwrap_err();
    assert!(err.to_string().contains("the file is empty"), "{err}");
}

#[test]
fn any_bad_row_refuses_the_whole_file_and_lists_every_problem() {
    let (_dir, d) = open();
    d.add_user("taken@campus.test", "taken-password").unwrap();
    d.add_alias("office@campus.test", &["taken@campus.test".into()])
        .unwrap();
    let text = "address,class,password\n\
                good@campus.test,student,\n\
                not-an-address,,\n\
                x@elsewhere.test,,\n\
                Good@campus.test,,\n\
                taken@campus.test,,\n\
                office@campus.test,,\n\
                short@campus.test,,abc\n\
                weird@campus.test,st udent,\n\
                ,student,\n";
    let rows = parse_csv(text).unwrap();
    let err = d.import_users(&rows, false).unwrap_err();
    let DirectoryError::ImportRefused(problems) = &err else {
        panic!("{err}");
    };
    assert_eq!(lines_of(problems), [3, 4, 5, 6, 7, 8, 9, 10]);
    let report = err.to_string();
    for expected in [
        "nothing was imported: 8 problems in 9 rows",
        "line 3: \"not-an-address\" is not a valid mail address",
        "line 4: the domain elsewhere.test is not served here; add it first with `campusmail domain add elsewhere.test`",
        "line 5: good@campus.test is already on line 2",
        "line 6: the user taken@campus.test already exists",
        "line 7: office@campus.test is an alias already",
        "line 8: the password is shorter than 8 characters",
        "line 9: \"st udent\" is not a class name",
        "line 10: no address",
    ] {
        assert!(report.contains(expected), "{expected:?} not in\n{report}");
    }
    // Nothing at all was written.
    assert!(d.user("good@campus.test").unwrap().is_none());
    assert_eq!(d.user_count(), 1);
}

#[test]
fn an_import_creates_every_user_and_publishes_them_once() {
    let (dir, d) = open();
    let mut text = String::from("address,class,password\n");
    text.push_str("Hong@Campus.Test,Staff,hong-password\n");
    for i in 0..500 {
        text.push_str(&format!("student{i}@campus.test,student,\n"));
    }
    text.push_str("kim@campus.test,,\n");
    let rows = parse_csv(&text).unwrap();
    let report = d.import_users(&rows, false).unwrap();
    assert_eq!(
        report,
        ImportReport {
            created: 502,
            with_password: 1,
            skipped_existing: 0
        }
    );
    assert!(report
        .to_string()
        .contains("imported 502 users: 1 with a password, 501 without"));

    let hong = d.user("hong@campus.test").unwrap().unwrap();
    assert_eq!(hong.class, "staff");
    assert!(hong.has_password());
    assert_eq!(
        d.authenticate("hong@campus.test", "hong-password").unwrap(),
        AuthOutcome::Accepted("hong@campus.test".into())
    );
    let kim = d.user("kim@campus.test").unwrap().unwrap();
    assert_eq!(kim.class, "default", "the class `user add` gives");
    assert!(!kim.has_password());
    assert_eq!(
        d.user("student7@campus.test").unwrap().unwrap().class,
        "student"
    );

    // Without a password no login works, however it is tried; mail still arrives.
    for attempt in ["", password::NO_PASSWORD, "anything-long"] {
        assert_eq!(
            d.authenticate("kim@campus.test", attempt).unwrap(),
            AuthOutcome::BadCredentials
        );
    }
    assert_eq!(
        d.mailboxes_for("kim@campus.test").unwrap(),
        ["kim@campus.test"]
    );
    let snap = DirectorySnapshot::read(&dir.path().join("snap.json")).unwrap();
    assert_eq!(snap.users.len(), 502);
    assert_eq!(
        snap.authenticate("kim@campus.test", "anything-long"),
        AuthOutcome::BadCredentials
    );
    assert_eq!(
        snap.authenticate("hong@campus.test", "hong-password"),
        AuthOutcome::Accepted("hong@campus.test".into())
    );

    // An admin sets the password later; then the login works.
    d.set_password("kim@campus.test", "kim-password").unwrap();
    assert_eq!(
        d.authenticate("kim@campus.test", "kim-password").unwrap(),
        AuthOutcome::Accepted("kim@campus.test".into())
    );
}

#[test]
fn skip_existing_loads_only_the_new_rows_of_a_file_loaded_before() {
    let (_dir, d) = open();
    let first = parse_csv("address\na@campus.test\nb@campus.test\n").unwrap();
    d.import_users(&first, false).unwrap();
    let again = parse_csv("address\na@campus.test\nb@campus.test\nc@campus.test\n").unwrap();
    let err = d.import_users(&again, false).unwrap_err().to_string();
    assert!(err.contains("--skip-existing"), "{err}");
    assert!(d.user("c@campus.test").unwrap().is_none());
    let report = d.import_users(&again, true).unwrap();
    assert_eq!((report.created, report.skipped_existing), (1, 2));
    assert!(report
        .to_string()
        .contains("skipped 2 rows whose user already exists"));
    assert_eq!(d.user_count(), 3);
}
