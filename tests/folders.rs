//! Folders and message actions through the real binary over HTTPS: nested
//! folders made, renamed and deleted; messages moved by multi-select,
//! flagged, marked unread, sorted, deleted to Trash and then for good
//! (the blob released, fsck clean); XSS in folder names rendered inert;
//! CSRF-less POSTs refused; another user's ids skipped.

mod common;

use common::*;

fn send(node: &Node, subject: &str, body: &str) {
    let (ok, t) = swaks(&[
        "--server",
        &node.smtp_addr(),
        "--from",
        "office@example.org",
        "--to",
        &address_of("alice"),
        "--header",
        &format!("Subject: {subject}"),
        "--body",
        body,
    ]);
    assert!(ok, "{t}");
}

fn stats(node: &Node) -> serde_json::Value {
    let out = node.cli_ok(&["store", "stats", "--json"], None);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("store stats --json: {e}: {out}"))
}

/// Subjects in list order (the text of each message link).
fn subjects_on(body: &str) -> Vec<String> {
    let marker = "href=\"/mail/message/";
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(i) = rest.find(marker) {
        let s = &rest[i..];
        let start = s.find('>').unwrap() + 1;
        let end = s[start..].find('<').unwrap() + start;
        out.push(html_unescape(&s[start..end]));
        rest = &s[end..];
    }
    out
}

fn act(web: &Web, token: &str, action: &str, ids: &[&str], extra: &[(&str, &str)]) -> Response {
    let mut fields = vec![("csrf_token", token), ("action", action)];
    fields.extend(ids.iter().map(|id| ("m", *id)));
    fields.extend_from_slice(extra);
    web.post("/mail/actions", &fields)
}

#[test]
fn folders_and_message_actions_end_to_end() {
    let node = Node::with_users();
    send(&node, "Banana notes", "short");
    send(
        &node,
        "Apple plans",
        &"a much longer body line\n".repeat(40),
    );
    send(&node, "Cherry minutes", "medium medium medium medium");
    let web = node.web_login("alice");
    wait_until(30, || (web.message_links().len() == 3).then_some(()))
        .unwrap_or_else(|| panic!("mail not delivered: {}", node.log("all")));
    let blobs_before = stats(&node)["blobs"].as_u64().unwrap_or(0);

    // The folder list shows the system folders with the inbox's unread count.
    let inbox = web.inbox();
    for href in [
        "/mail?folder=Sent",
        "/mail?folder=Trash",
        "/mail?folder=Junk",
    ] {
        assert!(inbox.contains(href), "{href} in the folder list");
    }
    assert!(
        inbox.contains("<span class=\"count\" aria-hidden=\"true\">3</span>"),
        "{inbox}"
    );
    let token = Web::csrf_of(&inbox);

    // Create a folder and one inside it.
    let r = web.post(
        "/mail/folders",
        &[
            ("csrf_token", &token),
            ("action", "create"),
            ("name", "수업"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let page = web.get("/mail/folders?done=created");
    let class = folder_id(&page.body, "수업").expect("the new folder is listed");
    let r = web.post(
        "/mail/folders",
        &[
            ("csrf_token", &token),
            ("action", "create"),
            ("name", "과제"),
            ("parent", &class),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let page = web.get("/mail/folders");
    let homework = folder_id(&page.body, "과제").expect("nested folder listed");
    assert!(
        page.body
            .contains("<li class=\"depth-1\"><a href=\"/mail?folder="),
        "nested: {}",
        page.body
    );

    // A duplicate sibling name is refused with a message saying so.
    let r = web.post(
        "/mail/folders",
        &[
            ("csrf_token", &token),
            ("action", "create"),
            ("name", "수업"),
        ],
    );
    assert_eq!(r.status, 400);
    assert!(r.body.contains("같은 위치에 같은 이름"), "{}", r.body);

    // XSS in a folder name is shown as text everywhere.
    let evil = "<img src=x onerror=alert(1)>";
    let r = web.post(
        "/mail/folders",
        &[("csrf_token", &token), ("action", "create"), ("name", evil)],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    for page in [web.inbox(), web.get("/mail/folders").body] {
        assert!(!page.contains("<img src=x"), "{page}");
        assert!(
            page.contains("&#60;img src=x") || page.contains("&lt;img src=x"),
            "{page}"
        );
    }

    // Rename keeps the folder (and its id).
    let r = web.post(
        "/mail/folders",
        &[
            ("csrf_token", &token),
            ("action", "rename"),
            ("folder", &class),
            ("name", "강의"),
            ("parent", ""),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        folder_id(&web.inbox(), "강의").as_deref(),
        Some(class.as_str())
    );

    // Select two messages and move them into the nested folder.
    let ids = ids_on(&web.inbox());
    assert_eq!(ids.len(), 3);
    let r = act(
        &web,
        &token,
        "move",
        &[&ids[0], &ids[1]],
        &[("target", &homework)],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let moved = web.get(&format!("/mail?folder={homework}"));
    assert_eq!(ids_on(&moved.body).len(), 2, "{}", moved.body);
    assert!(moved
        .body
        .contains("<span class=\"count\" aria-hidden=\"true\">2</span>"));
    assert_eq!(ids_on(&web.inbox()).len(), 1);

    // Sort by subject, both ways; paging links keep folder and sort.
    let asc = web.get(&format!("/mail?folder={homework}&sort=subject"));
    let desc = web.get(&format!("/mail?folder={homework}&sort=subject&order=desc"));
    let mut a = subjects_on(&asc.body);
    let d = subjects_on(&desc.body);
    assert!(a.windows(2).all(|w| w[0] <= w[1]), "{a:?}");
    a.reverse();
    assert_eq!(a, d);
    assert!(asc.body.contains("aria-sort=\"ascending\""));
    let by_size = subjects_on(&web.get(&format!("/mail?folder={homework}&sort=size")).body);
    assert_eq!(by_size.len(), 2);
    assert_eq!(web.get("/mail?sort=nonsense").status, 400);
    assert_eq!(web.get("/mail?folder=node.ffff").status, 404);

    // Flag one, mark both read, then one unread.
    let r = act(&web, &token, "flag", &[&ids[0]], &[("folder", &homework)]);
    assert_eq!(r.status, 303);
    assert!(
        r.headers.contains(&format!("folder={homework}")),
        "back to the same list: {}",
        r.headers
    );
    act(&web, &token, "read", &[&ids[0], &ids[1]], &[]);
    act(&web, &token, "unread", &[&ids[1]], &[]);
    let list = web.get(&format!("/mail?folder={homework}")).body;
    assert_eq!(list.matches("class=\"unread").count(), 1, "{list}");
    assert_eq!(list.matches(" flagged\"").count(), 1, "{list}");

    // The message view has the same actions; flag from there stays there.
    let view = web.get(&format!("/mail/message/{}", ids[1]));
    assert!(
        view.body.contains("name=\"action\" value=\"flag\""),
        "{}",
        view.body
    );
    assert!(view
        .body
        .contains(&format!("href=\"/mail?folder={homework}\"")));

    // Delete: to Trash, then from Trash for good.
    let r = act(&web, &token, "delete", &[&ids[0]], &[]);
    assert!(r.headers.contains("done=trash"), "{}", r.headers);
    let trash = web.get("/mail?folder=Trash").body;
    assert_eq!(ids_on(&trash), vec![ids[0].clone()]);
    assert!(
        trash.contains("value=\"delete\" class=\"danger\""),
        "Trash deletes for good"
    );
    let r = act(&web, &token, "delete", &[&ids[0]], &[("folder", "Trash")]);
    assert!(r.headers.contains("done=delete"), "{}", r.headers);
    assert!(ids_on(&web.get("/mail?folder=Trash").body).is_empty());
    assert_eq!(web.get(&format!("/mail/message/{}", ids[0])).status, 404);
    let s = stats(&node);
    assert_eq!(s["messages"].as_u64(), Some(2), "{s}");
    assert_eq!(
        s["blobs"].as_u64(),
        Some(blobs_before - 1),
        "the blob is released: {s}"
    );

    // Another user cannot touch alice's messages.
    let bob = node.web_login("bob");
    let bob_token = Web::csrf_of(&bob.inbox());
    let r = act(&bob, &bob_token, "delete", &[&ids[1]], &[]);
    assert!(r.headers.contains("n=0"), "{}", r.headers);
    assert_eq!(web.get(&format!("/mail/message/{}", ids[1])).status, 200);

    // Deleting a folder asks first, saying its mail goes to Trash.
    let ask = web.get(&format!("/mail/folders?delete={class}"));
    assert!(ask.body.contains("휴지통"), "{}", ask.body);
    assert!(ask.body.contains("메일 1통"), "{}", ask.body);
    let r = web.post(
        "/mail/folders",
        &[
            ("csrf_token", &token),
            ("action", "delete"),
            ("folder", &class),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let after = web.inbox();
    assert!(folder_id(&after, "강의").is_none() && folder_id(&after, "과제").is_none());
    assert_eq!(
        ids_on(&web.get("/mail?folder=Trash").body),
        vec![ids[1].clone()]
    );

    // POSTs without the CSRF token change nothing.
    let r = web.post("/mail/actions", &[("action", "delete"), ("m", &ids[2])]);
    assert_eq!(r.status, 403);
    let r = web.post("/mail/folders", &[("action", "create"), ("name", "x")]);
    assert_eq!(r.status, 403);
    assert_eq!(ids_on(&web.inbox()), vec![ids[2].clone()]);

    let report = node.cli_ok(&["store", "fsck"], None);
    assert!(report.contains("the store is consistent"), "{report}");
}
