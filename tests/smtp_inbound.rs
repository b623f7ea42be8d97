//! Mail from other servers on the MX port: accepted mail reaches the
//! webmail inbox; every kind of bad input gets the right reply and leaves
//! the store unchanged.

mod common;

use common::*;

fn inbox_count(web: &Web) -> usize {
    web.message_links().len()
}

#[test]
fn mail_from_swaks_appears_in_the_webmail_inbox() {
    let node = Node::with_users();
    let (ok, transcript) = swaks(&[
        "--server",
        &node.smtp_addr(),
        "--from",
        "prof.kim@example.org",
        "--to",
        &address_of("alice"),
        "--header",
        "Subject: Lecture notes for week 3",
        "--body",
        "The notes are attached to the course page.",
    ]);
    assert!(ok, "{transcript}");
    assert!(transcript.contains("250 2.0.0"), "{transcript}");
    assert!(transcript.contains("ENHANCEDSTATUSCODES"), "{transcript}");
    assert!(transcript.contains("PIPELINING"), "{transcript}");
    assert!(transcript.contains("8BITMIME"), "{transcript}");
    assert!(transcript.contains("SMTPUTF8"), "{transcript}");
    // The MX port never offers AUTH.
    assert!(!transcript.contains("250-AUTH"), "{transcript}");

    let web = node.web_login("alice");
    let inbox = wait_until(30, || {
        let page = web.inbox();
        page.contains("Lecture notes for week 3").then_some(page)
    })
    .unwrap_or_else(|| {
        panic!(
            "message never reached the inbox; engine log: {}",
            node.log("all")
        )
    });
    assert!(inbox.contains("prof.kim@example.org"), "{inbox}");

    let links = web.message_links();
    assert_eq!(links.len(), 1);
    let view = web.get(&links[0]);
    assert_eq!(view.status, 200);
    assert!(
        view.body
            .contains("The notes are attached to the course page."),
        "{}",
        view.body
    );

    // Bob's inbox is his own.
    let bob = node.web_login("bob");
    assert_eq!(inbox_count(&bob), 0);
    assert_eq!(bob.get(&links[0]).status, 404);
}

#[test]
fn bad_mail_gets_the_right_reply_and_stores_nothing() {
    let node = Node::with_users();
    let web = node.web_login("alice");
    let server = node.smtp_addr();

    // Unknown local recipient: 550 5.1.1.
    let (ok, t) = swaks(&[
        "--server",
        &server,
        "--to",
        "nobody@campus.test",
        "--from",
        "x@example.org",
    ]);
    assert!(!ok);
    assert!(t.contains("550 5.1.1"), "{t}");

    // Relay attempt without AUTH: refused, never an open relay.
    let (ok, t) = swaks(&[
        "--server",
        &server,
        "--to",
        "someone@elsewhere.example",
        "--from",
        "x@example.org",
    ]);
    assert!(!ok);
    assert!(t.contains("554 5.7.1"), "{t}");

    // Oversized message (the test config allows 200000 bytes).
    let big = "x".repeat(70);
    let body = std::iter::repeat_n(big.as_str(), 4000)
        .collect::<Vec<_>>()
        .join("\n");
    let body_file = node.data().join("big-body.txt");
    std::fs::write(&body_file, body).unwrap();
    let body_arg = format!("@{}", body_file.display());
    let (ok, t) = swaks(&[
        "--server",
        &server,
        "--to",
        &address_of("alice"),
        "--from",
        "x@example.org",
        "--body",
        &body_arg,
    ]);
    assert!(!ok);
    assert!(t.contains("552 5.3.4"), "{t}");

    // SIZE announced too large is refused at MAIL.
    let mut raw = RawSmtp::connect(&server);
    assert!(raw.cmd("EHLO client.example.org").starts_with("250"));
    let r = raw.cmd("MAIL FROM:<x@example.org> SIZE=900000000");
    assert!(r.starts_with("552 5.3.4"), "{r}");

    // A text line longer than max_line_bytes (4096).
    let long_line = "y".repeat(5000);
    let (ok, t) = swaks(&[
        "--server",
        &server,
        "--to",
        &address_of("alice"),
        "--from",
        "x@example.org",
        "--body",
        &long_line,
    ]);
    assert!(!ok);
    assert!(t.contains("5.5.2") || t.contains("5.6.0"), "{t}");

    // An overlong command line.
    let r = raw.cmd(&format!("NOOP {}", "z".repeat(600)));
    assert!(r.starts_with("500 5.5.2"), "{r}");

    assert_eq!(inbox_count(&web), 0, "nothing bad may reach the store");
}

#[test]
fn smtp_smuggling_with_bare_lf_is_rejected_not_misparsed() {
    let node = Node::with_users();
    let web = node.web_login("alice");
    let mut raw = RawSmtp::connect(&node.smtp_addr());
    assert!(raw.cmd("EHLO attacker.example").starts_with("250"));
    assert!(raw.cmd("MAIL FROM:<a@example.org>").starts_with("250"));
    assert!(raw.cmd("RCPT TO:<alice@campus.test>").starts_with("250"));
    assert!(raw.cmd("DATA").starts_with("354"));
    // `<LF>.<LF>` is not the end of data: a smuggled second message follows it.
    raw.send(
        b"Subject: first\r\n\r\nhello\n.\nMAIL FROM:<boss@campus.test>\r\nRCPT TO:<alice@campus.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nsend money\r\n.\r\n",
    );
    let reply = raw.reply();
    assert!(
        reply.starts_with("550 5.6.0") || reply.starts_with("554"),
        "{reply}"
    );
    // The session is still in sync: the next command gets its own reply.
    let noop = raw.cmd("NOOP");
    assert!(noop.starts_with("250"), "{noop}");
    raw.cmd("QUIT");

    // A message with CRLF ends is still accepted on a fresh session, so the
    // rejection above was about the bare LF, and nothing was stored.
    let (ok, t) = swaks(&[
        "--server",
        &node.smtp_addr(),
        "--to",
        &address_of("alice"),
        "--from",
        "a@example.org",
        "--header",
        "Subject: clean",
    ]);
    assert!(ok, "{t}");
    let inbox = wait_until(30, || {
        let page = web.inbox();
        page.contains("clean").then_some(page)
    })
    .expect("clean message delivered");
    assert!(!inbox.contains("smuggled"), "{inbox}");
    assert_eq!(inbox_count(&web), 1);
}
