//! The address book and the list grouped by conversation, through the real
//! binary over HTTPS: contacts added, edited and deleted on /mail/contacts
//! (CSRF first, refusals named, XSS in names inert), suggested in compose's
//! recipient fields with the addresses the user sent mail to and the
//! campus directory, "add to address book" from a message's sender, and
//! /mail?view=conversations showing one row per conversation.

mod common;

use common::*;

/// A node with alice, bob and carol.
fn three_users() -> Node {
    let mut node = Node::new();
    node.cli_ok(&["domain", "add", DOMAIN], None);
    for name in ["alice", "bob", "carol"] {
        node.add_user(name);
    }
    node.start("all");
    node
}

/// The `<datalist>` of the compose form.
fn suggestions(web: &Web) -> String {
    let page = web.get("/mail/compose");
    assert_eq!(page.status, 200, "{}", page.body);
    let start = page
        .body
        .find("<datalist id=\"address-suggestions\"")
        .expect("a datalist");
    let end = start + page.body[start..].find("</datalist>").expect("its end");
    assert!(page.body.contains("list=\"address-suggestions\""));
    page.body[start..end].to_string()
}

fn save_contact(web: &Web, name: &str, address: &str, note: &str, replacing: &str) -> Response {
    let page = web.get("/mail/contacts");
    assert_eq!(page.status, 200, "{}", page.body);
    web.post(
        "/mail/contacts",
        &[
            ("csrf_token", &Web::csrf_of(&page.body)),
            ("action", "save"),
            ("name", name),
            ("address", address),
            ("note", note),
            ("replacing", replacing),
        ],
    )
}

#[test]
fn contacts_are_added_edited_deleted_and_suggested_in_compose() {
    let node = three_users();
    let alice = node.web_login("alice");
    let page = alice.get("/mail/contacts");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("주소록"), "{}", page.body);

    // Without the CSRF token nothing is saved.
    let forged = alice.post(
        "/mail/contacts",
        &[("action", "save"), ("address", "evil@example.org")],
    );
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert!(!alice
        .get("/mail/contacts")
        .body
        .contains("evil@example.org"));

    // A name with markup is stored as typed and shown inert.
    let xss = "<script>alert(1)</script>\"><img src=x onerror=alert(2)>";
    let saved = save_contact(&alice, xss, "Lee@Example.ORG", "<b>note</b>", "");
    assert_eq!(saved.status, 303, "{}", saved.body);
    let book = alice.get("/mail/contacts?done=saved").body;
    assert!(book.contains("lee@example.org"), "{book}");
    assert!(
        !book.contains("<script>alert(1)") && !book.contains("<img src=x"),
        "{book}"
    );
    assert!(!book.contains("<b>note</b>"), "{book}");
    assert!(
        book.contains("&#60;script&#62;") || book.contains("&lt;script&gt;"),
        "{book}"
    );
    let list = suggestions(&alice);
    assert!(list.contains("lee@example.org"), "{list}");
    assert!(
        !list.contains("<script>alert") && !list.contains("<img src=x"),
        "{list}"
    );

    // Refusals name the problem and keep what was typed.
    let bad = save_contact(&alice, "Park", "not-an-address", "", "");
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("메일 주소가 아닙니다"), "{}", bad.body);
    assert_eq!(form_field(&bad.body, "name").as_deref(), Some("Park"));
    let twice = save_contact(&alice, "Lee", "lee@example.org", "", "");
    assert_eq!(twice.status, 400);
    assert!(
        twice.body.contains("이미 주소록에 있는 주소"),
        "{}",
        twice.body
    );

    // Edit: the form is filled, a new address replaces the old one.
    let edit = alice.get("/mail/contacts?edit=lee%40example.org");
    assert_eq!(
        form_field(&edit.body, "replacing").as_deref(),
        Some("lee@example.org")
    );
    let renamed = save_contact(&alice, "이민호", "minho@example.org", "", "lee@example.org");
    assert_eq!(renamed.status, 303, "{}", renamed.body);
    let list = suggestions(&alice);
    assert!(
        list.contains("이민호 &#60;minho@example.org&#62;")
            || list.contains("이민호 &lt;minho@example.org&gt;"),
        "{list}"
    );
    assert!(!list.contains("lee@example.org"), "{list}");

    // Bob's book is his own.
    let bob = node.web_login("bob");
    assert!(!suggestions(&bob).contains("minho@example.org"));

    // The script's lookup: the user's own book, and campus users for two
    // characters or more; nothing without a session.
    let found = alice.get("/mail/suggest?q=minho");
    assert_eq!(found.status, 200);
    assert!(
        found
            .headers
            .to_ascii_lowercase()
            .contains("application/json"),
        "{}",
        found.headers
    );
    let json: serde_json::Value = serde_json::from_str(&found.body).expect("JSON");
    assert_eq!(json[0]["address"], "minho@example.org", "{json}");
    assert_eq!(json[0]["value"], "이민호 <minho@example.org>");
    assert!(bob.get("/mail/suggest?q=minho").body.trim() == "[]");
    let campus = bob.get("/mail/suggest?q=car").body;
    assert!(campus.contains("carol@campus.test"), "{campus}");
    assert!(!campus.contains("password"), "{campus}");
    let stranger = Web::new(&node).get("/mail/suggest?q=car");
    assert_eq!(stranger.status, 303);
    assert!(!stranger.body.contains("carol"));
    // The compose page loads the script from us, with no inline script.
    let compose = alice.get("/mail/compose");
    let csp = compose
        .headers
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("content-security-policy:")
        })
        .expect("a CSP")
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let src = compose
        .body
        .split("<script src=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("the script");
    assert!(src.starts_with("/static/suggest.js?v="), "{src}");
    assert_eq!(
        compose.body.matches("<script").count(),
        1,
        "only the external script"
    );
    let script = alice.get(src);
    assert_eq!(script.status, 200);
    assert!(script.body.contains("/mail/suggest"));

    // Delete.
    let page = alice.get("/mail/contacts");
    let deleted = alice.post(
        "/mail/contacts",
        &[
            ("csrf_token", &Web::csrf_of(&page.body)),
            ("action", "delete"),
            ("address", "minho@example.org"),
        ],
    );
    assert_eq!(deleted.status, 303);
    assert!(!suggestions(&alice).contains("minho@example.org"));
    let again = alice.post(
        "/mail/contacts",
        &[
            ("csrf_token", &Web::csrf_of(&page.body)),
            ("action", "delete"),
            ("address", "minho@example.org"),
        ],
    );
    assert_eq!(again.status, 400);
    assert!(
        again.body.contains("주소록에 없는 연락처"),
        "{}",
        again.body
    );
}

#[test]
fn recipients_of_sent_mail_are_collected_and_senders_can_be_added() {
    let node = three_users();
    let alice = node.web_login("alice");
    let page = alice.get("/mail/compose");
    let sent = alice.post_multipart(
        "/mail/compose",
        &[
            ("csrf_token", &Web::csrf_of(&page.body)),
            ("to", "Bob <bob@campus.test>"),
            ("cc", "carol@campus.test"),
            ("subject", "회의"),
            ("body", "내일 3시"),
            ("action", "send"),
        ],
        &[],
    );
    assert_eq!(sent.status, 303, "{}", sent.body);
    let book = alice.get("/mail/contacts").body;
    assert!(
        book.contains("bob@campus.test") && book.contains("carol@campus.test"),
        "{book}"
    );
    assert!(book.contains("메일 1통"), "{book}");
    let list = suggestions(&alice);
    assert!(
        list.contains("bob@campus.test") && list.contains("carol@campus.test"),
        "{list}"
    );

    // Bob reads it and adds the sender from the message page.
    let bob = node.web_login("bob");
    let link = wait_until(30, || bob.message_links().first().cloned()).expect("delivered");
    let message = bob.get(&link).body;
    let add = Web::links_in(&message, "/mail/contacts?add=");
    assert_eq!(add.len(), 1, "{message}");
    let form = bob.get(&add[0]).body;
    assert_eq!(
        form_field(&form, "address").as_deref(),
        Some("alice@campus.test")
    );
    let saved = save_contact(&bob, "앨리스", "alice@campus.test", "", "");
    assert_eq!(saved.status, 303);
    assert!(suggestions(&bob).contains("alice@campus.test"));
}

#[test]
fn the_list_grouped_by_conversation_has_one_row_per_conversation() {
    let node = Node::with_users();
    let alice = address_of("alice");
    let send = |headers: &[&str], subject: &str| send_with(&node, &alice, headers, subject);
    send(&["Message-ID: <root@example.org>"], "Lab meeting");
    send(
        &[
            "Message-ID: <r1@example.org>",
            "References: <root@example.org>",
        ],
        "Re: Lab meeting",
    );
    send(&["Message-ID: <other@example.org>"], "Unrelated <i>x</i>");
    let web = node.web_login("alice");
    wait_until(30, || (web.message_links().len() == 3).then_some(())).expect("three delivered");
    let list = web.inbox();
    let toggle = Web::links_in(&list, "/mail?view=conversations");
    assert_eq!(
        toggle,
        vec!["/mail?view=conversations".to_string()],
        "{list}"
    );
    let grouped = web.get("/mail?view=conversations");
    assert_eq!(grouped.status, 200, "{}", grouped.body);
    let body = grouped.body;
    let rows = Web::links_in(&body, "/mail/message/");
    assert_eq!(rows.len(), 2, "{body}");
    assert!(body.contains("대화 2개"), "{body}");
    assert_eq!(body.matches("class=\"thread-count\"").count(), 1, "{body}");
    assert_eq!(body.matches("<tr class=\"unread").count(), 2, "{body}");
    assert!(!body.contains("<i>x</i>"), "{body}");
    // Opening the conversation's row shows the conversation; the row
    // stays unread while its first message is unread.
    let pages: Vec<String> = rows.iter().map(|r| web.get(r).body).collect();
    let conversation = pages
        .iter()
        .find(|page| page.contains("class=\"card conversation\""))
        .expect("a row that opens the conversation");
    assert!(
        conversation.contains("이 대화 (메일 2통)"),
        "{conversation}"
    );
    let body = web.get("/mail?view=conversations").body;
    assert_eq!(body.matches("<tr class=\"unread").count(), 1, "{body}");
    for link in Web::links_in(conversation, "/mail/message/") {
        web.get(&link);
    }
    let body = web.get("/mail?view=conversations").body;
    assert_eq!(body.matches("<tr class=\"unread").count(), 0, "{body}");
    // Oldest first, and a bad page is refused with a page that says so.
    let oldest = web.get("/mail?view=conversations&order=asc").body;
    assert_eq!(Web::links_in(&oldest, "/mail/message/").len(), 2);
    assert_eq!(web.get("/mail?view=conversations&page=x").status, 400);
}

#[test]
fn deleting_a_user_deletes_their_address_book() {
    let node = three_users();
    let alice = node.web_login("alice");
    assert_eq!(
        save_contact(&alice, "Lee", "lee@example.org", "", "").status,
        303
    );
    let bob = node.web_login("bob");
    assert_eq!(
        save_contact(&bob, "Lee", "lee@example.org", "", "").status,
        303
    );
    node.cli_ok(
        &["user", "delete", &address_of("alice"), "--delete-mail"],
        None,
    );
    node.add_user("alice");
    let again = node.web_login("alice");
    let book = again.get("/mail/contacts").body;
    assert!(!book.contains("lee@example.org"), "{book}");
    assert!(!suggestions(&again).contains("lee@example.org"));
    // Bob's book is untouched.
    assert!(suggestions(&bob).contains("lee@example.org"));
}
