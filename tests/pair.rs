//! Two real nodes on loopback, each its own process, data folder and ports,
//! paired with `campusmail pair init` / `pair join`: mail delivered to one
//! is readable on the other, a flag set on one shows on the other, and
//! after each node was down in turn while mail arrived at the other, both
//! end with identical state (`campusmail pair verify`); users, settings
//! and address books made on one node exist on the other, and the list by
//! conversation is built alike from the replicated ops.

mod common;

use common::pair::{deliver, named};
use common::*;

fn wait_for(node: &Node, what: &str, check: impl Fn(&str) -> bool) -> String {
    let web = node.web_login("bob");
    wait_until(30, || {
        let page = web.inbox();
        check(&page).then_some(page)
    })
    .unwrap_or_else(|| panic!("{what} never happened.\nlog:\n{}", node.log("all")))
}

/// Pairs two fresh nodes; returns (a, b), both running.
fn pair() -> (Node, Node) {
    let (mut a, mut b) = (named("node-a"), named("node-b"));
    let (token, ports) = common::pair::init(&a, &b);
    a.start("all");
    let out = common::pair::join(&b, &token, &ports);
    assert!(out.contains("joined node-a"), "{out}");
    // The token was for one node only.
    let c = named("node-c");
    let again = c.cli(
        &[
            "pair",
            "join",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            &token,
        ],
        None,
    );
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("refused the join"),
        "{again:?}"
    );
    b.start("all");
    (a, b)
}

#[test]
fn mail_and_flags_cross_the_pair_and_both_converge_after_downtime() {
    let (mut a, mut b) = pair();

    deliver(&a, "Delivered to A");
    wait_for(&b, "delivery to A showing on B", |p| {
        p.contains("Delivered to A")
    });

    // Reading it on B marks it read on A too.
    let web_b = b.web_login("bob");
    let link = web_b
        .message_links()
        .first()
        .cloned()
        .expect("a message on B");
    assert_eq!(web_b.get(&link).status, 200);
    wait_for(&a, "the read flag from B showing on A", |p| {
        p.contains("Delivered to A") && !p.contains("class=\"unread\"")
    });

    let status = a.cli_ok(&["pair", "status"], None);
    assert!(status.contains("link: up"), "{status}");
    assert!(status.contains("peer: node-b"), "{status}");

    // B down: mail keeps arriving at A. Then A down: mail arrives at B.
    b.kill("all");
    for i in 0..3 {
        deliver(&a, &format!("While B was down {i}"));
    }
    b.start("all");
    wait_for(&b, "B catching up", |p| p.contains("While B was down 2"));
    a.kill("all");
    for i in 0..2 {
        deliver(&b, &format!("While A was down {i}"));
    }
    a.start("all");
    wait_for(&a, "A catching up", |p| p.contains("While A was down 1"));

    let verified = wait_until(30, || {
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
    });
    assert!(verified.contains("identical"), "{verified}");
    assert!(verified.contains("the same 6 message(s)"), "{verified}");
    assert_eq!(a.web_login("bob").message_links().len(), 6);
    assert_eq!(b.web_login("bob").message_links().len(), 6);
}

#[test]
fn a_login_on_one_node_ends_the_session_on_the_other() {
    let (a, b) = pair();
    let on_a = a.web_login("bob");
    assert_eq!(on_a.get("/mail").status, 200);
    let on_b = b.web_login("bob");
    // Within a second or two (the link streams the login op), A's session
    // ends and says why: the login on B, with its time and IP.
    let page = wait_until(10, || {
        let r = on_a.get("/mail?lang=en");
        r.body.contains("logged in elsewhere").then_some(r.body)
    })
    .unwrap_or_else(|| {
        panic!(
            "A's session lived on.\nA:\n{}\nB:\n{}",
            a.log("all"),
            b.log("all")
        )
    });
    assert!(page.contains("127.0.0.1"), "{page}");
    // And the new session on B is not ended by anything coming back.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(on_b.get("/mail").status, 200);
}

#[test]
fn users_made_on_one_node_exist_on_the_other() {
    let (a, b) = pair();
    // Made on A while both run (through A's control socket).
    a.add_user("carol");
    // B knows carol soon: she can log in there and B's engine takes her mail.
    let web = Web::new(&b);
    wait_until(15, || {
        let (status, _) = web.login(&address_of("carol"), &password_of("carol"));
        (status == 303).then_some(())
    })
    .unwrap_or_else(|| panic!("carol never reached B.\nB:\n{}", b.log("all")));
    // B's engine reads the directory from its snapshot, republished a
    // moment after the change arrives: until then it may still say 550.
    wait_until(15, || {
        let (ok, t) = swaks(&[
            "--server",
            &b.smtp_addr(),
            "--from",
            "registrar@example.org",
            "--to",
            &address_of("carol"),
            "--header",
            "Subject: Welcome Carol",
        ]);
        (ok && t.contains("250 2.0.0")).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "B's engine never accepted mail for carol.\nB:\n{}",
            b.log("all")
        )
    });
    let on_a = a.web_login("carol");
    wait_until(20, || on_a.inbox().contains("Welcome Carol").then_some(()))
        .unwrap_or_else(|| panic!("mail to carol via B never showed on A"));
    // A change on B (disable) reaches A too.
    b.cli_ok(&["user", "disable", &address_of("carol")], None);
    wait_until(15, || {
        let list = a.cli_ok(&["user", "list"], None);
        list.lines()
            .any(|l| l.starts_with(&address_of("carol")) && l.contains("disabled"))
            .then_some(())
    })
    .unwrap_or_else(|| panic!("the disable never reached A"));
    // ... and ends carol's webmail session there as well.
    wait_until(15, || (on_a.get("/mail").status == 303).then_some(()))
        .unwrap_or_else(|| panic!("carol's session on A outlived the disable on B"));
    // User classes travel too.
    a.cli_ok(&["class", "add", "staff", "--quota-bytes", "2GB"], None);
    wait_until(15, || {
        b.cli_ok(&["class", "list"], None)
            .contains("staff\tquota 2000000000 bytes")
            .then_some(())
    })
    .unwrap_or_else(|| panic!("the class never reached B"));
    // Deleting carol on B deletes her mail on A too: a new carol made on A
    // later starts with an empty mailbox.
    b.cli_ok(
        &["user", "delete", &address_of("carol"), "--delete-mail"],
        None,
    );
    wait_until(15, || {
        (!a.cli_ok(&["user", "list"], None)
            .contains(&address_of("carol")))
        .then_some(())
    })
    .unwrap_or_else(|| panic!("the delete never reached A"));
    a.add_user("carol");
    let again = a.web_login("carol");
    assert!(
        !again.inbox().contains("Welcome Carol"),
        "the deleted mailbox's mail came back on A"
    );
}

#[test]
fn settings_saved_on_one_node_apply_on_the_other() {
    let (a, b) = pair();
    let alice = a.web_login("alice");
    let page = alice.get("/mail/settings");
    let token = Web::csrf_of(&page.body);
    for fields in [
        vec![("section", "language"), ("language", "en")],
        vec![("section", "forward"), ("forward_to", "bob@campus.test")],
        vec![("section", "list"), ("list_view", "conversations")],
    ] {
        let mut all = vec![("csrf_token", token.as_str())];
        all.extend(fields);
        let r = alice.post("/mail/settings", &all);
        assert_eq!(r.status, 303, "{}", r.body);
    }
    // B's webmail speaks English to alice, and lists her mail by
    // conversation ...
    let on_b = Web::new(&b);
    wait_until(15, || {
        let (status, _) = on_b.login(&address_of("alice"), &password_of("alice"));
        let inbox = on_b.inbox();
        let grouped = inbox.contains("<span aria-current=\"page\">By conversation</span>");
        (status == 303 && inbox.contains("<html lang=\"en\">") && grouped).then_some(())
    })
    .unwrap_or_else(|| panic!("alice's settings never reached B.\nB:\n{}", b.log("all")));
    // ... and B's engine forwards her mail to bob.
    // (The engine reads the forward from its snapshot, republished a
    // moment after the change arrives.)
    wait_until(15, || {
        let snapshot = std::fs::read_to_string(b.data().join("directory.snapshot.json")).ok()?;
        snapshot
            .contains("\"to\": \"bob@campus.test\"")
            .then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "alice's forward never reached B's engine.\nB:\n{}",
            b.log("all")
        )
    });
    let (ok, t) = swaks(&[
        "--server",
        &b.smtp_addr(),
        "--from",
        "registrar@example.org",
        "--to",
        &address_of("alice"),
        "--header",
        "Subject: Forwarded on B",
    ]);
    assert!(ok, "{t}");
    wait_for(&b, "alice's forward applied on B", |p| {
        p.contains("Forwarded on B")
    });
}

#[test]
fn a_wiped_node_is_seeded_from_its_peer_and_its_new_mail_still_crosses() {
    let (a, mut b) = pair();
    for i in 0..3 {
        deliver(&b, &format!("Before the wipe {i}"));
    }
    wait_for(&a, "B's mail on A", |p| p.contains("Before the wipe 2"));

    // B's disk is replaced: its store is gone, the peer still has it all.
    b.kill("all");
    std::fs::remove_dir_all(b.data().join("store")).expect("wipe B's store");
    b.start("all");
    assert!(
        b.log("all").contains("seeded from node-a's snapshot"),
        "{}",
        b.log("all")
    );
    wait_for(&b, "the old mail back on B", |p| {
        p.contains("Before the wipe 2")
    });

    // New changes made on B after the wipe reach A: no sequence number of
    // B's earlier life was used again (A would have ignored it).
    deliver(&b, "After the wipe");
    wait_for(&a, "B's new mail on A", |p| p.contains("After the wipe"));
    let verified = wait_until(30, || {
        let out = a.cli(&["pair", "verify"], None);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    })
    .unwrap_or_else(|| panic!("never identical: {:?}", a.cli(&["pair", "verify"], None)));
    assert!(verified.contains("the same 4 message(s)"), "{verified}");
}

#[test]
fn a_contact_added_on_one_node_is_suggested_on_the_other() {
    let (a, b) = pair();
    let alice_a = a.web_login("alice");
    let page = alice_a.get("/mail/contacts");
    let saved = alice_a.post(
        "/mail/contacts",
        &[
            ("csrf_token", &Web::csrf_of(&page.body)),
            ("action", "save"),
            ("name", "이민호"),
            ("address", "minho@example.org"),
            ("note", "연구실"),
        ],
    );
    assert_eq!(saved.status, 303, "{}", saved.body);
    // Alice on B: the contact is in her book and suggested in compose
    // (the datalist and the script's lookup).
    let alice_b = Web::new(&b);
    let (status, _) = alice_b.login(&address_of("alice"), &password_of("alice"));
    assert_eq!(status, 303);
    wait_until(15, || {
        alice_b
            .get("/mail/compose")
            .body
            .contains("minho@example.org")
            .then_some(())
    })
    .unwrap_or_else(|| panic!("the contact never reached B.\nB:\n{}", b.log("all")));
    assert!(alice_b.get("/mail/contacts").body.contains("연구실"));
    let found = alice_b.get("/mail/suggest?q=minho").body;
    assert!(found.contains("minho@example.org"), "{found}");
    // Deleted on B: gone from A too. (Alice's login on B ended her
    // session on A; she logs in there again.)
    let page = alice_b.get("/mail/contacts");
    let deleted = alice_b.post(
        "/mail/contacts",
        &[
            ("csrf_token", &Web::csrf_of(&page.body)),
            ("action", "delete"),
            ("address", "minho@example.org"),
        ],
    );
    assert_eq!(deleted.status, 303, "{}", deleted.body);
    let alice_a = a.web_login("alice");
    wait_until(15, || {
        (!alice_a
            .get("/mail/compose")
            .body
            .contains("minho@example.org"))
        .then_some(())
    })
    .unwrap_or_else(|| panic!("the deletion never reached A.\nA:\n{}", a.log("all")));
}

#[test]
fn the_list_by_conversation_is_the_same_on_both_nodes() {
    let (a, b) = pair();
    for (id, refs) in [
        ("<root@example.org>", ""),
        ("<r1@example.org>", "<root@example.org>"),
    ] {
        let mut args = vec![
            "--server".to_string(),
            a.smtp_addr(),
            "--from".into(),
            "registrar@example.org".into(),
            "--to".into(),
            address_of("bob"),
            "--header".into(),
            "Subject: 수강 정정".into(),
            "--add-header".into(),
            format!("Message-ID: {id}"),
        ];
        if !refs.is_empty() {
            args.push("--add-header".into());
            args.push(format!("References: {refs}"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, t) = swaks(&args);
        assert!(ok, "{t}");
    }
    wait_for(&a, "two messages on A", |p| {
        p.matches("수강 정정").count() >= 2
    });
    // On B, from replicated ops: one row, a conversation of two.
    let web = b.web_login("bob");
    let grouped = wait_until(30, || {
        let page = web.get("/mail?view=conversations").body;
        page.contains("class=\"thread-count\"").then_some(page)
    })
    .unwrap_or_else(|| panic!("the conversation never reached B.\nB:\n{}", b.log("all")));
    assert_eq!(
        Web::links_in(&grouped, "/mail/message/").len(),
        1,
        "{grouped}"
    );
    assert!(grouped.contains("대화 1개"), "{grouped}");
}
