//! The console's operations pages in a real browser (headless Chromium on a
//! phone-sized screen, Korean first): the admin signs in, sees the
//! dashboard's charts styled under the strict CSP, holds and then deletes a
//! stuck message from the Queues page (typing the password again), and
//! reads the mail log and the audit log; every page fits the phone's width.
//! Screenshots land in target/tmp for a person to look at.

mod common;

use common::browser::Browser;
use common::*;

#[test]
fn an_admin_on_a_phone_walks_the_operations_pages() {
    let mut node = Node::new();
    node.cli_ok(&["domain", "add", DOMAIN], None);
    node.add_user("alice");
    node.set_key("sample_every", "\"1s\"");
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

    let browser = Browser::start(390, 844);
    let shot = |name: &str| {
        browser.screenshot(
            &std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("console-{name}.png")),
        )
    };
    let fits = |page: &str| {
        let fits = browser.eval("return document.documentElement.scrollWidth <= window.innerWidth");
        if fits != serde_json::json!(true) {
            shot(&format!("{page}-too-wide"));
            panic!("{page} is wider than the phone: {}", browser.source());
        }
    };
    let base = format!("https://127.0.0.1:{}", node.ports.https);

    browser.goto(&format!("{base}/admin"));
    assert!(browser
        .url_after_navigation("/admin/login")
        .ends_with("/admin/login"));
    assert_eq!(browser.eval("return document.documentElement.lang"), "ko");
    browser.type_into("#name", "admin");
    browser.type_into("#password", node.admin_password.as_deref().unwrap());
    browser.click("button[type=submit]");
    assert!(browser.url_after_navigation("/admin").ends_with("/admin"));

    // The charts are drawn and styled by the static stylesheet (the CSP
    // would have blocked inline styles).
    let stroke = browser.eval(
        "const l = document.querySelector('polyline.ops-line.series-0');\
         return l ? getComputedStyle(l).stroke : 'none'",
    );
    if stroke != "rgb(31, 95, 191)" {
        shot("dashboard");
        panic!("chart line not styled: {stroke} {}", browser.source());
    }
    let charts = browser.eval("return document.querySelectorAll('svg.ops-svg').length");
    assert_eq!(charts, 7);
    fits("dashboard");
    shot("dashboard");
    browser.eval("document.querySelector('.ops-charts').scrollIntoView(); return true");
    shot("dashboard-charts");

    // Queues: the stuck message, held with its button.
    let listed = wait_until(30, || {
        browser.goto(&format!("{base}/admin/queues"));
        browser.source().contains("bob@remote.test").then_some(())
    });
    assert!(listed.is_some(), "{}", browser.source());
    fits("queues");
    shot("queues");
    let held = wait_until(30, || {
        browser.goto(&format!("{base}/admin/queues"));
        browser.click("button[name=action][value=hold]");
        browser.url_after_navigation("/admin/queues/act");
        browser.source().contains("보류했습니다").then_some(())
    });
    if held.is_none() {
        shot("queues-hold");
        panic!("not held: {}", browser.source());
    }
    assert!(browser.source().contains("value=\"release\""));

    // Delete, after the password again.
    browser.click("a[href^='/admin/queues/delete']");
    assert!(browser
        .url_after_navigation("")
        .contains("/admin/queues/delete?id="));
    fits("queue-delete");
    shot("queue-delete");
    browser.type_into("#password", node.admin_password.as_deref().unwrap());
    browser.click("button.ops-danger");
    let deleted = wait_until(15, || {
        browser.source().contains("삭제했습니다").then_some(())
    });
    if deleted.is_none() {
        shot("queue-deleted");
        panic!("not deleted: {}", browser.source());
    }

    // The logs, in English this time.
    browser.goto(&format!("{base}/admin/maillog?lang=en&q=bob"));
    assert!(
        browser.source().contains("deferred (will retry)"),
        "{}",
        browser.source()
    );
    fits("maillog");
    shot("maillog");
    browser.goto(&format!("{base}/admin/audit?q=queue_"));
    let source = browser.source();
    assert!(
        source.contains("queue_hold") && source.contains("queue_delete"),
        "{source}"
    );
    assert_eq!(browser.eval("return document.documentElement.lang"), "en");
    fits("audit");
    shot("audit");
    drop(browser);

    // The dashboard on a desktop screen, for a person to look at.
    let desk = Browser::start(1280, 1400);
    desk.goto(&format!("{base}/admin/login?lang=en"));
    desk.type_into("#name", "admin");
    desk.type_into("#password", node.admin_password.as_deref().unwrap());
    desk.click("button[type=submit]");
    assert!(desk.url_after_navigation("/admin").ends_with("/admin"));
    let fits = desk.eval("return document.documentElement.scrollWidth <= window.innerWidth");
    desk.screenshot(
        &std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-dashboard-desktop.png"),
    );
    assert_eq!(fits, serde_json::json!(true));
}
