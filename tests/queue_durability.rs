//! Accepted mail is never lost: a 250 means the message is on disk, so it
//! survives a SIGKILL of the engine and waits in the queue while the
//! mailbox role is down. These tests run the two roles as separate
//! processes, as the systemd units do.

mod common;

use common::*;

fn send(node: &Node, subject: &str) {
    let (ok, t) = swaks(&[
        "--server",
        &node.smtp_addr(),
        "--from",
        "registrar@example.org",
        "--to",
        &address_of("alice"),
        "--header",
        &format!("Subject: {subject}"),
    ]);
    assert!(ok, "{t}");
    assert!(t.contains("250 2.0.0"), "{t}");
}

fn wait_for_subject(node: &Node, subject: &str) {
    let web = node.web_login("alice");
    wait_until(45, || web.inbox().contains(subject).then_some(())).unwrap_or_else(|| {
        panic!(
            "{subject:?} never delivered.\nengine log:\n{}\nmailbox log:\n{}",
            node.log("engine"),
            node.log("mailbox")
        )
    });
}

fn users() -> Node {
    let node = Node::new();
    node.cli_ok(&["domain", "add", DOMAIN], None);
    node.add_user("alice");
    node
}

#[test]
fn message_survives_sigkill_of_the_engine_right_after_250() {
    let mut node = users();
    // Only the engine runs: the message can only be in its spool.
    node.start("engine");
    send(&node, "Tuition receipt");
    node.kill("engine");

    node.start("mailbox");
    node.start("engine");
    wait_for_subject(&node, "Tuition receipt");
}

#[test]
fn mail_waits_in_the_queue_while_the_mailbox_role_is_down() {
    let mut node = users();
    node.start("mailbox");
    node.start("engine");
    send(&node, "Before the outage");
    wait_for_subject(&node, "Before the outage");

    node.kill("mailbox");
    send(&node, "During the outage");
    node.start("mailbox");
    wait_for_subject(&node, "During the outage");

    // Delivered once, not twice.
    let web = node.web_login("alice");
    assert_eq!(web.message_links().len(), 2, "{}", web.inbox());
}
