//! Mail leaving the appliance: MX lookup against a real DNS server on
//! loopback (dnsmasq), opportunistic TLS to a second campusmail, Postfix's
//! smtp-sink as a plain relay host, bounces (RFC 3464) back to the sender's
//! mailbox, temporary failures and silent hosts kept in the queue, the queue
//! commands, the bulk lane, and exactly-once delivery across a SIGKILL.

mod common;

use common::peers::{Dns, Sink, SinkMode};
use common::*;

/// Node A (campus.test: alice, bob) that resolves names through `dns` and
/// delivers to MX hosts on `mx_port`.
fn sender_node(dns: &Dns, mx_port: u16) -> Node {
    let node = Node::new();
    node.set_key("nameservers", &format!("[\"{}\"]", dns.addr()));
    node.set_key("mx_port", &mx_port.to_string());
    node.cli_ok(&["domain", "add", DOMAIN], None);
    node.add_user("alice");
    node.add_user("bob");
    node
}

/// Node B: a second campusmail serving remote.test with user carol, asking
/// `dns` when it checks SPF/DKIM/DMARC of incoming mail.
fn receiving_node(dns: &Dns) -> Node {
    let mut node = Node::new();
    node.set_key("nameservers", &format!("[\"{}\"]", dns.addr()));
    node.cli_ok(&["domain", "add", "remote.test"], None);
    node.cli_ok(
        &["user", "add", "carol@remote.test", "--password-stdin"],
        Some(&password_of("carol")),
    );
    node.start("all");
    node
}

fn zone() -> Vec<String> {
    vec![
        "--mx-host=remote.test,mx.remote.test,10".into(),
        "--host-record=mx.remote.test,127.0.0.1".into(),
        "--address=/nosuch.test/".into(),
    ]
}

fn submit(node: &Node, to: &str, subject: &str) -> String {
    let header = format!("Subject: {subject}");
    let (ok, t) = submit_as(
        node,
        "alice",
        &address_of("alice"),
        to,
        &["--header", &header],
    );
    assert!(ok, "{t}");
    t
}

fn login(node: &Node, address: &str, password: &str) -> Web {
    let web = Web::new(node);
    let (status, body) = web.login(address, password);
    assert_eq!(status, 303, "{body}");
    web
}

fn queue_text(node: &Node, args: &[&str]) -> String {
    let mut all = vec!["queue"];
    all.extend_from_slice(args);
    node.cli_ok(&all, None)
}

#[test]
fn mail_to_another_domain_goes_by_mx_over_tls_and_bounces_come_back_as_dsns() {
    let dns = Dns::start(&zone());
    let remote = receiving_node(&dns);
    let mut node = sender_node(&dns, remote.ports.smtp);
    node.start("all");

    submit(&node, "carol@remote.test", "Joint seminar");
    let carol = login(&remote, "carol@remote.test", &password_of("carol"));
    wait_until(30, || carol.inbox().contains("Joint seminar").then_some(()))
        .unwrap_or_else(|| panic!("not delivered by MX: {}", node.log("all")));
    let view = carol.get(&carol.message_links()[0]);
    assert!(view.status == 200);
    // Opportunistic TLS was used between the two servers.
    let log = node.log("all");
    assert!(log.contains("tls=true"), "{log}");

    // Unknown user at the other side: 550 there, a DSN in alice's inbox here.
    submit(&node, "nobody@remote.test", "To nobody");
    // A domain that does not exist: bounced at once, no retries.
    submit(&node, "someone@nosuch.test", "To nowhere");
    let alice = node.web_login("alice");
    let inbox = wait_until(30, || {
        let links = alice.message_links();
        (links.len() == 2).then_some(links)
    })
    .unwrap_or_else(|| {
        panic!(
            "no bounces for alice: {}\n{}",
            alice.inbox(),
            node.log("all")
        )
    });
    let mut texts = String::new();
    for link in inbox {
        let view = alice.get(&link);
        assert_eq!(view.status, 200);
        texts.push_str(&view.body);
    }
    assert!(
        texts.contains("nobody@remote.test") && texts.contains("5.1.1"),
        "{texts}"
    );
    assert!(
        texts.contains("someone@nosuch.test") && texts.contains("5.1.2"),
        "{texts}"
    );
    assert!(
        texts.contains("전달하지 못했습니다") || texts.contains("could not be delivered"),
        "{texts}"
    );

    // Nothing is left in the queue.
    let list = wait_until(30, || {
        let text = queue_text(&node, &["list"]);
        text.contains("empty").then_some(text)
    });
    assert!(list.is_some(), "{}", queue_text(&node, &["list"]));
}

#[test]
fn relay_host_delivery_to_postfix_smtp_sink() {
    let dns = Dns::start(&zone());
    let dump = tempfile::tempdir().unwrap();
    let port = free_port();
    // smtp-sink drops root privileges to `nobody`, who must write the dumps.
    std::fs::set_permissions(
        dump.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let mut sink = std::process::Command::new("/usr/sbin/smtp-sink");
    if std::env::var("USER").as_deref() == Ok("root") || is_root() {
        sink.args(["-u", "nobody"]);
    }
    let mut sink = sink
        .arg("-d")
        .arg(format!("{}/%M.", dump.path().display()))
        .arg(format!("127.0.0.1:{port}"))
        .arg("10")
        .spawn()
        .expect("smtp-sink is installed (apt-get install postfix)");
    let mut node = sender_node(&dns, 25);
    node.set_key("relay_host", &format!("\"127.0.0.1:{port}\""));
    node.start("all");
    submit(&node, "partner@far-away.example", "Through the relay");
    let found = wait_until(30, || {
        std::fs::read_dir(dump.path())
            .ok()?
            .flatten()
            .find_map(|e| {
                let text = std::fs::read_to_string(e.path()).ok()?;
                text.contains("Through the relay").then_some(text)
            })
    });
    let _ = sink.kill();
    let _ = sink.wait();
    let text = found.unwrap_or_else(|| panic!("smtp-sink got nothing: {}", node.log("all")));
    assert!(text.contains("partner@far-away.example"), "{text}");
}

#[test]
fn temporary_failures_and_silent_hosts_stay_queued_and_admins_can_act() {
    let dns = Dns::start(&zone());
    let busy = Sink::start(SinkMode::TempFailRcpt);
    let silent = Sink::start(SinkMode::Silent);
    let mut node = sender_node(&dns, 25);
    node.add_transport("busy.test", &busy.addr());
    node.add_transport("silent.test", &silent.addr());
    node.set_key("command_timeout", "\"2s\"");
    node.set_key("connect_timeout", "\"2s\"");
    node.start("all");
    submit(&node, "someone@busy.test", "Busy");
    submit(&node, "someone@silent.test", "Silent");

    let find_id = |subject_host: &str| -> String {
        let list = queue_text(&node, &["list"]);
        list.lines()
            .filter(|l| !l.starts_with("ID"))
            .map(|l| l.split('\t').next().unwrap().to_string())
            .find(|id| queue_text(&node, &["show", id]).contains(subject_host))
            .unwrap_or_else(|| panic!("no queued message to {subject_host}: {list}"))
    };
    let busy_id = wait_until(30, || {
        let id = find_id("busy.test");
        let show = queue_text(&node, &["show", &id]);
        show.contains("451").then_some(id)
    })
    .unwrap_or_else(|| panic!("{}", queue_text(&node, &["list"])));
    let silent_id = find_id("silent.test");
    let show = wait_until(30, || {
        let show = queue_text(&node, &["show", &silent_id]);
        show.contains("last error").then_some(show)
    })
    .expect("the silent host times out");
    assert!(show.contains("pending"), "{show}");
    assert!(queue_text(&node, &["stats"]).contains("normal\t2\t2"));

    // Hold, release, retry: once the server recovers, the mail goes out.
    assert!(queue_text(&node, &["hold", &busy_id]).contains("held"));
    assert!(queue_text(&node, &["list"]).contains("held"));
    busy.set_mode(SinkMode::Accept);
    assert!(queue_text(&node, &["retry", &busy_id]).contains("now"));
    assert!(
        busy.messages().is_empty(),
        "a held message is not attempted"
    );
    queue_text(&node, &["release", &busy_id]);
    wait_until(30, || (!busy.messages().is_empty()).then_some(()))
        .expect("delivered after the server recovered");
    // Delete: gone without a bounce (right away, or when the attempt in
    // flight ends).
    let out = queue_text(&node, &["delete", &silent_id]);
    assert!(out.contains("deleted"), "{out}");
    let gone = wait_until(30, || {
        let out = node.cli(&["queue", "show", &silent_id], None);
        (!out.status.success()).then(|| String::from_utf8_lossy(&out.stderr).into_owned())
    })
    .expect("the deleted message leaves the queue");
    assert!(gone.contains("no message"), "{gone}");
}

#[test]
fn bulk_mail_uses_its_own_lane_and_never_blocks_normal_mail() {
    let dns = Dns::start(&zone());
    let stuck = Sink::start(SinkMode::HangAfterData);
    let remote = receiving_node(&dns);
    let mut node = sender_node(&dns, remote.ports.smtp);
    node.add_transport("lists.test", &stuck.addr());
    node.set_key("bulk_recipient_threshold", "3");
    node.set_key("bulk_workers", "1");
    node.start("all");

    // An announcement to many recipients hangs at a slow server...
    let to: Vec<String> = (0..5).map(|i| format!("member{i}@lists.test")).collect();
    submit(&node, &to.join(","), "Announcement");
    let list = wait_until(30, || {
        let l = queue_text(&node, &["list"]);
        l.contains("sending").then_some(l)
    })
    .expect("bulk message in flight");
    assert!(list.contains("\tbulk\t"), "{list}");
    // ...and a second bulk message waits for the one bulk worker...
    submit(&node, &to.join(","), "Second announcement");
    // ...while everyday mail still goes out at once through the normal lane.
    submit(&node, "carol@remote.test", "Everyday mail");
    let carol = login(&remote, "carol@remote.test", &password_of("carol"));
    wait_until(30, || carol.inbox().contains("Everyday mail").then_some(())).unwrap_or_else(|| {
        panic!(
            "normal mail waited behind bulk: {}",
            queue_text(&node, &["list"])
        )
    });
    let stats = queue_text(&node, &["stats"]);
    assert!(stats.contains("bulk\t2"), "{stats}");
}

#[test]
fn sigkill_mid_delivery_still_delivers_every_message_exactly_once() {
    let dns = Dns::start(&zone());
    let sink = Sink::start(SinkMode::Accept);
    let mut node = sender_node(&dns, 25);
    node.add_transport("far.test", &sink.addr());
    node.set_key("normal_per_destination", "1");
    node.start("all");
    for i in 0..4 {
        submit(&node, "reader@far.test", &format!("Issue {i}"));
    }
    wait_until(30, || (sink.messages().len() == 4).then_some(())).expect("first four delivered");

    // The server hangs on the next message; the engine is killed meanwhile.
    sink.set_mode(SinkMode::HangAfterData);
    for i in 4..8 {
        submit(&node, "reader@far.test", &format!("Issue {i}"));
    }
    wait_until(30, || {
        queue_text(&node, &["list"])
            .contains("sending")
            .then_some(())
    })
    .expect("a delivery in flight");
    node.kill("all");
    sink.set_mode(SinkMode::Accept);
    node.start("all");

    let all = wait_until(60, || {
        let m = sink.messages();
        (m.len() >= 8).then_some(m)
    })
    .unwrap_or_else(|| panic!("not all delivered after restart: {}", node.log("all")));
    for i in 0..8 {
        let copies = all
            .iter()
            .filter(|m| m.data.contains(&format!("Subject: Issue {i}\r\n")))
            .count();
        assert_eq!(copies, 1, "Issue {i} arrived {copies} times");
    }
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
