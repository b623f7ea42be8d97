//! The console's directory pages through the real binary: one user's page
//! (edit, limits, force logout, password reset, disable/enable, delete
//! with the data-retention rule), classes with default quotas, lifecycle
//! rule and seats, domains, aliases and groups, CSV import and export; and
//! every one of these URLs refuses a request without an admin session or
//! without the CSRF token.

mod common;

use common::*;

/// POSTs `fields` with the session's CSRF token (read from `page`).
fn post(console: &Web, path: &str, fields: &[(&str, &str)]) -> Response {
    let token = Web::csrf_of(&console.get("/admin/users").body);
    let mut all = fields.to_vec();
    all.push(("csrf_token", &token));
    console.post(path, &all)
}

fn mail(node: &Node, to: &str, subject: &str) -> (bool, String) {
    swaks(&[
        "--server",
        &node.smtp_addr(),
        "--from",
        "dean@example.org",
        "--to",
        to,
        "--header",
        &format!("Subject: {subject}"),
    ])
}

fn users_list(node: &Node) -> String {
    node.cli_ok(&["user", "list"], None)
}

fn audit(console: &Web, q: &str) -> String {
    let page = console.get(&format!("/admin/audit?q={q}"));
    assert_eq!(page.status, 200);
    page.body
}

#[test]
fn an_admin_edits_resets_logs_out_and_deletes_a_user() {
    let node = Node::with_users();
    let console = node.console_login(None);
    let admin_pw = node.admin_password.clone().unwrap();

    // Created in the console form: receives mail and logs in.
    let r = post(
        &console,
        "/admin/users",
        &[
            ("address", "carol@campus.test"),
            ("password", &password_of("carol")),
            ("display_name", "Carol Choi"),
            ("class", "default"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let (ok, t) = mail(&node, "carol@campus.test", "Welcome carol");
    assert!(ok, "{t}");
    let carol = node.web_login("carol");
    wait_until(30, || carol.inbox().contains("Welcome carol").then_some(()))
        .expect("the new user receives mail");

    // Her page; name and limits saved and found by the search.
    let page = console.get("/admin/users/edit?address=carol%40campus.test");
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        form_field(&page.body, "display_name").as_deref(),
        Some("Carol Choi")
    );
    let r = post(
        &console,
        "/admin/users/edit",
        &[
            ("address", "carol@campus.test"),
            ("display_name", "최가을"),
            ("quota_bytes", "5MB"),
            ("quota_messages", ""),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        form_field(&r.body, "display_name").as_deref(),
        Some("최가을")
    );
    assert_eq!(
        form_field(&r.body, "quota_bytes").as_deref(),
        Some("5000000")
    );
    let found = console.get("/admin/users?q=%EA%B0%80%EC%9D%84"); // "가을"
    assert!(found.body.contains("carol@campus.test"), "{}", found.body);
    let r = post(
        &console,
        "/admin/users/edit",
        &[
            ("address", "carol@campus.test"),
            ("display_name", "x"),
            ("quota_bytes", "lots"),
            ("quota_messages", ""),
        ],
    );
    assert_eq!(r.status, 400, "a bad limit is refused: {}", r.body);
    assert_eq!(
        form_field(&r.body, "display_name").as_deref(),
        Some("최가을"),
        "nothing saved"
    );

    // Force logout ends her webmail session.
    assert_eq!(carol.get("/mail").status, 200);
    let r = post(
        &console,
        "/admin/users/logout",
        &[("address", "carol@campus.test")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(carol.get("/mail").status, 303, "session ended");

    // Reset password: refused without the admin's own password.
    let carol = node.web_login("carol");
    let new_pw = "carol-new-secret";
    let r = post(
        &console,
        "/admin/users/password",
        &[
            ("address", "carol@campus.test"),
            ("new_password", new_pw),
            ("admin_password", "wrong-one"),
        ],
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(carol.get("/mail").status, 200, "nothing changed");
    let r = post(
        &console,
        "/admin/users/password",
        &[
            ("address", "carol@campus.test"),
            ("new_password", new_pw),
            ("admin_password", &admin_pw),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(carol.get("/mail").status, 303, "reset ends the session");
    let web = Web::new(&node);
    assert_ne!(web.login("carol@campus.test", &password_of("carol")).0, 303);
    assert_eq!(web.login("carol@campus.test", new_pw).0, 303);

    // Disable (ends the session) and enable again.
    let r = post(
        &console,
        "/admin/users/disable",
        &[("address", "carol@campus.test")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(web.get("/mail").status, 303, "disable ends the session");
    assert!(users_list(&node).contains("carol@campus.test\tdisabled"));
    let r = post(
        &console,
        "/admin/users/enable",
        &[("address", "carol@campus.test")],
    );
    assert_eq!(r.status, 200);
    assert!(users_list(&node).contains("carol@campus.test\tenabled"));

    // Delete: the confirmation page states what happens to the mail.
    let confirm = console.get("/admin/users/delete?address=carol%40campus.test&lang=en");
    assert_eq!(confirm.status, 200);
    assert!(
        confirm.body.contains("deleted for good"),
        "{}",
        confirm.body
    );
    assert!(confirm.body.contains("disable the account instead"));
    assert!(confirm.body.contains("name=\"admin_password\""));
    let r = post(
        &console,
        "/admin/users/delete",
        &[
            ("address", "carol@campus.test"),
            ("confirm", "yes"),
            ("admin_password", "wrong-one"),
        ],
    );
    assert_eq!(r.status, 403);
    assert!(
        users_list(&node).contains("carol@campus.test"),
        "not deleted"
    );
    let r = post(
        &console,
        "/admin/users/delete",
        &[
            ("address", "carol@campus.test"),
            ("confirm", "yes"),
            ("admin_password", &admin_pw),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!users_list(&node).contains("carol@campus.test"));
    wait_until(30, || {
        let (ok, t) = mail(&node, "carol@campus.test", "After deletion");
        (!ok && t.contains("550")).then_some(())
    })
    .expect("mail to a deleted user is refused");
    // The address is free again, and its mailbox starts empty.
    node.add_user("carol");
    let carol = node.web_login("carol");
    assert!(!carol.inbox().contains("Welcome carol"), "old mail is gone");

    // Every step is in the audit log, including the refused ones.
    let log = audit(&console, "carol");
    for action in [
        "user_create",
        "user_set_name",
        "user_quota",
        "user_force_logout",
        "user_reset_password",
        "wrong_admin_password",
        "user_disable",
        "user_enable",
        "user_delete",
    ] {
        assert!(log.contains(action), "{action} audited: {log}");
    }
}

#[test]
fn classes_give_quotas_disable_leavers_and_count_seats() {
    let mut node = Node::new();
    node.cli_ok(&["domain", "add", DOMAIN], None);
    for name in ["alice", "bob", "dave"] {
        node.add_user(name);
    }
    // Alice graduated long ago; her class disables leavers after 10 days.
    let out = node.cli_ok(
        &["class", "add", "alumni", "--disable-after-days", "10"],
        None,
    );
    assert!(out.contains("disabled 10 days after"), "{out}");
    node.cli_ok(
        &[
            "user",
            "set-class",
            &address_of("alice"),
            "alumni",
            "--leave-date",
            "2000-01-31",
        ],
        None,
    );
    let out = node.cli(&["user", "set-class", &address_of("bob"), "nosuch"], None);
    assert!(!out.status.success(), "an undefined class is refused");
    node.start("all");

    // The check at start disabled her, and said so in the audit log.
    wait_until(30, || {
        users_list(&node)
            .contains("alice@campus.test\tdisabled\talumni")
            .then_some(())
    })
    .expect("the lifecycle rule disables alice");
    let console = node.console_login(None);
    let log = audit(&console, "lifecycle_rule");
    assert!(
        log.contains("alice@campus.test") && log.contains("system"),
        "{log}"
    );

    // A class made in the console, with a default of one message.
    let r = post(
        &console,
        "/admin/classes",
        &[
            ("name", "student"),
            ("quota_bytes", ""),
            ("quota_messages", "1"),
            ("disable_after_days", ""),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // A user created in the form straight into the class.
    let r = post(
        &console,
        "/admin/users",
        &[
            ("address", "erin@campus.test"),
            ("password", &password_of("erin")),
            ("display_name", ""),
            ("class", "student"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(users_list(&node).contains("erin@campus.test\tenabled\tstudent"));
    let r = post(
        &console,
        "/admin/users/class",
        &[
            ("address", "bob@campus.test"),
            ("class", "student"),
            ("leave_date", "2001-02-03"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let (ok, t) = mail(&node, "bob@campus.test", "First for bob");
    assert!(ok, "{t}");
    let bob = node.web_login("bob");
    wait_until(30, || bob.inbox().contains("First for bob").then_some(()))
        .expect("the first message fits");
    let (ok, t) = mail(&node, "bob@campus.test", "Second for bob");
    assert!(ok, "{t}");
    wait_until(30, || {
        let list = node.cli_ok(&["queue", "list"], None);
        let id = list.lines().nth(1)?.split('\t').next()?.to_string();
        node.cli_ok(&["queue", "show", &id], None)
            .contains("4.2.2")
            .then_some(())
    })
    .expect("the class's one-message limit defers the second");

    // The licence view counts seats per class.
    let page = console.get("/admin/classes?lang=en");
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("alumni") && page.body.contains("student"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("3 enabled accounts, 1 disabled"),
        "{}",
        page.body
    );
    let listed = node.cli_ok(&["class", "list"], None);
    assert!(
        listed.contains("alumni") && listed.contains("0 enabled, 1 disabled"),
        "{listed}"
    );
    assert!(
        listed.contains("student") && listed.contains("2 enabled, 0 disabled"),
        "{listed}"
    );

    // A rule given later applies at "check now"; bob's session ends.
    let r = post(
        &console,
        "/admin/classes/set",
        &[
            ("name", "student"),
            ("quota_bytes", ""),
            ("quota_messages", ""),
            ("disable_after_days", "0"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post(&console, "/admin/classes/check", &[]);
    assert_eq!(r.status, 200);
    assert!(r.body.contains("bob@campus.test"), "{}", r.body);
    assert!(users_list(&node).contains("bob@campus.test\tdisabled"));
    assert_eq!(
        bob.get("/mail").status,
        303,
        "the disabled user's session ended"
    );
    let log = audit(&console, "class_");
    assert!(
        log.contains("class_add") && log.contains("class_set"),
        "{log}"
    );
    assert!(audit(&console, "lifecycle_check").contains("admin"));
}

#[test]
fn domains_aliases_groups_and_csv_from_the_console() {
    let node = Node::with_users();
    let console = node.console_login(None);

    // Domains: add, then remove only after the confirmation.
    let r = post(&console, "/admin/domains", &[("domain", "Dept.Test")]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(node.cli_ok(&["domain", "list"], None).contains("dept.test"));
    assert!(
        node.data().join("dkim/dept.test").is_dir(),
        "DKIM keys made"
    );
    let confirm = console.get("/admin/domains/remove?domain=dept.test");
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("name=\"confirm\" value=\"yes\""));
    let r = post(
        &console,
        "/admin/domains/remove",
        &[("domain", "dept.test")],
    );
    assert_eq!(r.status, 400, "no confirmation, no removal");
    assert!(node.cli_ok(&["domain", "list"], None).contains("dept.test"));
    let r = post(
        &console,
        "/admin/domains/remove",
        &[("domain", "dept.test"), ("confirm", "yes")],
    );
    assert_eq!(r.status, 200);
    assert!(!node.cli_ok(&["domain", "list"], None).contains("dept.test"));
    let r = post(
        &console,
        "/admin/domains/remove",
        &[("domain", DOMAIN), ("confirm", "yes")],
    );
    assert_eq!(r.status, 400, "a domain with users stays: {}", r.body);
    assert!(
        r.body.contains("아직 사용자 2명과 별칭 0개"),
        "said in Korean: {}",
        r.body
    );

    // A group with two members: both receive its mail.
    let r = post(
        &console,
        "/admin/aliases",
        &[
            ("alias", "physics@campus.test"),
            ("members", "alice@campus.test\nbob@campus.test"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let (ok, t) = mail(&node, "physics@campus.test", "Seminar today");
    assert!(ok, "{t}");
    let (alice, bob) = (node.web_login("alice"), node.web_login("bob"));
    for user in [&alice, &bob] {
        wait_until(30, || user.inbox().contains("Seminar today").then_some(()))
            .expect("each member receives the group's mail");
    }
    let r = post(
        &console,
        "/admin/aliases/edit",
        &[
            ("alias", "physics@campus.test"),
            ("remove", "alice@campus.test"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        node.cli_ok(&["alias", "list"], None).trim(),
        "physics@campus.test\tbob@campus.test"
    );
    let r = post(
        &console,
        "/admin/aliases/edit",
        &[
            ("alias", "physics@campus.test"),
            ("add", "ghost@campus.test"),
        ],
    );
    assert_eq!(r.status, 400, "only local users are members");
    let r = post(
        &console,
        "/admin/aliases/remove",
        &[("alias", "physics@campus.test"), ("confirm", "yes")],
    );
    assert_eq!(r.status, 200);
    wait_until(30, || {
        let (ok, t) = mail(&node, "physics@campus.test", "After removal");
        (!ok && t.contains("550")).then_some(())
    })
    .expect("mail to a removed alias is refused");

    // CSV import: a file with a problem imports nothing and says why.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "address,display_name,class,password\n\
         new1@campus.test,New One,student,new1-secret-pw\n\
         not-an-address,Two,student,\n\
         new3@elsewhere.test,Three,student,\n",
    )
    .unwrap();
    let token = Web::csrf_of(&console.get("/admin/users/import").body);
    let upload = |path: &std::path::Path, token: &str| {
        console.post_multipart(
            "/admin/users/import?lang=en",
            &[("csrf_token", token)],
            &[Upload {
                field: "file",
                path,
                name: "users.csv",
                content_type: "text/csv",
            }],
        )
    };
    let r = upload(&bad, &token);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body.contains("Line 3") && r.body.contains("Line 4"),
        "{}",
        r.body
    );
    assert!(!users_list(&node).contains("new1@"), "all or nothing");
    let r = upload(&bad, "wrong-token");
    assert_eq!(r.status, 403, "the upload needs the CSRF token");

    let good = dir.path().join("good.csv");
    std::fs::write(
        &good,
        "address,display_name,class,password\n\
         new1@campus.test,\"One, New\",student,new1-secret-pw\n\
         new2@campus.test,둘,staff,\n",
    )
    .unwrap();
    let r = upload(&good, &token);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body
            .contains("2 users imported: 1 with a password, 1 without"),
        "{}",
        r.body
    );
    assert_eq!(node.web_login("new1").get("/mail").status, 200);

    // Export: every user, with names, as CSV.
    let csv = console.get("/admin/users/export");
    assert_eq!(csv.status, 200);
    assert!(
        csv.headers
            .to_ascii_lowercase()
            .contains("content-type: text/csv"),
        "{}",
        csv.headers
    );
    assert!(
        csv.body
            .contains("address,display_name,class,leave_date,state"),
        "{}",
        csv.body
    );
    assert!(
        csv.body
            .contains("new1@campus.test,\"One, New\",student,,enabled"),
        "{}",
        csv.body
    );
    assert!(csv.body.contains("new2@campus.test,둘,staff,,enabled"));
    assert!(!csv.body.contains("argon2"), "no password hashes");

    // The CLI, while the appliance runs: disable ends the session at once;
    // delete asks for --delete-mail and empties the mailbox.
    node.cli_ok(&["user", "disable", &address_of("alice")], None);
    assert_eq!(
        alice.get("/mail").status,
        303,
        "CLI disable ends the session"
    );
    let refused = node.cli(&["user", "delete", &address_of("bob")], None);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--delete-mail"));
    let out = node.cli_ok(
        &["user", "delete", &address_of("bob"), "--delete-mail"],
        None,
    );
    assert!(out.contains("with 1 messages"), "{out}");
    assert_eq!(bob.get("/mail").status, 303, "CLI delete ends the session");
    assert!(!users_list(&node).contains("bob@campus.test"));

    let log = audit(&console, "");
    for action in [
        "domain_add",
        "domain_remove",
        "alias_add",
        "alias_members",
        "alias_remove",
        "user_import",
        "user_export",
    ] {
        assert!(log.contains(action), "{action} audited");
    }
}

/// Every directory URL of the console, GET and POST.
const PATHS: [&str; 16] = [
    "/admin/users/edit",
    "/admin/users/enable",
    "/admin/users/logout",
    "/admin/users/password",
    "/admin/users/class",
    "/admin/users/delete",
    "/admin/users/import",
    "/admin/users/export",
    "/admin/classes",
    "/admin/classes/set",
    "/admin/classes/check",
    "/admin/domains",
    "/admin/domains/remove",
    "/admin/aliases",
    "/admin/aliases/edit",
    "/admin/aliases/remove",
];

#[test]
fn every_directory_url_needs_an_admin_session_and_its_csrf_token() {
    let node = Node::with_users();
    let stranger = Web::new(&node);
    let user = node.web_login("alice");
    for web in [&stranger, &user] {
        for path in PATHS {
            let r = web.get(&format!("{path}?address=bob%40campus.test"));
            if std::ptr::eq(web, &user) {
                // A mail user is told the console is not theirs.
                assert_eq!(r.status, 403, "GET {path}");
            } else {
                assert_eq!(r.status, 303, "GET {path}");
                assert!(
                    r.headers.contains("/admin/login"),
                    "GET {path}: {}",
                    r.headers
                );
            }
            let r = web.post(path, &[("address", "bob@campus.test"), ("confirm", "yes")]);
            assert_eq!(r.status, 403, "POST {path}");
        }
    }
    // A signed-in admin's POST without the token changes nothing.
    let console = node.console_login(None);
    for path in PATHS {
        let r = console.post(
            path,
            &[
                ("address", "bob@campus.test"),
                ("alias", "x@campus.test"),
                ("domain", DOMAIN),
                ("name", "student"),
                ("confirm", "yes"),
            ],
        );
        if path == "/admin/users/export" {
            assert_eq!(r.status, 405, "export is a GET");
        } else if path == "/admin/users/import" {
            assert!(
                r.status == 400 || r.status == 403,
                "POST {path}: {}",
                r.status
            );
        } else {
            assert_eq!(r.status, 403, "POST {path} without the token");
        }
    }
    assert!(users_list(&node).contains("bob@campus.test\tenabled"));
    assert!(node.cli_ok(&["domain", "list"], None).contains(DOMAIN));
    assert!(!node.cli_ok(&["class", "list"], None).contains("student"));
}

/// The size the issue names: 30,000 imported students, then the console
/// finds one by address or by Korean name, counts every match, shows one
/// page, counts the seats, and exports them all.
#[test]
fn the_console_searches_thirty_thousand_imported_users() {
    let node = Node::with_users();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("students.csv");
    let mut csv = String::from("address,display_name,class\n");
    for i in 0..30_000 {
        let name = if i == 23_456 {
            "홍길동".to_string()
        } else {
            format!("Student {i}")
        };
        csv.push_str(&format!("s{i:05}@campus.test,{name},student\n"));
    }
    std::fs::write(&file, csv).unwrap();
    node.cli_ok(&["class", "add", "student"], None);
    let out = node.cli_ok(&["user", "import", file.to_str().unwrap()], None);
    assert!(out.contains("imported 30000 users"), "{out}");

    let console = node.console_login(None);
    let all = console.get("/admin/users?lang=en");
    assert!(
        all.body.contains("30002 matching"),
        "alice, bob and the students"
    );
    assert!(all.body.contains("only the first 200 are shown"));
    assert_eq!(
        all.body
            .matches("href=\"/admin/users/edit?address=")
            .count(),
        200
    );
    let one = console.get("/admin/users?lang=en&q=S12345");
    assert!(
        one.body.contains("1 matching") && one.body.contains("s12345@campus.test"),
        "{}",
        one.body
    );
    let by_name = console.get("/admin/users?lang=en&q=%ED%99%8D%EA%B8%B8%EB%8F%99");
    assert!(by_name.body.contains("1 matching") && by_name.body.contains("s23456@campus.test"));
    let many = console.get("/admin/users?lang=en&q=s2");
    assert!(many.body.contains("10000 matching"), "s20000..s29999");

    let classes = console.get("/admin/classes?lang=en");
    assert!(
        classes
            .body
            .contains("30000 enabled, 0 disabled (30000 seats)"),
        "{}",
        classes.body
    );
    let export = console.get("/admin/users/export");
    assert_eq!(export.body.lines().count(), 1 + 30_002);
}
