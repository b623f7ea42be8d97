//! Mail clients submitting through 587 (STARTTLS) and 465 (implicit TLS):
//! AUTH only after TLS, right passwords only, and the mail reaches the
//! local recipient's webmail inbox.

mod common;

use base64::Engine;
use common::*;

fn submission(node: &Node) -> String {
    format!("127.0.0.1:{}", node.ports.submission)
}

#[test]
fn alice_sends_to_bob_with_starttls_and_auth() {
    let node = Node::with_users();
    let (ok, t) = submit_as(
        &node,
        "alice",
        &address_of("alice"),
        &address_of("bob"),
        &[
            "--header",
            "Subject: Meeting at three",
            "--body",
            "See you in room 301.",
        ],
    );
    assert!(ok, "{t}");
    assert!(t.contains("235 2.7.0"), "{t}");
    assert!(t.contains("250 2.0.0"), "{t}");

    // Same again over implicit TLS with AUTH LOGIN.
    let (ok, t) = swaks(&[
        "--server",
        &format!("127.0.0.1:{}", node.ports.submissions),
        "--tls-on-connect",
        "--auth",
        "LOGIN",
        "--auth-user",
        &address_of("alice"),
        "--auth-password",
        &password_of("alice"),
        "--from",
        &address_of("alice"),
        "--to",
        &address_of("bob"),
        "--header",
        "Subject: Room changed",
        "--body",
        "Now room 302.",
    ]);
    assert!(ok, "{t}");

    let bob = node.web_login("bob");
    let inbox = wait_until(30, || {
        let page = bob.inbox();
        (page.contains("Meeting at three") && page.contains("Room changed")).then_some(page)
    })
    .unwrap_or_else(|| panic!("submitted mail not delivered: {}", node.log("all")));
    assert!(inbox.contains("alice@campus.test"), "{inbox}");
    let view = bob.get(&bob.message_links()[0]);
    let received = view.body.contains("302") || view.body.contains("301");
    assert!(received, "{}", view.body);
}

#[test]
fn wrong_password_is_refused() {
    let node = Node::with_users();
    let (ok, t) = swaks(&[
        "--server",
        &submission(&node),
        "-tls",
        "--auth",
        "PLAIN",
        "--auth-user",
        &address_of("alice"),
        "--auth-password",
        "not-her-password",
        "--to",
        &address_of("bob"),
    ]);
    assert!(!ok);
    assert!(t.contains("535 5.7.8"), "{t}");
}

#[test]
fn auth_before_starttls_and_mail_without_auth_are_refused() {
    let node = Node::with_users();
    let mut raw = RawSmtp::connect(&submission(&node));
    let ehlo = raw.cmd("EHLO client.example.org");
    assert!(ehlo.contains("STARTTLS"), "{ehlo}");
    assert!(
        !ehlo.contains("AUTH"),
        "AUTH must not be offered before TLS: {ehlo}"
    );
    let creds = base64::engine::general_purpose::STANDARD.encode(format!(
        "\0{}\0{}",
        address_of("alice"),
        password_of("alice")
    ));
    let r = raw.cmd(&format!("AUTH PLAIN {creds}"));
    assert!(r.starts_with("538 5.7.11"), "{r}");
    let r = raw.cmd("MAIL FROM:<alice@campus.test>");
    assert!(r.starts_with("530 5.7.0"), "{r}");

    // Nothing reached bob.
    let bob = node.web_login("bob");
    assert!(bob.message_links().is_empty());
}

#[test]
fn authenticated_users_may_relay_and_the_mx_port_never_offers_auth() {
    let node = Node::with_users();
    let (ok, t) = submit_as(
        &node,
        "alice",
        &address_of("alice"),
        "friend@elsewhere.example",
        &[],
    );
    assert!(ok, "{t}");

    let mut raw = RawSmtp::connect(&node.smtp_addr());
    raw.cmd("EHLO client.example.org");
    let creds = base64::engine::general_purpose::STANDARD.encode(format!(
        "\0{}\0{}",
        address_of("alice"),
        password_of("alice")
    ));
    let r = raw.cmd(&format!("AUTH PLAIN {creds}"));
    assert!(r.starts_with('5'), "AUTH on the MX port: {r}");
}

#[test]
fn users_may_send_only_as_themselves_or_their_aliases() {
    let node = Node::with_users();
    node.cli_ok(
        &["alias", "add", "office@campus.test", "alice@campus.test"],
        None,
    );
    let send_as = |from: &str| submit_as(&node, "alice", from, &address_of("bob"), &[]);
    let (ok, t) = send_as(&address_of("bob"));
    assert!(!ok);
    assert!(t.contains("553 5.7.1"), "{t}");
    let (ok, t) = send_as("office@campus.test");
    assert!(ok, "{t}");
}
