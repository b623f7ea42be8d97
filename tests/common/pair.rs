//! Pairing two test nodes the way an admin does (`pair init` on the first,
//! `pair join` with its token on the second), with free ports for both the
//! replication link and the engines' shadow link.

use super::{address_of, free_port, swaks, wait_until, Node, DOMAIN};

/// A node called `name` serving the test domain, with users alice and bob
/// (before pairing, so both nodes know them).
pub fn named(name: &str) -> Node {
    let node = Node::new();
    node.set_key("name", &format!("\"{name}\""));
    node.cli_ok(&["domain", "add", DOMAIN], None);
    node.add_user("alice");
    node.add_user("bob");
    node
}

/// Delivers a message with `subject` to bob at `node` over SMTP.
pub fn deliver(node: &Node, subject: &str) {
    let (ok, t) = swaks(&[
        "--server",
        &node.smtp_addr(),
        "--from",
        "registrar@example.org",
        "--to",
        &address_of("bob"),
        "--header",
        &format!("Subject: {subject}"),
    ]);
    assert!(ok && t.contains("250 2.0.0"), "{t}");
}

/// The ports one pairing uses.
pub struct PairPorts {
    pub link_a: u16,
    pub link_b: u16,
}

/// Runs `pair init` on `a` and names both engines' shadow ports in both
/// files (before either starts); returns the join token and the ports.
pub fn init(a: &Node, b: &Node) -> (String, PairPorts) {
    let ports = PairPorts {
        link_a: free_port(),
        link_b: free_port(),
    };
    let (engine_a, engine_b) = (free_port(), free_port());
    for (node, mine, theirs) in [(a, engine_a, engine_b), (b, engine_b, engine_a)] {
        node.set_key("engine_listen", &format!("\"127.0.0.1:{mine}\""));
        node.set_key("engine_peer", &format!("\"127.0.0.1:{theirs}\""));
    }
    let out = a.cli_ok(
        &[
            "pair",
            "init",
            "--listen",
            &format!("127.0.0.1:{}", ports.link_a),
        ],
        None,
    );
    let token = out
        .lines()
        .find(|l| l.contains("campusmail pair join"))
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or_else(|| panic!("no token in: {out}"))
        .to_string();
    (token, ports)
}

/// Runs `pair join` on `b` with `token`; returns its output.
pub fn join(b: &Node, token: &str, ports: &PairPorts) -> String {
    b.cli_ok(
        &[
            "pair",
            "join",
            "--listen",
            &format!("127.0.0.1:{}", ports.link_b),
            token,
        ],
        None,
    )
}

/// Two fresh nodes (`named`) paired and both running: (a, b).
pub fn pair_up() -> (Node, Node) {
    let (mut a, mut b) = (named("node-a"), named("node-b"));
    let (token, ports) = init(&a, &b);
    a.start("all");
    let out = join(&b, &token, &ports);
    assert!(out.contains("joined node-a"), "{out}");
    b.start("all");
    (a, b)
}

/// Waits until `pair verify` on `a` says both nodes are identical;
/// returns what it printed.
pub fn wait_identical(a: &Node, b: &Node) -> String {
    wait_until(60, || {
        let out = a.cli(&["pair", "verify"], None);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    })
    .unwrap_or_else(|| {
        panic!(
            "never identical: {:?}\nA:\n{}\nB:\n{}",
            a.cli(&["pair", "verify"], None),
            a.log("all"),
            b.log("all")
        )
    })
}

/// The message id of the message listed with `subject` on `page`.
pub fn id_of(page: &str, subject: &str) -> Option<String> {
    let marker = "href=\"/mail/message/";
    let mut rest = page;
    while let Some(i) = rest.find(marker) {
        let s = &rest[i + marker.len()..];
        let end = s.find('"')?;
        let text_start = s[end..].find('>')? + end + 1;
        let text_end = s[text_start..].find('<')? + text_start;
        if s[text_start..text_end].trim() == subject {
            return Some(s[..end].to_string());
        }
        rest = &s[end..];
    }
    None
}
