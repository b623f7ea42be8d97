//! A network partition between two real nodes, made with a TCP proxy on
//! each replication link: while cut off, the nodes take conflicting
//! changes (a flag on one side and a delete for good on the other, a move
//! each way, a folder renamed on one side while mail is moved into it on
//! the other, new mail on both); healed, they end identical (`pair
//! verify`) with the merge rules' outcome and no message lost.

mod common;

use common::pair::{deliver, id_of, named};
use common::proxy::Proxy;
use common::*;

fn act(web: &Web, action: &str, id: &str, extra: &[(&str, &str)]) {
    let token = Web::csrf_of(&web.inbox());
    let mut fields = vec![
        ("csrf_token", token.as_str()),
        ("action", action),
        ("m", id),
    ];
    fields.extend_from_slice(extra);
    let r = web.post("/mail/actions", &fields);
    assert_eq!(r.status, 303, "{action} {id}: {}", r.body);
}

fn folder(web: &Web, id: &str) -> String {
    web.get(&format!("/mail?folder={id}")).body
}

#[test]
fn conflicting_changes_on_both_sides_of_a_partition_converge_and_lose_nothing() {
    let (mut a, mut b) = (named("node-a"), named("node-b"));
    let (token, ports) = common::pair::init(&a, &b);
    a.start("all");
    common::pair::join(&b, &token, &ports);
    // Each node reaches the other's link only through a proxy we control.
    let to_a = Proxy::start(&format!("127.0.0.1:{}", ports.link_a));
    let to_b = Proxy::start(&format!("127.0.0.1:{}", ports.link_b));
    a.kill("all");
    a.set_key("peer", &format!("\"{}\"", to_b.addr()));
    b.set_key("peer", &format!("\"{}\"", to_a.addr()));
    a.start("all");
    b.start("all");

    for subject in ["P1", "P2", "P3", "P4"] {
        deliver(&a, subject);
    }
    let web_a = a.web_login("bob");
    let token_a = Web::csrf_of(&web_a.inbox());
    let r = web_a.post(
        "/mail/folders",
        &[
            ("csrf_token", &token_a),
            ("action", "create"),
            ("name", "Projects"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let projects = folder_id(&web_a.inbox(), "Projects").expect("folder made");
    let inbox_a = web_a.inbox();
    let [p1, p2, p3] = ["P1", "P2", "P3"].map(|s| id_of(&inbox_a, s).expect(s));
    // Both sides have it all before the cut.
    wait_until(30, || {
        let out = a.cli(&["pair", "verify"], None);
        out.status.success().then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "not converged before the cut: {:?}",
            a.cli(&["pair", "verify"], None)
        )
    });

    to_a.cut();
    to_b.cut();
    for node in [&a, &b] {
        wait_until(30, || {
            node.cli_ok(&["pair", "status"], None)
                .contains("link: DOWN")
                .then_some(())
        })
        .unwrap_or_else(|| {
            panic!(
                "the cut did not cut: {}",
                node.cli_ok(&["pair", "status"], None)
            )
        });
    }
    // Sessions made now stay on their own side until the heal.
    let web_a = a.web_login("bob");
    let web_b = b.web_login("bob");

    // Flag on A, delete for good on B: deletion wins.
    act(&web_a, "flag", &p1, &[]);
    act(&web_b, "delete", &p1, &[]);
    let trash_b = folder(&web_b, "Trash");
    assert!(trash_b.contains(&p1), "P1 in B's Trash");
    let token_b = Web::csrf_of(&trash_b);
    let r = web_b.post(
        "/mail/actions",
        &[
            ("csrf_token", &token_b),
            ("action", "delete"),
            ("m", &p1),
            ("folder", "Trash"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    // Move vs move: A files P2 in Projects, then B deletes it to Trash;
    // the later move wins on both.
    act(&web_a, "move", &p2, &[("target", &projects)]);
    std::thread::sleep(std::time::Duration::from_millis(50));
    act(&web_b, "delete", &p2, &[]);
    // Rename vs move in: A renames Projects while B files P3 in it.
    let token_a = Web::csrf_of(&web_a.inbox());
    let r = web_a.post(
        "/mail/folders",
        &[
            ("csrf_token", &token_a),
            ("action", "rename"),
            ("folder", &projects),
            ("name", "Archive"),
            ("parent", ""),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    act(&web_b, "move", &p3, &[("target", &projects)]);
    // New mail on both sides.
    deliver(&a, "P5 during the cut");
    deliver(&b, "P6 during the cut");

    // Still apart: B has not seen A's new mail.
    assert!(id_of(&web_b.inbox(), "P5 during the cut").is_none());
    to_a.heal();
    to_b.heal();
    let verified = wait_until(60, || {
        let out = a.cli(&["pair", "verify"], None);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    })
    .unwrap_or_else(|| {
        panic!(
            "never identical after the heal: {:?}\nA:\n{}\nB:\n{}",
            a.cli(&["pair", "verify"], None),
            a.log("all"),
            b.log("all")
        )
    });
    // P1 gone; P2..P6 kept.
    assert!(verified.contains("the same 5 message(s)"), "{verified}");
    for node in [&a, &b] {
        let web = node.web_login("bob");
        let inbox = web.inbox();
        for subject in ["P4", "P5 during the cut", "P6 during the cut"] {
            assert!(id_of(&inbox, subject).is_some(), "{subject} in INBOX");
        }
        assert_eq!(folder_id(&inbox, "Archive"), Some(projects.clone()));
        assert!(folder_id(&inbox, "Projects").is_none(), "renamed");
        let archive = folder(&web, &projects);
        assert!(archive.contains(&p3), "P3 in the renamed folder");
        assert!(!archive.contains(&p2), "P2 followed the later move");
        let trash = folder(&web, "Trash");
        assert!(trash.contains(&p2), "P2 in Trash");
        assert!(!trash.contains(&p1) && !inbox.contains(&p1), "P1 deleted");
    }
}
