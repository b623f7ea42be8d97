//! The mail store through the real binary: quotas enforced at delivery,
//! `campusmail store` commands while running and while stopped, fsck after
//! a SIGKILL in the middle of deliveries, several data directories with a
//! drain, and single-instance storage of a message to many local users.

mod common;

use common::*;

fn stats(node: &Node) -> serde_json::Value {
    let out = node.cli_ok(&["store", "stats", "--json"], None);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("store stats --json: {e}: {out}"))
}

fn total(stats: &serde_json::Value, field: &str) -> u64 {
    stats["disks"]
        .as_array()
        .map(|d| d.iter().filter_map(|x| x[field].as_u64()).sum())
        .unwrap_or(0)
}

fn wait_in_inbox(node: &Node, user: &str, text: &str) {
    let web = node.web_login(user);
    wait_until(45, || web.inbox().contains(text).then_some(())).unwrap_or_else(|| {
        panic!(
            "{text:?} never reached {user}'s inbox.\nlog:\n{}",
            node.log("all")
        )
    });
}

/// A message body of about `n` bytes.
fn filler(n: usize) -> String {
    "0123456789 abcdefghijklmnopqrstuvwxyz\n".repeat(n / 38 + 1)
}

fn send(node: &Node, to: &str, subject: &str, size: usize) {
    let body = filler(size);
    let (ok, t) = submit_as(
        node,
        "alice",
        &address_of("alice"),
        to,
        &["--header", &format!("Subject: {subject}"), "--body", &body],
    );
    assert!(ok && t.contains("250 2.0.0"), "{t}");
}

fn queue_id(node: &Node) -> Option<String> {
    let list = node.cli_ok(&["queue", "list"], None);
    list.lines()
        .nth(1)
        .and_then(|l| l.split('\t').next())
        .map(str::to_string)
}

#[test]
fn quotas_defer_a_full_mailbox_and_refuse_a_message_larger_than_the_quota() {
    let node = Node::with_users();
    let bob = address_of("bob");
    let out = node.cli_ok(&["user", "quota", &bob, "--bytes", "6000"], None);
    assert!(out.contains("6000 bytes"), "{out}");

    send(&node, &bob, "First fits", 3000);
    wait_in_inbox(&node, "bob", "First fits");
    // Bob sees how full his mailbox is (about 3000 of 6000 bytes).
    let page = node.web_login("bob").inbox();
    assert!(page.contains("class=\"quota\""), "{page}");
    let value = page
        .split("<meter")
        .nth(1)
        .and_then(|m| m.split("value=\"").nth(1))
        .and_then(|v| v.split('"').next())
        .and_then(|v| v.parse::<u64>().ok());
    assert!(
        matches!(value, Some(50..=90)),
        "meter value {value:?}: {page}"
    );

    // The second would take bob past 6000 bytes: deferred with 452 4.2.2.
    send(&node, &bob, "Second waits", 3000);
    let id = wait_until(30, || {
        let id = queue_id(&node)?;
        let shown = node.cli_ok(&["queue", "show", &id], None);
        shown.contains("4.2.2").then_some(id)
    })
    .unwrap_or_else(|| panic!("no 4.2.2 deferral: {}", node.log("all")));

    // Room is made (the admin lifts the limit); the retry delivers it.
    node.cli_ok(&["user", "quota", &bob, "--bytes", "unlimited"], None);
    node.cli_ok(&["queue", "retry", &id], None);
    wait_in_inbox(&node, "bob", "Second waits");

    // Larger than the whole quota of an empty mailbox: refused for good
    // (552 5.2.2), and the sender is told.
    node.add_user("carol");
    let carol = address_of("carol");
    node.cli_ok(&["user", "quota", &carol, "--bytes", "1000"], None);
    send(&node, &carol, "Far too big", 3000);
    wait_in_inbox(&node, "alice", "Undelivered Mail Returned to Sender");
    let dsn = node.web_login("alice").inbox();
    assert!(dsn.contains("Undelivered"), "{dsn}");

    // Bad limits are refused with a clear message.
    let out = node.cli(&["user", "quota", &bob, "--bytes", "lots"], None);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unlimited"),
        "{out:?}"
    );
}

#[test]
fn sigkill_during_deliveries_leaves_a_store_fsck_passes() {
    let mut node = Node::with_users();
    let bob = address_of("bob");
    let sender = std::thread::spawn({
        let addr = node.smtp_addr();
        let bob = bob.clone();
        move || {
            let mut accepted = 0;
            for i in 0..40 {
                let (ok, t) = swaks(&[
                    "--server",
                    &addr,
                    "--from",
                    "registrar@example.org",
                    "--to",
                    &bob,
                    "--header",
                    &format!("Subject: burst {i}"),
                ]);
                if !(ok && t.contains("250 2.0.0")) {
                    break;
                }
                accepted += 1;
            }
            accepted
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(1500));
    node.kill("all");
    let accepted = sender.join().unwrap_or(0);
    assert!(accepted > 0, "nothing was accepted before the kill");

    // Stopped: the CLI opens the store itself.
    let report = node.cli_ok(&["store", "fsck"], None);
    assert!(report.contains("the store is consistent"), "{report}");

    // Running again: every accepted message arrives exactly once, and the
    // commands go through the running role. The message in flight when the
    // process died may have been made durable without its 250 reaching the
    // client (RFC 5321 §6.1 allows that duplicate-risk window), so one more
    // than the client counted may arrive, never fewer, never twice.
    node.start("all");
    let web = node.web_login("bob");
    let delivered = wait_until(60, || {
        let n = web.message_links().len();
        (n >= accepted).then_some(n)
    })
    .unwrap_or_else(|| {
        panic!(
            "{} of {accepted} delivered.\n{}",
            web.message_links().len(),
            node.log("all")
        )
    });
    assert!(
        delivered <= accepted + 1,
        "{delivered} delivered, {accepted} accepted"
    );
    let report = node.cli_ok(&["store", "fsck"], None);
    assert!(report.contains("the store is consistent"), "{report}");
    let s = stats(&node);
    assert_eq!(s["messages"].as_u64(), Some(delivered as u64), "{s}");
}

#[test]
fn mail_spreads_over_data_directories_and_a_drained_one_can_be_removed() {
    let mut node = Node::new();
    let dirs: Vec<String> = (0..4)
        .map(|i| node.data().join(format!("disk{i}")).display().to_string())
        .collect();
    let list = dirs
        .iter()
        .map(|d| format!("{{ path = \"{d}\", weight = 1 }}"))
        .collect::<Vec<_>>()
        .join(", ");
    node.set_key("data_dirs", &format!("[ {list} ]"));
    node.cli_ok(&["domain", "add", DOMAIN], None);
    node.add_user("alice");
    node.add_user("bob");
    node.start("all");
    for i in 0..40 {
        send(
            &node,
            &address_of("bob"),
            &format!("spread {i}"),
            400 + i * 10,
        );
    }
    let web = node.web_login("bob");
    wait_until(60, || (web.message_links().len() == 40).then_some(()))
        .unwrap_or_else(|| panic!("not all delivered: {}", node.log("all")));
    let s = stats(&node);
    let disks = s["disks"].as_array().cloned().unwrap_or_default();
    assert_eq!(disks.len(), 4, "{s}");
    assert!(
        disks.iter().all(|d| d["blobs"].as_u64() > Some(0)),
        "every directory holds some mail: {s}"
    );

    // Drain one while mail flows, then remove it from the configuration.
    let out = node.cli_ok(&["store", "drain", &dirs[3]], None);
    assert!(out.contains("is empty: remove it"), "{out}");
    send(&node, &address_of("bob"), "after the drain", 500);
    wait_in_inbox(&node, "bob", "after the drain");
    node.kill("all");
    let kept = dirs[..3]
        .iter()
        .map(|d| format!("{{ path = \"{d}\", weight = 1 }}"))
        .collect::<Vec<_>>()
        .join(", ");
    node.set_key("data_dirs", &format!("[ {kept} ]"));
    let report = node.cli_ok(&["store", "fsck"], None);
    assert!(report.contains("the store is consistent"), "{report}");
    node.start("all");
    let web = node.web_login("bob");
    assert_eq!(web.message_links().len(), 41);
    for link in web.message_links().iter().take(5) {
        assert_eq!(web.get(link).status, 200);
    }

    // A directory that still holds mail cannot silently disappear.
    node.kill("all");
    node.set_key(
        "data_dirs",
        &format!("[ {{ path = \"{}\", weight = 1 }} ]", dirs[0]),
    );
    let out = node.cli(&["store", "stats"], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("store drain"), "{err}");
}

#[test]
fn a_message_to_1000_local_users_is_stored_once() {
    let mut node = Node::new();
    node.cli_ok(&["domain", "add", DOMAIN], None);
    node.add_user("alice");
    let mut csv = String::from("address\n");
    let students: Vec<String> = (0..1000).map(|i| format!("s{i:04}@{DOMAIN}")).collect();
    for s in &students {
        csv.push_str(s);
        csv.push('\n');
    }
    let file = node.data().join("students.csv");
    std::fs::write(&file, csv).unwrap();
    node.cli_ok(&["user", "import", file.to_str().unwrap()], None);
    node.start("all");
    let before = stats(&node);

    let size = 20_000;
    let body = filler(size);
    // One To: line naming everyone would be longer than a mail line may be.
    let (ok, t) = submit_as(
        &node,
        "alice",
        &address_of("alice"),
        &students.join(","),
        &[
            "--header",
            "Subject: Registration opens Monday",
            "--header",
            "To: undisclosed-recipients:;",
            "--body",
            &body,
        ],
    );
    assert!(ok && t.contains("250 2.0.0"), "{t}");
    let after = wait_until(90, || {
        let s = stats(&node);
        (s["messages"].as_u64() == Some(1000)).then_some(s)
    })
    .unwrap_or_else(|| panic!("not delivered to all 1000: {}", node.log("all")));
    assert_eq!(after["blobs"].as_u64(), Some(1), "{after}");
    let grown = total(&after, "bytes") - total(&before, "bytes");
    assert!(
        grown > size as u64 && grown < 2 * size as u64,
        "stored bytes grew by {grown} for a {size}-byte message to 1000 users"
    );
    // Each of the 1000 mailboxes lists it (fsck checks listings and counts).
    let report = node.cli_ok(&["store", "fsck"], None);
    assert!(report.contains("1000 message(s)"), "{report}");
    assert!(report.contains("the store is consistent"), "{report}");
}
