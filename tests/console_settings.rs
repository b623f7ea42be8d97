//! The console's settings page through the real binary: values shown with
//! where they come from, a change applying at once (the default limit of
//! one message defers the second delivery with 4.2.2, RFC 3463), bad
//! values refused with their own message and nothing saved, CSRF and the
//! admin gate, each save audited.

mod common;

use common::*;

fn save(console: &Web, fields: &[(&str, &str)]) -> Response {
    let token = Web::csrf_of(&console.get("/admin/settings").body);
    let mut all = fields.to_vec();
    all.push(("csrf_token", &token));
    console.post("/admin/settings", &all)
}

fn mail(node: &Node, to: &str, subject: &str) {
    let (ok, t) = swaks(&[
        "--server",
        &node.smtp_addr(),
        "--from",
        "dean@example.org",
        "--to",
        to,
        "--header",
        &format!("Subject: {subject}"),
    ]);
    assert!(ok, "{t}");
}

#[test]
fn a_default_limit_set_in_the_console_applies_at_once() {
    let node = Node::with_users();
    let console = node.console_login(None);
    let page = console.get("/admin/settings?lang=en");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("from appliance.toml"), "{}", page.body);
    assert!(
        page.body.contains("href=\"/admin/settings\""),
        "in the menu"
    );

    // Refused values: each its own message, nothing saved.
    let r = save(
        &console,
        &[
            ("default_quota", "lots"),
            ("default_quota_messages", "1"),
            ("purge_trash_days", ""),
            ("purge_junk_days", ""),
        ],
    );
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("The default mailbox size is not a size"),
        "{}",
        r.body
    );
    assert!(r.body.contains("value=\"lots\""), "what was typed is kept");
    let r = save(
        &console,
        &[
            ("default_quota", ""),
            ("default_quota_messages", ""),
            ("purge_trash_days", "99999"),
            ("purge_junk_days", ""),
        ],
    );
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("A number of days is not valid"),
        "{}",
        r.body
    );
    assert!(!console
        .get("/admin/settings?lang=en")
        .body
        .contains("set here"));

    // Without the CSRF token, or without an admin session: refused.
    let r = console.post(
        "/admin/settings",
        &[("default_quota_messages", "1"), ("default_quota", "")],
    );
    assert_eq!(r.status, 403);
    let stranger = Web::new(&node);
    assert_eq!(stranger.get("/admin/settings").status, 303);
    assert_eq!(
        stranger
            .post("/admin/settings", &[("default_quota_messages", "1")])
            .status,
        403
    );
    let alice_web = node.web_login("alice");
    assert_eq!(alice_web.get("/admin/settings").status, 403);

    // One message per mailbox by default, from now on.
    let r = save(
        &console,
        &[
            ("default_quota", ""),
            ("default_quota_messages", "1"),
            ("purge_trash_days", "7"),
            ("purge_junk_days", "0"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let page = console.get("/admin/settings?lang=en").body;
    assert!(page.contains("Now: 1 (set here)"), "{page}");
    assert!(page.contains("Now: 7 days (set here)"), "{page}");
    assert!(page.contains("Now: kept forever (set here)"), "{page}");
    mail(&node, &address_of("bob"), "First for bob");
    let bob = node.web_login("bob");
    wait_until(30, || bob.inbox().contains("First for bob").then_some(()))
        .expect("the first message fits");
    mail(&node, &address_of("bob"), "Second for bob");
    let queued = wait_until(30, || {
        let list = node.cli_ok(&["queue", "list"], None);
        let id = list.lines().nth(1)?.split('\t').next()?.to_string();
        node.cli_ok(&["queue", "show", &id], None)
            .contains("4.2.2")
            .then_some(id)
    })
    .expect("the default of one message defers the second");

    // Emptied again: appliance.toml's value (no limit) applies again.
    let r = save(
        &console,
        &[
            ("default_quota", ""),
            ("default_quota_messages", ""),
            ("purge_trash_days", ""),
            ("purge_junk_days", ""),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    node.cli_ok(&["queue", "retry", &queued], None);
    wait_until(30, || bob.inbox().contains("Second for bob").then_some(()))
        .expect("with the limit gone the second message is delivered");
    let page = console.get("/admin/audit?q=settings_change").body;
    assert!(page.matches("settings_change").count() >= 2, "{page}");
}
