//! Webmail search through the real binary: mail delivered over SMTP
//! (swaks, UTF-8 and EUC-KR), searched over HTTPS with curl. Korean words
//! inside longer words, fields, a user seeing only their own mail, the
//! messages for an empty query, no results and bad dates, in both
//! languages; the background indexer catching up.

mod common;

use common::*;

/// Percent-encodes a query value (UTF-8 bytes).
fn pct(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn result_links(body: &str) -> Vec<String> {
    Web::links_in(body, "/mail/message/")
}

#[test]
fn korean_words_are_found_inside_words_and_only_in_ones_own_mail() {
    let node = Node::with_users();
    let (ok, t) = swaks(&[
        "--server",
        &node.smtp_addr(),
        "--from",
        "office@example.org",
        "--to",
        &address_of("alice"),
        "--header",
        "Subject: =?UTF-8?B?7J2067KI7ZWZ6riw7IiY6rCV7Iug7LKtIOyViOuCtA==?=",
        "--header",
        "Content-Type: text/plain; charset=utf-8",
        "--body",
        "Registration closes on Friday.",
    ]);
    assert!(ok, "{t}");
    send_fixture(&node, "euc-kr.eml");
    let alice = node.web_login("alice");
    // The list page has the search box.
    let inbox = alice.inbox();
    assert!(inbox.contains("action=\"/mail/search\""), "{inbox}");
    assert!(inbox.contains("name=\"q\""));

    // "학기" inside "이번학기수강신청" (the subject, sent as an encoded word).
    let page = wait_until(30, || {
        let r = alice.get(&format!("/mail/search?q={}", pct("학기")));
        (r.status == 200 && result_links(&r.body).len() == 1).then_some(r.body)
    })
    .unwrap_or_else(|| panic!("not found by search: {}", node.log("all")));
    assert!(page.contains("이번학기수강신청 안내"), "{page}");
    let link = &result_links(&page)[0];
    let message = alice.get(link);
    assert_eq!(message.status, 200);
    assert!(message.body.contains("Registration closes"));

    // The mailbox role's indexer posts both deliveries in the background
    // (until then searches read them from its queue); the searches below
    // go through the postings.
    let indexed = wait_until(30, || {
        let out = node.cli_ok(&["store", "stats", "--json"], None);
        let stats: serde_json::Value = serde_json::from_str(&out).ok()?;
        (stats["search_backlog"] == 0).then_some(())
    });
    assert!(indexed.is_some(), "the search indexer never caught up");

    // EUC-KR body text and sender, each in its own field.
    let r = alice.get(&format!("/mail/search?body={}", pct("금요일까지")));
    assert_eq!(result_links(&r.body).len(), 1, "{}", r.body);
    assert!(r.body.contains("수강 신청 안내"));
    let r = alice.get(&format!("/mail/search?from={}&folder=INBOX", pct("교무")));
    assert_eq!(result_links(&r.body).len(), 1, "{}", r.body);
    let r = alice.get(&format!("/mail/search?subject={}", pct("금요일")));
    assert!(
        result_links(&r.body).is_empty(),
        "the subject does not say it"
    );

    // Both words must be found; a word in neither message finds nothing.
    let r = alice.get(&format!("/mail/search?q={}", pct("학기 도서관")));
    assert!(result_links(&r.body).is_empty());
    assert!(r.body.contains("조건에 맞는 메일이 없습니다"), "{}", r.body);

    // Bob has no such mail, and never sees alice's.
    let bob = node.web_login("bob");
    let r = bob.get(&format!("/mail/search?q={}", pct("학기")));
    assert_eq!(r.status, 200);
    assert!(result_links(&r.body).is_empty(), "{}", r.body);
    assert!(bob.get(link).status == 404, "alice's message is not bob's");

    // Dates: inside, outside, malformed, reversed.
    let r = alice.get(&format!(
        "/mail/search?q={}&since=2025-03-05&until=2025-03-05",
        pct("수강")
    ));
    assert_eq!(
        result_links(&r.body).len(),
        1,
        "the fixture is dated 2025-03-05"
    );
    let r = alice.get("/mail/search?q=x&since=2025-3-5");
    assert_eq!(r.status, 400);
    assert!(r.body.contains("날짜가 올바르지 않습니다"), "{}", r.body);
    let r = alice.get("/mail/search?q=x&since=2025-03-06&until=2025-03-05&lang=en");
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("The From date is after the To date"),
        "{}",
        r.body
    );

    // An empty query says what to do; nothing but the form otherwise.
    let r = alice.get("/mail/search?q=+&lang=en");
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Enter at least one word"), "{}", r.body);
    let r = alice.get("/mail/search");
    assert_eq!(r.status, 200);
    assert!(result_links(&r.body).is_empty());

    // Markup typed into the form comes back inert.
    let r = alice.get(&format!(
        "/mail/search?q={}",
        pct("\"><script>alert(1)</script>")
    ));
    assert_eq!(r.status, 200);
    assert!(!r.body.contains("<script>alert(1)"), "{}", r.body);

    // A deleted message is no longer found.
    let id = link.trim_start_matches("/mail/message/");
    let token = Web::csrf_of(&alice.inbox());
    let r = alice.post(
        "/mail/actions",
        &[
            ("csrf_token", &token),
            ("m", id),
            ("action", "delete"),
            ("folder", "INBOX"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let r = alice.get(&format!("/mail/search?q={}&folder=INBOX", pct("학기")));
    assert!(
        result_links(&r.body).is_empty(),
        "moved to Trash: {}",
        r.body
    );
    let r = alice.get(&format!("/mail/search?q={}&folder=Trash", pct("학기")));
    assert_eq!(result_links(&r.body).len(), 1, "{}", r.body);

    // Without a session, no search.
    let stranger = Web::new(&node);
    assert_eq!(stranger.get("/mail/search?q=x").status, 303);
}
