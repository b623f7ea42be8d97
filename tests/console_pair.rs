//! The dashboard's peer box and the pair metrics with two real nodes:
//! paired, node A's console shows node B connected and `/metrics` says the
//! link is up; with B stopped, both say it is down, and once it has been
//! down for `[pair] alert_after` an alert is raised: in the log, on the
//! dashboard, in `/metrics` and in `pair status`; B back clears it.

mod common;

use common::*;

fn named(name: &str) -> Node {
    let node = Node::new();
    node.set_key("name", &format!("\"{name}\""));
    node.cli_ok(&["domain", "add", DOMAIN], None);
    node
}

fn metrics(node: &Node) -> String {
    let out = std::process::Command::new("curl")
        .args(["-sk", "--max-time", "30"])
        .arg(format!("https://127.0.0.1:{}/metrics", node.ports.https))
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_peer_box_and_metrics_follow_the_pair_link() {
    let (mut a, mut b) = (named("node-a"), named("node-b"));
    a.set_key("alert_after", "\"1s\"");
    let (token, ports) = common::pair::init(&a, &b);
    a.start("all");
    let console = a.console_login(Some("en"));
    let waiting = console.get("/admin");
    assert!(
        waiting.body.contains("waiting for the second node"),
        "{}",
        waiting.body
    );

    let out = common::pair::join(&b, &token, &ports);
    assert!(out.contains("joined node-a"), "{out}");
    b.start("all");

    let page = wait_until(30, || {
        let page = console.get("/admin");
        page.body.contains("<dd>connected</dd>").then_some(page)
    })
    .unwrap_or_else(|| panic!("A never showed B connected: {}", console.get("/admin").body));
    assert!(page.body.contains("node-b at 127.0.0.1:"), "{}", page.body);
    wait_until(30, || {
        metrics(&a)
            .contains("campusmail_pair_link_up{peer=\"node-b\"} 1\n")
            .then_some(())
    })
    .expect("the link is up in /metrics");
    assert!(metrics(&a).contains("campusmail_pair_behind_ops{peer=\"node-b\"} "));

    b.kill("all");
    wait_until(60, || {
        console
            .get("/admin")
            .body
            .contains("NOT connected")
            .then_some(())
    })
    .unwrap_or_else(|| panic!("A never noticed B is gone: {}", console.get("/admin").body));
    assert!(metrics(&a).contains("campusmail_pair_link_up{peer=\"node-b\"} 0\n"));
    assert!(metrics(&a).contains("campusmail_pair_alert{peer=\"node-b\",alert=\"link_down\"} "));

    let raised = "campusmail_pair_alert{peer=\"node-b\",alert=\"link_down\"} 1\n";
    wait_until(60, || metrics(&a).contains(raised).then_some(()))
        .unwrap_or_else(|| panic!("no alert in /metrics: {}", metrics(&a)));
    assert!(
        a.log("all").contains("pair alert raised"),
        "{}",
        a.log("all")
    );
    let page = console.get("/admin").body;
    assert!(
        page.contains("The link to the peer has been down for"),
        "{page}"
    );
    let status = a.cli_ok(&["pair", "status"], None);
    assert!(
        status.contains("ALERT: the link to the peer is down since"),
        "{status}"
    );

    b.start("all");
    wait_until(60, || (!metrics(&a).contains(raised)).then_some(()))
        .unwrap_or_else(|| panic!("the alert never cleared: {}", metrics(&a)));
    assert!(a.log("all").contains("pair alert cleared"));
}
