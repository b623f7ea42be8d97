//! The engines' shadow copies (R3) with two real nodes: a message node A
//! accepted is held by node B before the 250; when A delivers it, B drops
//! its copy; when A dies with mail still queued, B delivers that mail
//! itself after `shadow_takeover_after`, and A, restarted, drops it from
//! its queue instead of sending it a second time.

mod common;

use common::peers::{Sink, SinkMode};
use common::*;

fn named(name: &str) -> Node {
    let node = common::pair::named(name);
    node.set_key("shadow_takeover_after", "\"3s\"");
    node
}

/// Queue files B holds for A.
fn shadow_copies(node: &Node) -> Vec<String> {
    std::fs::read_dir(node.data().join("spool/shadow"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".msg"))
                .collect()
        })
        .unwrap_or_default()
}

fn queue_list(node: &Node) -> String {
    node.cli_ok(&["queue", "list"], None)
}

fn send(node: &Node, to: &str, subject: &str) {
    let header = format!("Subject: {subject}");
    let (ok, t) = submit_as(
        node,
        "alice",
        &address_of("alice"),
        to,
        &["--header", &header],
    );
    assert!(ok && t.contains("250 2.0.0"), "{t}");
}

#[test]
fn the_peer_holds_accepted_mail_and_delivers_it_once_when_the_node_dies() {
    let sink = Sink::start(SinkMode::Accept);
    let (mut a, mut b) = (named("node-a"), named("node-b"));
    // A cannot reach far.test (nothing listens there); B can.
    let closed = format!("127.0.0.1:{}", free_port());
    a.add_transport("far.test", &closed);
    b.add_transport("far.test", &sink.addr());
    let (token, ports) = common::pair::init(&a, &b);
    a.start("all");
    let joined = common::pair::join(&b, &token, &ports);
    assert!(joined.contains("joined node-a"), "{joined}");
    b.start("all");
    wait_until(30, || {
        a.log("all")
            .contains("shadow link to the peer engine is up")
            .then_some(())
    })
    .unwrap_or_else(|| panic!("A's shadow link never came up:\n{}", a.log("all")));

    // Local mail is delivered at once; B's copy of it goes away after.
    send(&a, &address_of("bob"), "Delivered by A");
    wait_until(30, || {
        (a.log("all").contains("message finished") && shadow_copies(&b).is_empty()).then_some(())
    })
    .unwrap_or_else(|| panic!("B kept a finished message's copy: {:?}", shadow_copies(&b)));

    // Mail A cannot deliver yet: B holds its copy since before the 250.
    send(&a, "reader@far.test", "Only once");
    let held = shadow_copies(&b);
    assert_eq!(
        held.len(),
        1,
        "B holds exactly the queued message: {held:?}"
    );
    let id = held[0].trim_end_matches(".msg").to_string();
    assert!(queue_list(&a).contains(&id), "{}", queue_list(&a));
    assert!(!a.log("all").contains("accepted without a shadow copy"));
    let stats = b.cli_ok(&["queue", "stats"], None);
    assert!(
        stats.contains("shadow copies held for the peer\t1"),
        "{stats}"
    );

    // A dies. B notices the silence and delivers A's message itself.
    a.kill("all");
    let delivered = wait_until(60, || {
        let m = sink.messages();
        (!m.is_empty()).then_some(m)
    })
    .unwrap_or_else(|| panic!("B never took over:\n{}", b.log("all")));
    assert!(delivered[0].data.contains("Subject: Only once"));
    assert!(b.log("all").contains("took over the peer's message"));

    // A comes back, now able to reach far.test: it must not send it again.
    a.edit_config(&closed, &sink.addr());
    a.start("all");
    // Both, not one then the other: A writes its log line just after the
    // message leaves its queue, and `queue list` can answer in between.
    wait_until(60, || {
        (!queue_list(&a).contains(&id)
            && a.log("all")
                .contains("the peer delivered this message while we were away"))
        .then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "A kept the message B delivered, or never said why it dropped it:\n{}",
            a.log("all")
        )
    });
    let copies = sink
        .messages()
        .iter()
        .filter(|m| m.data.contains("Subject: Only once"))
        .count();
    assert_eq!(copies, 1, "delivered {copies} times");
    // B's record of the takeover is released once A has seen it.
    wait_until(30, || {
        std::fs::read_dir(b.data().join("spool/shadow/taken"))
            .map(|d| d.count() == 0)
            .unwrap_or(false)
            .then_some(())
    })
    .expect("B forgot the takeover once A saw it");
}

#[test]
fn with_the_peer_down_mail_is_accepted_alone_and_the_log_says_so() {
    let (mut a, b) = (named("node-a"), named("node-b"));
    let (token, ports) = common::pair::init(&a, &b);
    a.start("all");
    common::pair::join(&b, &token, &ports);
    // B never starts.
    send(&a, &address_of("bob"), "Alone");
    wait_until(30, || {
        a.log("all")
            .contains("accepted without a shadow copy on the peer")
            .then_some(())
    })
    .unwrap_or_else(|| panic!("no log line:\n{}", a.log("all")));
    let web = a.web_login("bob");
    wait_until(30, || web.inbox().contains("Alone").then_some(()))
        .expect("the message was still delivered");
}

/// The subjects of the messages the flow sends ("Flow-007-end" style, so
/// no subject is part of another).
fn flow_subject(i: usize) -> String {
    format!("Flow-{i:03}-end")
}

#[test]
fn sigkill_at_random_moments_while_mail_flows_into_both_nodes_loses_and_doubles_nothing() {
    use rand::Rng;
    let (mut a, mut b) = (named("node-a"), named("node-b"));
    let (token, ports) = common::pair::init(&a, &b);
    a.start("all");
    common::pair::join(&b, &token, &ports);
    b.start("all");

    const MESSAGES: usize = 40;
    let targets = [a.smtp_addr(), b.smtp_addr()];
    let flow = std::thread::spawn(move || {
        let mut accepted = Vec::new();
        for i in 0..MESSAGES {
            let (ok, t) = swaks(&[
                "--server",
                &targets[i % 2],
                "--from",
                "registrar@example.org",
                "--to",
                &address_of("bob"),
                "--header",
                &format!("Subject: {}", flow_subject(i)),
                "--timeout",
                "10",
            ]);
            if ok && t.contains("250 2.0.0") {
                accepted.push(i);
            }
        }
        accepted
    });
    let mut rng = rand::thread_rng();
    let mut kills = 0;
    while !flow.is_finished() && kills < 4 {
        let pause = rng.gen_range(100..1200);
        std::thread::sleep(std::time::Duration::from_millis(pause));
        a.kill("all");
        kills += 1;
        a.start("all");
    }
    let accepted = flow.join().expect("the flow thread");
    assert!(kills >= 2, "the flow ended before A was killed twice");
    assert!(
        accepted.iter().any(|i| i % 2 == 0),
        "A accepted nothing at all"
    );

    // Every accepted message arrives, on both nodes, and nothing twice: the
    // pair holds exactly as many messages as distinct subjects arrived.
    let web = b.web_login("bob");
    let page = wait_until(90, || {
        let page = web.inbox();
        accepted
            .iter()
            .all(|&i| page.contains(&flow_subject(i)))
            .then_some(page)
    })
    .unwrap_or_else(|| {
        panic!(
            "accepted {accepted:?} but not all arrived:\n{}\nA:\n{}",
            web.inbox(),
            a.log("all")
        )
    });
    let arrived = (0..MESSAGES)
        .filter(|&i| page.contains(&flow_subject(i)))
        .count();
    let verified = wait_until(60, || {
        let out = a.cli(&["pair", "verify"], None);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    })
    .unwrap_or_else(|| panic!("never identical: {:?}", a.cli(&["pair", "verify"], None)));
    assert!(
        verified.contains(&format!("the same {arrived} message(s)")),
        "{arrived} distinct messages arrived, but: {verified}"
    );
}
