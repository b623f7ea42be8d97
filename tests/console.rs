//! The admin console through the real binary: the admin signs in with the
//! password printed on first start, creates a user who then receives mail,
//! disables a user whose webmail session ends at once, and finds each action
//! in the audit log; users and strangers get no console page.

mod common;

use common::*;

#[test]
fn an_admin_manages_users_from_the_browser_and_every_action_is_audited() {
    let node = Node::with_users();

    // A wrong password: no session, a clear message.
    let stranger = Web::new(&node);
    let page = stranger.get("/admin/login");
    let token = Web::csrf_of(&page.body);
    let r = stranger.post(
        "/admin/login",
        &[
            ("name", "admin"),
            ("password", "guess-guess"),
            ("csrf_token", &token),
        ],
    );
    assert_ne!(r.status, 303);
    assert_eq!(
        stranger.get("/admin/users").status,
        303,
        "no console without signing in"
    );

    let console = node.console_login(None);
    let users = console.get("/admin/users");
    assert_eq!(users.status, 200);
    assert!(users.body.contains("alice@campus.test"), "{}", users.body);

    // Create carol through the form; she can log in and receives mail.
    let token = Web::csrf_of(&users.body);
    let r = console.post(
        "/admin/users",
        &[
            ("address", "carol@campus.test"),
            ("password", &password_of("carol")),
            ("csrf_token", &token),
        ],
    );
    assert!(
        r.status == 303 || r.status == 200,
        "create: {} {}",
        r.status,
        r.body
    );
    let (ok, t) = swaks(&[
        "--server",
        &node.smtp_addr(),
        "--from",
        "dean@example.org",
        "--to",
        "carol@campus.test",
        "--header",
        "Subject: Welcome carol",
    ]);
    assert!(ok, "{t}");
    let carol = node.web_login("carol");
    wait_until(30, || carol.inbox().contains("Welcome carol").then_some(()))
        .expect("the new user receives mail");

    // A POST without the CSRF token changes nothing.
    let r = console.post("/admin/users/disable", &[("address", "carol@campus.test")]);
    assert_eq!(r.status, 403);
    assert_eq!(carol.get("/mail").status, 200, "still logged in");

    // Disable carol: her open webmail session ends at once.
    let token = Web::csrf_of(&console.get("/admin/users").body);
    let r = console.post(
        "/admin/users/disable",
        &[("address", "carol@campus.test"), ("csrf_token", &token)],
    );
    assert!(
        r.status == 303 || r.status == 200,
        "disable: {} {}",
        r.status,
        r.body
    );
    assert_eq!(carol.get("/mail").status, 303, "carol's session ended");
    assert!(node
        .cli_ok(&["user", "list"], None)
        .contains("carol@campus.test\tdisabled"));

    // The audit log has each action, with the admin and the target.
    let audit = console.get("/admin/audit?q=carol");
    assert_eq!(audit.status, 200);
    assert!(
        audit.body.contains("user_create") && audit.body.contains("user_disable"),
        "{}",
        audit.body
    );
    let failed = console.get("/admin/audit?q=login");
    assert!(
        failed.body.contains("wrong"),
        "a failed sign-in is audited: {}",
        failed.body
    );

    // A mail user's session opens no console page.
    let alice = node.web_login("alice");
    for path in ["/admin", "/admin/users", "/admin/audit"] {
        assert_eq!(alice.get(path).status, 403, "{path}");
    }
    assert_eq!(
        alice
            .post("/admin/users", &[("address", "x@campus.test")])
            .status,
        403
    );
}

/// Every console URL there is (the gate stands before routing, so an
/// unknown one too).
const EVERY_CONSOLE_URL: [&str; 31] = [
    "/admin",
    "/admin/logout",
    "/admin/users",
    "/admin/users/disable",
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
    "/admin/audit",
    "/admin/audit.csv",
    "/admin/storage",
    "/admin/settings",
    "/admin/queues",
    "/admin/queues/act",
    "/admin/queues/delete",
    "/admin/maillog",
    "/admin/nothing-here",
    "/admin/users/",
    "/admin/../admin/users",
];

#[test]
fn a_mail_user_gets_403_on_every_console_url() {
    let node = Node::with_users();
    let alice = node.web_login("alice");
    for path in EVERY_CONSOLE_URL {
        let page = alice.get(path);
        assert_eq!(page.status, 403, "GET {path}");
        assert!(
            !page.body.contains("csrf_token"),
            "GET {path} shows no form"
        );
        let post = alice.post(path, &[("address", "bob@campus.test"), ("confirm", "yes")]);
        assert_eq!(post.status, 403, "POST {path}");
    }
    // Nothing changed, and alice's own webmail still works.
    assert!(node
        .cli_ok(&["user", "list"], None)
        .contains("bob@campus.test\tenabled"));
    assert_eq!(alice.get("/mail").status, 200);
}
