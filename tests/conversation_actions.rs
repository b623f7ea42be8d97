//! Actions on whole conversations and the saved list view, through the
//! real binary over HTTPS: a conversation of three messages (threaded by
//! In-Reply-To/References) and an unrelated one delivered by SMTP; in
//! /mail?view=conversations the conversation is ticked and marked read,
//! moved and deleted, every member of it in the folder shown follows and
//! the unrelated message and the member in another folder stay put; a
//! POST without the CSRF token and another user's conversation key change
//! nothing. The "list by conversation" setting makes /mail open grouped,
//! survives a new login, and `view=messages` still opens the flat list.

mod common;

use common::*;

/// Delivers one message from a professor to `to` by SMTP.
fn deliver(node: &Node, to: &str, subject: &str, headers: &[&str]) {
    send_with(node, to, headers, subject);
}

/// (message id, subject) of every row of a list page, in order.
fn rows(body: &str) -> Vec<(String, String)> {
    let marker = "href=\"/mail/message/";
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(i) = rest.find(marker) {
        let s = &rest[i + marker.len()..];
        let id_end = s.find('"').unwrap();
        let text_start = s.find('>').unwrap() + 1;
        let text_end = text_start + s[text_start..].find("</a>").unwrap();
        out.push((
            s[..id_end].to_string(),
            html_unescape(&s[text_start..text_end]),
        ));
        rest = &s[text_end..];
    }
    out
}

/// The subjects listed in `folder`'s flat list, sorted.
fn subjects_in(web: &Web, folder: &str) -> Vec<String> {
    let page = web.get(&format!("/mail?view=messages&folder={folder}"));
    assert_eq!(page.status, 200, "{}", page.body);
    let mut subjects: Vec<String> = rows(&page.body).into_iter().map(|(_, s)| s).collect();
    subjects.sort();
    subjects
}

/// The conversation keys (checkbox values) of a grouped page.
fn keys(body: &str) -> Vec<String> {
    let marker = "name=\"c\" value=\"";
    body.match_indices(marker)
        .map(|(i, _)| {
            let s = &body[i + marker.len()..];
            s[..s.find('"').unwrap()].to_string()
        })
        .collect()
}

/// The grouped view of `folder`, checked to render.
fn grouped(web: &Web, folder: &str) -> String {
    let page = web.get(&format!("/mail?view=conversations&folder={folder}"));
    assert_eq!(page.status, 200, "{}", page.body);
    page.body
}

/// The key of the row of `folder`'s grouped view whose newest message is
/// `subject`.
fn key_of(web: &Web, folder: &str, subject: &str) -> String {
    let body = grouped(web, folder);
    let row = rows(&body)
        .into_iter()
        .find(|(_, s)| s == subject)
        .unwrap_or_else(|| panic!("no row {subject}: {body}"));
    assert!(keys(&body).contains(&row.0), "{body}");
    row.0
}

/// Ticks the conversations `keys` in `folder`'s grouped view and presses
/// `action`; returns the reply.
fn act(web: &Web, folder: &str, keys: &[&str], action: &str, target: &str) -> Response {
    let token = Web::csrf_of(&grouped(web, folder));
    let mut fields = vec![
        ("csrf_token", token.as_str()),
        ("list_view", "conversations"),
        ("folder", folder),
        ("order", "desc"),
        ("page", "1"),
        ("action", action),
        ("target", target),
    ];
    for key in keys {
        fields.push(("c", key));
    }
    web.post("/mail/actions", &fields)
}

fn assert_back(reply: &Response, location: &str) {
    assert_eq!(reply.status, 303, "{}", reply.body);
    let want = format!("location: {location}\r\n").to_ascii_lowercase();
    assert!(
        reply.headers.to_ascii_lowercase().contains(&want),
        "want {location}: {}",
        reply.headers
    );
}

const ROOT: &str = "과제 3 안내";
const REPLY_1: &str = "Re: 과제 3 안내";
const REPLY_2: &str = "Re: Re: 과제 3 안내";
const UNRELATED: &str = "도서관 휴관";

#[test]
fn actions_on_a_conversation_reach_its_messages_in_the_folder_shown() {
    let node = Node::with_users();
    let alice = address_of("alice");
    deliver(&node, &alice, ROOT, &["Message-ID: <hw3@example.org>"]);
    deliver(
        &node,
        &alice,
        REPLY_1,
        &[
            "Message-ID: <hw3-r1@example.org>",
            "In-Reply-To: <hw3@example.org>",
            "References: <hw3@example.org>",
        ],
    );
    deliver(
        &node,
        &alice,
        REPLY_2,
        &[
            "Message-ID: <hw3-r2@example.org>",
            "In-Reply-To: <hw3-r1@example.org>",
            "References: <hw3@example.org> <hw3-r1@example.org>",
        ],
    );
    deliver(&node, &alice, UNRELATED, &["Message-ID: <lib@example.org>"]);
    deliver(
        &node,
        &address_of("bob"),
        "Bob's own",
        &["Message-ID: <bob@example.org>"],
    );
    let web = node.web_login("alice");
    wait_until(30, || (web.message_links().len() == 4).then_some(())).expect("four delivered");
    let bob = node.web_login("bob");
    wait_until(30, || (bob.message_links().len() == 1).then_some(())).expect("bob's delivered");

    // Two rows, each with a labelled checkbox, and the action bar.
    let page = grouped(&web, "INBOX");
    assert_eq!(keys(&page).len(), 2, "{page}");
    assert!(page.contains("이 대화 선택"), "{page}");
    assert!(page.contains("value=\"read\""), "{page}");
    assert_eq!(page.matches("<tr class=\"unread").count(), 2, "{page}");
    let conversation = key_of(&web, "INBOX", REPLY_2);
    let unrelated = key_of(&web, "INBOX", UNRELATED);

    // Without the CSRF token nothing happens.
    let forged = web.post(
        "/mail/actions",
        &[
            ("list_view", "conversations"),
            ("action", "read"),
            ("c", &conversation),
        ],
    );
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert_eq!(
        grouped(&web, "INBOX").matches("<tr class=\"unread").count(),
        2
    );

    // Mark read: the three messages, back to the grouped view saying so.
    let reply = act(&web, "INBOX", &[&conversation], "read", "");
    assert_back(&reply, "/mail?view=conversations&done=read&n=3");
    let page = web.get("/mail?view=conversations&done=read&n=3").body;
    assert!(page.contains("메일 3통을 읽음으로 표시했습니다."), "{page}");
    assert_eq!(page.matches("<tr class=\"unread").count(), 1, "{page}");
    let flat = web.get("/mail?view=messages").body;
    assert_eq!(flat.matches("<tr class=\"unread").count(), 1, "{flat}");

    // Another user's conversation key reaches nothing, in her folder or his.
    let bobs = key_of(&bob, "INBOX", "Bob's own");
    let reply = act(&web, "INBOX", &[&bobs], "delete", "");
    assert_back(&reply, "/mail?view=conversations&done=none&n=0");
    assert_eq!(subjects_in(&bob, "INBOX"), vec!["Bob's own".to_string()]);
    let none = web.get("/mail?view=conversations&done=none&n=0").body;
    assert!(none.contains("선택한 대화가 없습니다"), "{none}");

    // The root alone goes to Junk from the flat list; then the
    // conversation, moved from INBOX to Sent, takes its two messages
    // there and leaves the root in Junk and the unrelated one in INBOX.
    let root = rows(&web.get("/mail?view=messages").body)
        .into_iter()
        .find(|(_, s)| s == ROOT)
        .expect("the root in the flat list")
        .0;
    let flat = web.get("/mail?view=messages").body;
    let moved = web.post(
        "/mail/actions",
        &[
            ("csrf_token", &Web::csrf_of(&flat)),
            ("list_view", "messages"),
            ("action", "move"),
            ("target", "Junk"),
            ("m", &root),
        ],
    );
    assert_back(&moved, "/mail?view=messages&done=move&n=1");
    let reply = act(&web, "INBOX", &[&conversation], "move", "Sent");
    assert_back(&reply, "/mail?view=conversations&done=move&n=2");
    assert_eq!(subjects_in(&web, "INBOX"), vec![UNRELATED.to_string()]);
    assert_eq!(
        subjects_in(&web, "Sent"),
        vec![REPLY_2.to_string(), REPLY_1.to_string()]
    );
    assert_eq!(subjects_in(&web, "Junk"), vec![ROOT.to_string()]);

    // Flag, then delete from Sent: to Trash, both; Junk keeps the root.
    let in_sent = key_of(&web, "Sent", REPLY_2);
    let reply = act(&web, "Sent", &[&in_sent], "flag", "");
    assert_back(&reply, "/mail?view=conversations&folder=Sent&done=flag&n=2");
    let flagged = web.get("/mail?view=messages&folder=Sent").body;
    assert_eq!(flagged.matches("flagged\">").count(), 2, "{flagged}");
    let reply = act(&web, "Sent", &[&in_sent], "delete", "");
    assert_back(
        &reply,
        "/mail?view=conversations&folder=Sent&done=trash&n=2",
    );
    assert!(subjects_in(&web, "Sent").is_empty());
    assert_eq!(
        subjects_in(&web, "Trash"),
        vec![REPLY_2.to_string(), REPLY_1.to_string()]
    );
    assert_eq!(subjects_in(&web, "Junk"), vec![ROOT.to_string()]);

    // From Trash, for good; a key from another folder does nothing here.
    let in_trash = key_of(&web, "Trash", REPLY_2);
    let reply = act(&web, "Trash", &[&unrelated, &root], "delete", "");
    assert_back(
        &reply,
        "/mail?view=conversations&folder=Trash&done=none&n=0",
    );
    let reply = act(&web, "Trash", &[&in_trash], "delete", "");
    assert_back(
        &reply,
        "/mail?view=conversations&folder=Trash&done=delete&n=2",
    );
    assert!(subjects_in(&web, "Trash").is_empty());
    assert_eq!(subjects_in(&web, "INBOX"), vec![UNRELATED.to_string()]);
    assert_eq!(subjects_in(&web, "Junk"), vec![ROOT.to_string()]);

    // A malformed key is refused with a page, not guessed at.
    let bad = act(&web, "INBOX", &["../../etc"], "read", "");
    assert_eq!(bad.status, 400, "{}", bad.body);
}

/// Saves the list-view form; returns the reply.
fn save_list_view(web: &Web, view: &str) -> Response {
    let page = web.get("/mail/settings");
    assert_eq!(page.status, 200, "{}", page.body);
    web.post(
        "/mail/settings",
        &[
            ("csrf_token", &Web::csrf_of(&page.body)),
            ("section", "list"),
            ("list_view", view),
        ],
    )
}

/// The page is the grouped view (its toggle marks "by conversation").
fn is_grouped(body: &str) -> bool {
    body.contains("<span aria-current=\"page\">대화별로 보기</span>")
}

#[test]
fn the_list_by_conversation_is_a_saved_setting() {
    let node = Node::with_users();
    let alice = address_of("alice");
    deliver(&node, &alice, ROOT, &["Message-ID: <hw3@example.org>"]);
    deliver(
        &node,
        &alice,
        REPLY_1,
        &[
            "Message-ID: <hw3-r1@example.org>",
            "References: <hw3@example.org>",
        ],
    );
    let web = node.web_login("alice");
    wait_until(30, || (web.message_links().len() == 2).then_some(())).expect("two delivered");
    assert!(!is_grouped(&web.inbox()), "the flat list is the default");

    // The form needs its token.
    let forged = web.post(
        "/mail/settings",
        &[("section", "list"), ("list_view", "conversations")],
    );
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert!(!is_grouped(&web.inbox()));

    let saved = save_list_view(&web, "conversations");
    assert_back(&saved, "/mail/settings?done=list");
    let page = web.get("/mail/settings?done=list").body;
    assert!(page.contains("저장했습니다. 이제 편지함은"), "{page}");
    assert!(page.contains("value=\"conversations\" checked"), "{page}");
    // /mail and a folder link open grouped; the toggle names the flat
    // list, whose sort and paging links keep naming it.
    let inbox = web.inbox();
    assert!(is_grouped(&inbox), "{inbox}");
    assert!(is_grouped(&web.get("/mail?folder=Sent").body));
    let flat_link = Web::links_in(&inbox, "/mail?view=messages");
    assert_eq!(
        flat_link,
        vec!["/mail?view=messages".to_string()],
        "{inbox}"
    );
    let flat = web.get(&flat_link[0]).body;
    assert!(!is_grouped(&flat), "{flat}");
    assert!(
        flat.contains("href=\"/mail?view=messages&#38;sort=from\""),
        "{flat}"
    );
    assert!(!is_grouped(&web.get("/mail?view=messages&sort=from").body));
    assert_eq!(
        form_field(&flat, "list_view").as_deref(),
        Some("messages"),
        "an action comes back to the flat list"
    );

    // A new login, in a new browser, still opens grouped.
    let again = node.web_login("alice");
    assert!(is_grouped(&again.inbox()));
    assert_eq!(again.get("/mail?view=nested").status, 400);

    // Back to every message.
    assert_back(
        &save_list_view(&again, "messages"),
        "/mail/settings?done=list",
    );
    assert!(!is_grouped(&again.inbox()));
    assert!(is_grouped(&again.get("/mail?view=conversations").body));
}

#[test]
fn a_conversation_of_more_than_500_messages_is_refused_whole() {
    let node = Node::with_users();
    let alice = address_of("alice");
    // 501 messages of one conversation, in one SMTP session.
    let mut smtp = RawSmtp::connect(&node.smtp_addr());
    assert!(smtp.cmd("EHLO prof.example.org").starts_with("250"));
    for n in 0..501 {
        assert!(smtp.cmd("MAIL FROM:<prof@example.org>").starts_with("250"));
        let rcpt = smtp.cmd(&format!("RCPT TO:<{alice}>"));
        assert!(rcpt.starts_with("250"), "{rcpt}");
        assert!(smtp.cmd("DATA").starts_with("354"));
        let references = if n == 0 {
            String::new()
        } else {
            "References: <big@example.org>\r\n".to_string()
        };
        let data = format!(
            "From: prof@example.org\r\nTo: {alice}\r\nMessage-ID: <big-{n}@example.org>\r\n\
             {references}Subject: Re: 긴 토론 {n}\r\n\r\n{n}\r\n.\r\n"
        );
        smtp.send(data.replace("<big-0@", "<big@").as_bytes());
        let done = smtp.reply();
        assert!(done.starts_with("250"), "{done}");
    }
    smtp.cmd("QUIT");
    let web = node.web_login("alice");
    wait_until(120, || {
        web.get("/mail?view=messages")
            .body
            .contains("전체 501통")
            .then_some(())
    })
    .unwrap_or_else(|| panic!("501 not delivered.\n{}", node.log("all")));
    let page = grouped(&web, "INBOX");
    let key = keys(&page);
    assert_eq!(key.len(), 1, "one conversation: {page}");
    let refused = act(&web, "INBOX", &[&key[0]], "read", "");
    assert_eq!(refused.status, 413, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("500통보다 많아 아무것도 바꾸지 않았습니다"),
        "{}",
        refused.body
    );
    // Nothing was marked.
    let page = grouped(&web, "INBOX");
    assert_eq!(page.matches("<tr class=\"unread").count(), 1, "{page}");
    let flat = web.get("/mail?view=messages").body;
    assert_eq!(flat.matches("<tr class=\"unread").count(), 50, "{flat}");
}
