//! The console's operations pages through the real binary: the dashboard
//! draws the node's own samples (which survive a restart) as inline SVG
//! under the strict CSP; the queue page holds, releases, retries and, after
//! the admin's password, deletes a message, each action audited and
//! exported as CSV; the mail log shows every delivery attempt; the pages
//! still answer with the engine in another process, or stopped; expired
//! log files are deleted; and no page or action is open without an admin
//! session and its CSRF token.

mod common;

use common::*;

/// True when line `series` of the chart titled `title` rises above the
/// chart's bottom (y = 150) anywhere.
fn rises(body: &str, title: &str, series: &str) -> bool {
    let Some(start) = body.find(&format!("<figcaption>{title} ")) else {
        return false;
    };
    let chart = &body[start..start + body[start..].find("</figure>").unwrap_or(0)];
    let marker = format!("class=\"ops-line {series}\" points=\"");
    chart.split(&marker).skip(1).any(|rest| {
        let points = rest.split('"').next().unwrap_or("");
        points.split(' ').any(|p| {
            p.split(',')
                .nth(1)
                .and_then(|y| y.parse::<f64>().ok())
                .is_some_and(|y| y < 149.9)
        })
    })
}

/// The queue ids listed on a queue page.
fn queued_ids(body: &str) -> Vec<String> {
    body.split("data-id=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_string)
        .collect()
}

fn assert_strict_page(r: &Response) {
    let csp = r
        .headers
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("content-security-policy:")
        })
        .unwrap_or_default();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("style-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(!r.body.contains("style="), "no inline style attribute");
    assert!(!r.body.contains("<script"), "no script");
}

#[test]
fn the_dashboard_charts_the_nodes_own_samples_across_a_restart() {
    let mut node = Node::new();
    node.cli_ok(&["domain", "add", DOMAIN], None);
    node.add_user("alice");
    node.set_key("sample_every", "\"1s\"");
    node.start("all");
    let console = node.console_login(Some("en"));

    let page = console.get("/admin");
    assert_eq!(page.status, 200, "{}", page.body);
    assert_strict_page(&page);
    assert!(
        page.body.contains("<svg class=\"ops-svg\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("running"), "the engine's state");
    assert!(page.body.contains("valid until"), "certificate expiry");
    assert!(page.body.contains("not paired"), "the peer's place");

    // A first sample of the engine, before the mail, to rise from.
    let samples = node.data().join("ops/samples.jsonl");
    wait_until(30, || {
        let text = std::fs::read_to_string(&samples).unwrap_or_default();
        text.contains("\"accepted\":0").then_some(())
    })
    .expect("a sample of the running engine");
    let (ok, t) = swaks(&[
        "--server",
        &node.smtp_addr(),
        "--from",
        "dean@example.org",
        "--to",
        &address_of("alice"),
        "--header",
        "Subject: charted",
    ]);
    assert!(ok, "{t}");
    // Mail in and out show up in the messages chart once sampled.
    let body = wait_until(30, || {
        let body = console.get("/admin?range=hour").body;
        let seen = rises(&body, "Messages per minute", "series-0")
            && rises(&body, "Messages per minute", "series-1");
        seen.then_some(body)
    })
    .unwrap_or_else(|| {
        panic!(
            "the accepted and delivered mail is charted: {}",
            std::fs::read_to_string(node.data().join("ops/samples.jsonl")).unwrap_or_default()
        )
    });
    assert!(body.contains("<polyline class=\"ops-line series-0\" points=\""));
    for range in ["day", "week"] {
        let r = console.get(&format!("/admin?range={range}"));
        assert_eq!(r.status, 200);
        assert!(r.body.contains("aria-current=\"page\""));
    }

    // The mail log has the delivery, to this appliance's mailboxes.
    let log = console.get("/admin/maillog?q=alice");
    assert_eq!(log.status, 200);
    assert!(
        log.body.contains("log-delivered") && log.body.contains(">lmtp<"),
        "{}",
        log.body
    );
    assert_strict_page(&log);

    // Restarted with a sample only every hour, the charts still show what
    // was sampled before: the samples are kept on disk.
    node.kill("all");
    node.set_key("sample_every", "\"1h\"");
    node.start("all");
    let console = node.console_login(Some("en"));
    let body = console.get("/admin?range=hour").body;
    assert!(
        rises(&body, "Messages per minute", "series-0"),
        "samples survived the restart: {body}"
    );
    assert!(node.data().join("ops/samples.jsonl").exists());
}

#[test]
fn queue_actions_are_audited_and_delete_asks_for_the_password_again() {
    let mut node = Node::new();
    node.cli_ok(&["domain", "add", DOMAIN], None);
    node.add_user("alice");
    // Nothing listens there: delivery is deferred and the mail stays queued.
    node.add_transport("remote.test", &format!("127.0.0.1:{}", free_port()));
    node.start("all");
    let (ok, t) = submit_as(
        &node,
        "alice",
        &address_of("alice"),
        "bob@remote.test",
        &["--header", "Subject: stuck"],
    );
    assert!(ok, "{t}");

    // Strangers and mail users get no queue page and no action.
    let stranger = Web::new(&node);
    let alice = node.web_login("alice");
    for web in [&stranger, &alice] {
        for path in [
            "/admin/queues",
            "/admin/queues/delete?id=x",
            "/admin/maillog",
            "/admin/audit.csv",
        ] {
            let r = web.get(path);
            if std::ptr::eq(web, &alice) {
                // A mail user is told the console is not theirs.
                assert_eq!(r.status, 403, "{path}");
            } else {
                assert_eq!(r.status, 303, "{path}");
                assert!(r.headers.contains("/admin/login"), "{path}: {}", r.headers);
            }
        }
        for path in ["/admin/queues/act", "/admin/queues/delete"] {
            assert_eq!(
                web.post(path, &[("id", "x"), ("action", "hold")]).status,
                403,
                "{path}"
            );
        }
    }

    let console = node.console_login(Some("en"));
    let page = wait_until(30, || {
        let r = console.get("/admin/queues?status=deferred");
        (!queued_ids(&r.body).is_empty()).then_some(r)
    })
    .expect("the deferred message is listed");
    assert_strict_page(&page);
    let id = queued_ids(&page.body).remove(0);
    assert!(
        page.body
            .contains("<a href=\"/admin/queues?lane=normal\">Normal</a>: messages 1,"),
        "the lane's size: {}",
        page.body
    );
    assert!(page.body.contains("bob@remote.test"));
    assert!(queued_ids(&console.get("/admin/queues?q=BOB%40remote").body).contains(&id));
    assert!(queued_ids(&console.get("/admin/queues?q=nobody").body).is_empty());
    assert!(queued_ids(&console.get("/admin/queues?lane=bulk").body).is_empty());
    assert!(queued_ids(&console.get("/admin/queues?status=held").body).is_empty());
    let token = Web::csrf_of(&page.body);

    // No CSRF token: refused, nothing held.
    let r = console.post("/admin/queues/act", &[("id", &id), ("action", "hold")]);
    assert_eq!(r.status, 403);
    assert!(!node
        .cli_ok(&["queue", "show", &id], None)
        .contains("held by an admin"));

    let act = |action: &str| {
        console.post(
            "/admin/queues/act",
            &[
                ("id", &id),
                ("action", action),
                ("csrf_token", &token),
                ("back", "status=held"),
            ],
        )
    };
    // Hold (retried until no attempt is running at that moment).
    let held = wait_until(30, || {
        let r = act("hold");
        r.body.contains("is held").then_some(r)
    })
    .expect("the message is held");
    assert_eq!(held.status, 200);
    assert!(
        queued_ids(&held.body).contains(&id),
        "back to the held filter"
    );
    assert!(node
        .cli_ok(&["queue", "show", &id], None)
        .contains("held by an admin"));
    let r = act("release");
    assert!(r.body.contains("was released"), "{}", r.body);
    assert!(!node
        .cli_ok(&["queue", "show", &id], None)
        .contains("held by an admin"));
    wait_until(30, || {
        act("retry").body.contains("tried again now").then_some(())
    })
    .expect("retry");
    assert_eq!(act("explode").status, 400);

    // Delete: a confirmation page, then the password again.
    let confirm = console.get(&format!("/admin/queues/delete?id={id}"));
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("type=\"password\"") && confirm.body.contains("bob@remote.test"));
    let password = node.admin_password.clone().unwrap();
    let r = console.post(
        "/admin/queues/delete",
        &[("id", &id), ("password", &password)],
    );
    assert_eq!(r.status, 403, "no CSRF token: {}", r.body);
    assert!(node.cli_ok(&["queue", "list"], None).contains(&id));
    let r = console.post(
        "/admin/queues/delete",
        &[("id", &id), ("password", "not-it"), ("csrf_token", &token)],
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        node.cli_ok(&["queue", "list"], None).contains(&id),
        "still queued"
    );
    let r = console.post(
        "/admin/queues/delete",
        &[("id", &id), ("csrf_token", &token)],
    );
    assert_eq!(r.status, 400);
    let deleted = wait_until(30, || {
        let r = console.post(
            "/admin/queues/delete",
            &[("id", &id), ("password", &password), ("csrf_token", &token)],
        );
        r.body.contains("was deleted").then_some(r)
    })
    .expect("the message is deleted");
    assert!(!queued_ids(&deleted.body).contains(&id));
    assert!(!node.cli_ok(&["queue", "list"], None).contains(&id));

    // Every action is in the audit log, and the CSV export has them.
    let csv = console.get("/admin/audit.csv?q=queue_");
    assert_eq!(csv.status, 200);
    assert!(csv
        .headers
        .to_ascii_lowercase()
        .contains("content-type: text/csv"));
    for (action, outcome) in [
        ("queue_hold", "ok"),
        ("queue_release", "ok"),
        ("queue_retry", "ok"),
        ("queue_delete", "wrong_password"),
        ("queue_delete", "ok"),
    ] {
        let line = format!("\"{action}\",\"{id}\",\"{outcome}\"");
        assert!(csv.body.contains(&line), "{line} in {}", csv.body);
    }
    assert!(console
        .get("/admin/audit?q=audit_export")
        .body
        .contains("audit_export"));

    // The mail log has the deferred attempts with the reason.
    let log = console.get(&format!("/admin/maillog?q={id}"));
    assert!(
        log.body.contains("log-deferred") && log.body.contains("bob@remote.test"),
        "{}",
        log.body
    );
    assert_eq!(console.get("/admin/maillog?day=yesterday").status, 400);
}

#[test]
fn with_the_engine_apart_the_console_reaches_it_and_says_when_it_is_down() {
    let mut node = Node::new();
    node.cli_ok(&["domain", "add", DOMAIN], None);
    node.add_user("alice");
    // Log files of long ago: each role deletes its own expired ones at start.
    let old_audit = node.data().join("audit/audit-2001-01-01.log");
    let old_mail = node.data().join("logs/mail-2001-01-01.log");
    let other = node.data().join("logs/notes.txt");
    for path in [&old_audit, &old_mail, &other] {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "{}\n").unwrap();
    }
    node.start("mailbox");
    node.start("engine");
    wait_until(30, || {
        (!old_audit.exists() && !old_mail.exists()).then_some(())
    })
    .expect("expired logs are deleted ([logs] keep_days)");
    assert!(other.exists(), "other files are left alone");
    let console = node.console_login(Some("en"));
    let r = console.get("/admin/queues");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("No messages match"));

    node.kill("engine");
    let r = console.get("/admin/queues");
    assert_eq!(r.status, 503);
    assert!(r.body.contains("is not running"), "{}", r.body);
    let dash = console.get("/admin");
    assert_eq!(dash.status, 200);
    assert!(dash.body.contains("not running"));
}
