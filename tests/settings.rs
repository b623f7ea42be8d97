//! Webmail settings end to end: language saved per user, the signature in
//! compose, validation messages in both languages, CSRF; the auto-reply
//! (RFC 3834) delivered by the real engine to a local sender's mailbox;
//! forwarding to a second local user with and without a copy and to a
//! remote address through Postfix's smtp-sink; mail loops refused by the
//! Received: count (RFC 5321 §6.3).

mod common;

use common::*;

/// Saves one settings form for `web`; returns the reply.
fn save(web: &Web, fields: &[(&str, &str)]) -> Response {
    let page = web.get("/mail/settings");
    assert_eq!(page.status, 200, "{}", page.body);
    let token = Web::csrf_of(&page.body);
    let mut all = vec![("csrf_token", token.as_str())];
    all.extend_from_slice(fields);
    web.post("/mail/settings", &all)
}

fn save_ok(web: &Web, fields: &[(&str, &str)]) {
    let r = save(web, fields);
    assert_eq!(r.status, 303, "settings not saved: {}", r.body);
}

/// How many messages in `web`'s inbox have `subject` (escaped as the page shows it).
fn count_subject(web: &Web, subject: &str) -> usize {
    web.inbox().matches(&format!(">{subject}</a>")).count()
}

fn wait_for_subject(web: &Web, subject: &str, node: &Node) {
    wait_until(30, || (count_subject(web, subject) > 0).then_some(()))
        .unwrap_or_else(|| panic!("{subject:?} never arrived: {}", node.log("all")));
}

#[test]
fn language_is_saved_per_user_and_used_after_login_only() {
    let node = Node::with_users();
    let alice = node.web_login("alice");
    assert!(alice.inbox().contains("<html lang=\"ko\">"));
    save_ok(&alice, &[("section", "language"), ("language", "en")]);
    let page = alice.get("/mail/settings?done=language");
    assert!(page.body.contains("<html lang=\"en\">"), "{}", page.body);
    assert!(page.body.contains("Saved."), "{}", page.body);
    // Every page after login, whatever the browser asks for.
    assert!(alice
        .get("/mail?lang=ko")
        .body
        .contains("<html lang=\"en\">"));
    assert!(alice
        .get("/mail/compose")
        .body
        .contains("<html lang=\"en\">"));
    // A new login elsewhere (another browser) gets English once logged
    // in; its login page follows the browser (the default, Korean).
    let other = Web::new(&node);
    assert!(other.get("/login").body.contains("<html lang=\"ko\">"));
    assert_eq!(
        other.login(&address_of("alice"), &password_of("alice")).0,
        303
    );
    assert!(other.inbox().contains("<html lang=\"en\">"));
    // Bob did not choose: his pages stay Korean.
    let bob = node.web_login("bob");
    assert!(bob.inbox().contains("<html lang=\"ko\">"));
    // Back to "as the browser asks".
    save_ok(&other, &[("section", "language"), ("language", "")]);
    assert!(other.inbox().contains("<html lang=\"ko\">"));
}

#[test]
fn forms_need_their_csrf_token_and_bad_values_get_clear_messages() {
    let node = Node::with_users();
    let alice = node.web_login("alice");
    let forged = alice.post(
        "/mail/settings",
        &[("section", "signature"), ("signature", "forged")],
    );
    assert_eq!(forged.status, 403, "{}", forged.body);
    let long = "가".repeat(1001);
    let r = save(&alice, &[("section", "signature"), ("signature", &long)]);
    assert_eq!(r.status, 400);
    assert!(r.body.contains("서명이 너무 깁니다"), "{}", r.body);
    // What was typed comes back in the form.
    assert!(r.body.contains(&long[..30]), "typed text kept");
    save_ok(&alice, &[("section", "language"), ("language", "en")]);
    let cases: [(&[(&str, &str)], &str); 6] = [
        (
            &[("section", "forward"), ("forward_to", "ghost@campus.test")],
            "No one receives mail at that address",
        ),
        (
            &[("section", "forward"), ("forward_to", "not an address")],
            "is not a mail address",
        ),
        (
            &[("section", "forward"), ("forward_to", "Alice@campus.test")],
            "your own address",
        ),
        (
            &[
                ("section", "vacation"),
                ("vacation_enabled", "on"),
                ("vacation_text", ""),
                ("vacation_period", "7"),
            ],
            "Write the reply text",
        ),
        (
            &[
                ("section", "vacation"),
                ("vacation_text", "away"),
                ("vacation_start", "2026-12-10"),
                ("vacation_end", "2026-12-01"),
                ("vacation_period", "7"),
            ],
            "before the first day",
        ),
        (
            &[
                ("section", "vacation"),
                ("vacation_text", "away"),
                ("vacation_period", "seven"),
            ],
            "whole number from 1 to 90",
        ),
    ];
    for (fields, message) in cases {
        let r = save(&alice, fields);
        assert_eq!(r.status, 400, "{fields:?}: {}", r.body);
        assert!(r.body.contains(message), "{fields:?}: {}", r.body);
    }
    let bad = save(&alice, &[("section", "nonsense")]);
    assert_eq!(bad.status, 400);
}

#[test]
fn the_signature_starts_new_messages_and_replies_and_can_be_edited_there() {
    let mut node = Node::with_users();
    let alice = node.web_login("alice");
    save_ok(
        &alice,
        &[
            ("section", "signature"),
            ("signature", "김앨리스\n학생처 <교무팀>"),
        ],
    );
    let compose = alice.get("/mail/compose");
    assert!(
        compose
            .body
            .contains("\n\n-- \n김앨리스\n학생처 &#60;교무팀&#62;\n</textarea>"),
        "{}",
        compose.body
    );
    // A reply: the signature sits above the quote.
    send_fixture(&node, "utf8-korean.eml");
    let link = wait_until(30, || alice.message_links().into_iter().next())
        .unwrap_or_else(|| panic!("no mail: {}", node.log("all")));
    let id = link.trim_start_matches("/mail/message/");
    let reply = alice.get(&format!("/mail/compose?reply={id}"));
    let body = html_unescape(&reply.body);
    let sig = body.find("-- \n김앨리스").expect("signature in the reply");
    let quote = body.find("\n> ").expect("quoted text in the reply");
    assert!(sig < quote, "signature above the quote: {body}");
    // Whatever the user leaves in the form is what is sent.
    let page = alice.get("/mail/compose");
    let token = Web::csrf_of(&page.body);
    let sent = alice.post_multipart(
        "/mail/compose",
        &[
            ("csrf_token", &token),
            ("to", &address_of("bob")),
            ("subject", "Edited signature"),
            ("body", "Hello\n\n-- \nAlice (today only)\n"),
            ("action", "send"),
        ],
        &[],
    );
    assert_eq!(sent.status, 303, "{}", sent.body);
    let bob = node.web_login("bob");
    wait_for_subject(&bob, "Edited signature", &node);
    node.kill("all");
}

/// Turns `name`'s auto-reply on.
fn vacation_on(web: &Web) {
    save_ok(
        web,
        &[
            ("section", "vacation"),
            ("vacation_enabled", "on"),
            ("vacation_subject", ""),
            (
                "vacation_text",
                "12월 31일까지 휴가입니다. Away until 31 December.",
            ),
            ("vacation_period", "7"),
        ],
    );
}

fn mail_bob(node: &Node, from: &str, subject: &str, extra: &[&str]) {
    let header = format!("Subject: {subject}");
    let mut args = vec!["--header", header.as_str()];
    args.extend_from_slice(extra);
    let (ok, t) = submit_as(node, from, &address_of(from), &address_of("bob"), &args);
    assert!(ok, "{t}");
}

#[test]
fn the_auto_reply_answers_once_per_sender_and_never_bulk_or_automatic_mail() {
    let mut node = Node::new();
    node.cli_ok(&["domain", "add", DOMAIN], None);
    for user in ["alice", "bob", "carol", "dave", "news"] {
        node.add_user(user);
    }
    // news@ is a designated bulk sender: its mail takes the bulk lane.
    node.set_key("bulk_senders", &format!("[\"{}\"]", address_of("news")));
    node.start("all");
    let bob = node.web_login("bob");
    vacation_on(&bob);

    // A forged lane mark is removed on the way in: still answered.
    mail_bob(
        &node,
        "alice",
        "Planning meeting",
        &["--header", "X-Campusmail-Lane: bulk"],
    );
    let alice = node.web_login("alice");
    wait_for_subject(&alice, "Auto: Planning meeting", &node);

    // The reply as RFC 3834 wants it.
    let link = alice
        .message_links()
        .into_iter()
        .next()
        .expect("the auto-reply");
    let raw = alice.get(&format!("{link}/raw")).body;
    let raw = html_unescape(&raw);
    assert!(raw.contains("Return-Path: <>"), "null reverse path: {raw}");
    assert!(raw.contains("Auto-Submitted: auto-replied"), "{raw}");
    assert!(raw.contains("In-Reply-To: <"), "{raw}");
    assert!(raw.contains("References: <"), "{raw}");
    assert!(
        raw.contains(&format!("From: <{}>", address_of("bob")))
            || raw.contains(&format!("From: {}", address_of("bob"))),
        "{raw}"
    );

    // Within the period: no second reply. Bulk, list and automatic mail:
    // none at all.
    mail_bob(&node, "alice", "Second note", &[]);
    mail_bob(
        &node,
        "carol",
        "Weekly digest",
        &["--header", "Precedence: bulk"],
    );
    mail_bob(
        &node,
        "carol",
        "Build report",
        &["--header", "Auto-Submitted: auto-generated"],
    );
    mail_bob(
        &node,
        "carol",
        "List post",
        &["--header", "List-Id: <staff.campus.test>"],
    );
    mail_bob(&node, "news", "Campus news", &[]);
    // A marker: dave's mail is answered after all of those were looked at
    // (one worker, in delivery order).
    let bob_inbox = || bob.inbox();
    wait_until(30, || bob_inbox().contains("Campus news").then_some(()))
        .unwrap_or_else(|| panic!("bulk mail not delivered: {}", node.log("all")));
    mail_bob(&node, "dave", "Question", &[]);
    let dave = node.web_login("dave");
    wait_for_subject(&dave, "Auto: Question", &node);

    assert_eq!(count_subject(&alice, "Auto: Planning meeting"), 1);
    assert_eq!(count_subject(&alice, "Auto: Second note"), 0);
    let carol = node.web_login("carol");
    let carol_inbox = carol.inbox();
    assert!(!carol_inbox.contains("Auto:"), "{carol_inbox}");
    let news = node.web_login("news");
    assert!(!news.inbox().contains("Auto:"), "bulk lane answered");
    let log = node.log("all");
    assert!(log.contains("BulkLane"), "{log}");
    node.kill("all");
}

#[test]
fn forwarding_to_a_local_user_with_and_without_a_copy() {
    let mut node = Node::new();
    node.cli_ok(&["domain", "add", DOMAIN], None);
    for user in ["alice", "bob", "carol"] {
        node.add_user(user);
    }
    node.start("all");
    let alice = node.web_login("alice");
    let bob = node.web_login("bob");
    save_ok(
        &alice,
        &[("section", "forward"), ("forward_to", "Bob@Campus.test")],
    );
    let page = alice.get("/mail/settings?done=forward");
    assert!(
        page.body.contains("value=\"bob@campus.test\""),
        "{}",
        page.body
    );
    let send = |subject: &str| {
        let header = format!("Subject: {subject}");
        let (ok, t) = submit_as(
            &node,
            "carol",
            &address_of("carol"),
            &address_of("alice"),
            &["--header", &header],
        );
        assert!(ok, "{t}");
    };
    send("Forwarded only");
    wait_for_subject(&bob, "Forwarded only", &node);
    assert_eq!(count_subject(&alice, "Forwarded only"), 0, "no copy kept");

    save_ok(
        &alice,
        &[
            ("section", "forward"),
            ("forward_to", "bob@campus.test"),
            ("forward_keep", "on"),
        ],
    );
    send("Forwarded and kept");
    wait_for_subject(&bob, "Forwarded and kept", &node);
    wait_for_subject(&alice, "Forwarded and kept", &node);

    // bob forwards back to alice: the loop ends in one mailbox, once.
    save_ok(
        &alice,
        &[("section", "forward"), ("forward_to", "bob@campus.test")],
    );
    save_ok(
        &bob,
        &[("section", "forward"), ("forward_to", "alice@campus.test")],
    );
    send("Round and round");
    wait_for_subject(&alice, "Round and round", &node);
    assert_eq!(count_subject(&alice, "Round and round"), 1);
    assert_eq!(count_subject(&bob, "Round and round"), 0);

    // Forwarding off: mail stays here.
    save_ok(&alice, &[("section", "forward"), ("forward_to", "")]);
    save_ok(&bob, &[("section", "forward"), ("forward_to", "")]);
    send("Not forwarded");
    wait_for_subject(&alice, "Not forwarded", &node);
    node.kill("all");
}

#[test]
fn forwarding_to_a_remote_address_goes_out_through_the_queue_to_smtp_sink() {
    let dump = tempfile::tempdir().unwrap();
    let port = free_port();
    // smtp-sink drops root privileges to `nobody`, who must write the dumps.
    std::fs::set_permissions(
        dump.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let mut sink = std::process::Command::new("/usr/sbin/smtp-sink");
    if is_root() {
        sink.args(["-u", "nobody"]);
    }
    let mut sink = sink
        .arg("-d")
        .arg(format!("{}/%M.", dump.path().display()))
        .arg(format!("127.0.0.1:{port}"))
        .arg("10")
        .spawn()
        .expect("smtp-sink is installed (apt-get install postfix)");
    let mut node = Node::new();
    node.cli_ok(&["domain", "add", DOMAIN], None);
    node.add_user("alice");
    node.add_transport("far-away.example", &format!("127.0.0.1:{port}"));
    node.start("all");
    let alice = node.web_login("alice");
    save_ok(
        &alice,
        &[
            ("section", "forward"),
            ("forward_to", "alice.kim@far-away.example"),
            ("forward_keep", "on"),
        ],
    );
    // From outside, on the MX port, as another server would send it.
    let (ok, t) = swaks(&[
        "--server",
        &node.smtp_addr(),
        "--from",
        "sender@campus.ac.kr",
        "--to",
        &address_of("alice"),
        "--header",
        "Subject: Conference travel",
    ]);
    assert!(ok, "{t}");
    let found = wait_until(30, || {
        std::fs::read_dir(dump.path())
            .ok()?
            .flatten()
            .find_map(|e| {
                let text = std::fs::read_to_string(e.path()).ok()?;
                text.contains("Conference travel").then_some(text)
            })
    });
    let _ = sink.kill();
    let _ = sink.wait();
    let text = found.unwrap_or_else(|| panic!("smtp-sink got nothing: {}", node.log("all")));
    assert!(text.contains("alice.kim@far-away.example"), "{text}");
    // The reverse path stays the original sender's (RFC 5321 §3.9.1).
    assert!(text.contains("sender@campus.ac.kr"), "{text}");
    wait_for_subject(&alice, "Conference travel", &node);
    node.kill("all");
}

#[test]
fn a_message_with_too_many_received_fields_is_refused_as_a_loop() {
    let node = Node::with_users();
    let mut smtp = RawSmtp::connect(&node.smtp_addr());
    assert!(smtp.cmd("EHLO client.example.org").starts_with("250"));
    assert!(smtp
        .cmd("MAIL FROM:<sender@campus.ac.kr>")
        .starts_with("250"));
    assert!(smtp
        .cmd(&format!("RCPT TO:<{}>", address_of("alice")))
        .starts_with("250"));
    assert!(smtp.cmd("DATA").starts_with("354"));
    let mut message = String::new();
    for hop in 0..100 {
        message.push_str(&format!(
            "Received: from relay{hop}.example.org by relay{}.example.org; Tue, 1 Dec 2026 08:00:00 +0000\r\n",
            hop + 1
        ));
    }
    message.push_str("Subject: Looping\r\n\r\nround and round\r\n.\r\n");
    smtp.send(message.as_bytes());
    let reply = smtp.reply();
    assert!(reply.starts_with("554 5.4.6"), "{reply}");
    // 99 hops still pass.
    assert!(smtp
        .cmd("MAIL FROM:<sender@campus.ac.kr>")
        .starts_with("250"));
    assert!(smtp
        .cmd(&format!("RCPT TO:<{}>", address_of("alice")))
        .starts_with("250"));
    assert!(smtp.cmd("DATA").starts_with("354"));
    let fewer = message.split_once("\r\n").map(|(_, rest)| rest).unwrap();
    smtp.send(fewer.as_bytes());
    let reply = smtp.reply();
    assert!(reply.starts_with("250"), "{reply}");
}

#[test]
fn only_the_service_login_may_submit_from_the_null_sender() {
    let node = Node::with_users();
    // A user on the submission port may not hide behind <> (R7).
    let mut s = SubmissionTls::connect(&node);
    let r = s.auth_plain("", &address_of("alice"), &password_of("alice"));
    assert!(r.starts_with("235"), "{r}");
    let r = s.cmd("MAIL FROM:<>");
    assert!(r.starts_with("553"), "{r}");
    // The webmail's service identity, for an auto-reply: RFC 3834 §3.3.
    let secret = std::fs::read_to_string(node.data().join("submission-service.secret")).unwrap();
    let mut s = SubmissionTls::connect(&node);
    let r = s.auth_plain(&address_of("alice"), "campusmail-webmail", secret.trim());
    assert!(r.starts_with("235"), "{r}");
    let r = s.cmd("MAIL FROM:<>");
    assert!(r.starts_with("250"), "{r}");
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
