//! Writing mail in the webmail, through the real binary: compose and send
//! with a Korean subject and a Korean-named attachment (the webmail submits
//! to the engine over SMTP like any client, and keeps a Sent copy), reply
//! with In-Reply-To/References, forward as an attachment, drafts saved and
//! resumed, upload limits, CSRF, and that nobody can send as someone else:
//! not through the form, and not through the engine's service login.

mod common;

use common::*;
use mail_parser::{MessageParser, MimeHeaders};

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

/// The raw source of the newest message in `folder` ("" for the inbox),
/// waiting up to 30 s for `count` messages to be there.
fn newest_raw(web: &Web, folder: &str, count: usize) -> Vec<u8> {
    let list = if folder.is_empty() {
        "/mail".to_string()
    } else {
        format!("/mail?folder={folder}")
    };
    let link = wait_until(30, || {
        let links = Web::links_in(&web.get(&list).body, "/mail/message/");
        (links.len() >= count).then(|| links[0].clone())
    })
    .unwrap_or_else(|| panic!("{count} message(s) in {list}: {}", web.get(&list).body));
    let raw = web.get(&format!("{link}/raw"));
    assert_eq!(raw.status, 200);
    raw.body.into_bytes()
}

/// The CSRF token of the compose form.
fn compose_token(web: &Web) -> String {
    let page = web.get("/mail/compose");
    assert_eq!(page.status, 200, "{}", page.body);
    Web::csrf_of(&page.body)
}

fn write_file(dir: &std::path::Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn korean_mail_with_an_attachment_reaches_another_user_and_sent_keeps_a_copy() {
    let node = three_users();
    let alice = node.web_login("alice");
    let page = alice.get("/mail/compose");
    assert_eq!(page.status, 200);
    // The upload limit is shown: 70% of the test's 200000-byte message
    // limit, 140000 bytes.
    assert!(page.body.contains("137 KB"), "{}", page.body);
    assert!(page.body.contains("enctype=\"multipart/form-data\""));
    let token = Web::csrf_of(&page.body);

    let pdf: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let file = write_file(node.data(), "upload.bin", &pdf);
    let subject = "2025학년도 2학기 수강 신청 안내";
    let body = "안녕하세요, 밥.\n수강 신청은 금요일까지입니다.\n.\n감사합니다.";
    let sent = alice.post_multipart(
        "/mail/compose",
        &[
            ("csrf_token", &token),
            ("to", "Bob 밥 <bob@campus.test>"),
            ("cc", ""),
            ("bcc", "carol@campus.test"),
            ("subject", subject),
            ("body", body),
            // A forged sender field is simply ignored.
            ("from", "bob@campus.test"),
            ("action", "send"),
        ],
        &[Upload {
            field: "attachment",
            path: &file,
            name: "수강신청 안내문.pdf",
            content_type: "application/pdf",
        }],
    );
    assert_eq!(sent.status, 303, "{}", sent.body);
    assert!(
        sent.headers.contains("/mail?folder=Sent&sent=1"),
        "{}",
        sent.headers
    );

    // Bob receives it: it parses, the subject and file name decode.
    let bob = node.web_login("bob");
    let raw = newest_raw(&bob, "", 1);
    let msg = MessageParser::default().parse(&raw).expect("parses");
    assert_eq!(msg.subject(), Some(subject));
    let from = msg.from().unwrap().first().unwrap();
    assert_eq!(
        from.address(),
        Some("alice@campus.test"),
        "From is the user"
    );
    assert_eq!(
        msg.body_text(0).unwrap().replace("\r\n", "\n"),
        body,
        "text as typed (the dot line survives SMTP)"
    );
    let attachment = msg.attachment(0).expect("an attachment");
    assert_eq!(attachment.attachment_name(), Some("수강신청 안내문.pdf"));
    assert_eq!(attachment.contents(), &pdf[..]);
    let text = String::from_utf8_lossy(&raw).to_string();
    assert!(
        !text.contains("carol@campus.test"),
        "Bcc is not shown: {text}"
    );
    assert!(msg.message_id().is_some() && msg.date().is_some());

    // Carol (Bcc) got it too.
    let carol = node.web_login("carol");
    let carol_raw = newest_raw(&carol, "", 1);
    let carol_msg = MessageParser::default().parse(&carol_raw).unwrap();
    assert_eq!(carol_msg.message_id(), msg.message_id());

    // Alice's Sent folder has exactly what was sent (no Bcc field).
    let sent_page = alice.get("/mail?folder=Sent&sent=1");
    assert!(sent_page.body.contains("class=\"alert notice\""));
    let copy = newest_raw(&alice, "Sent", 1);
    let copy_msg = MessageParser::default().parse(&copy).unwrap();
    assert_eq!(copy_msg.message_id(), msg.message_id());
    assert_eq!(copy_msg.subject(), Some(subject));
    assert!(!String::from_utf8_lossy(&copy)
        .to_ascii_lowercase()
        .contains("\nbcc:"));
    assert!(
        text.ends_with(&*String::from_utf8_lossy(&copy)),
        "the delivered message is the Sent copy plus the engine's trace fields"
    );
}

#[test]
fn a_reply_carries_in_reply_to_and_references_and_a_forward_attaches_the_original() {
    let node = three_users();
    let (ok, t) = submit_as(
        &node,
        "bob",
        &address_of("bob"),
        &address_of("alice"),
        &[
            "--header",
            "Subject: =?UTF-8?B?7ZqM7J2YIOydvOyglQ==?=",
            "--header",
            "Message-ID: <parent.1@campus.test>",
            "--header",
            "References: <root.0@campus.test>",
            "--body",
            "회의는 3시입니다.",
        ],
    );
    assert!(ok, "{t}");
    let alice = node.web_login("alice");
    let original =
        wait_until(30, || alice.message_links().first().cloned()).expect("bob's message arrives");
    let view = alice.get(&original);
    let reply_link = Web::links_in(&view.body, "/mail/compose?reply=")
        .into_iter()
        .next()
        .expect("a reply link");

    // The reply form is filled in: recipient, "Re:" subject, quoted text.
    let form = alice.get(&reply_link);
    assert_eq!(form.status, 200, "{}", form.body);
    assert_eq!(form_field(&form.body, "to").unwrap(), "bob@campus.test");
    assert_eq!(form_field(&form.body, "subject").unwrap(), "Re: 회의 일정");
    let body = form_field(&form.body, "body").unwrap();
    assert!(body.starts_with("\n\n"), "room to write above: {body:?}");
    assert!(body.contains("> 회의는 3시입니다."), "{body:?}");
    let field = |name: &str| form_field(&form.body, name).unwrap_or_default();
    let reply = alice.post_multipart(
        "/mail/compose",
        &[
            ("csrf_token", &Web::csrf_of(&form.body)),
            ("to", &field("to")),
            ("cc", &field("cc")),
            ("bcc", ""),
            ("subject", &field("subject")),
            ("body", &format!("좋습니다.{body}")),
            ("in_reply_to", &field("in_reply_to")),
            ("references", &field("references")),
            ("carry_from", &field("carry_from")),
            ("attach_original", &field("attach_original")),
            ("action", "send"),
        ],
        &[],
    );
    assert_eq!(reply.status, 303, "{}", reply.body);
    let bob = node.web_login("bob");
    let raw = newest_raw(&bob, "", 1);
    let msg = MessageParser::default().parse(&raw).unwrap();
    assert_eq!(msg.subject(), Some("Re: 회의 일정"), "Re: not doubled");
    assert_eq!(msg.in_reply_to().as_text(), Some("parent.1@campus.test"));
    assert_eq!(
        msg.references().as_text_list().unwrap(),
        ["root.0@campus.test", "parent.1@campus.test"]
    );

    // Replying to the reply does not make "Re: Re:".
    let links = bob.message_links();
    let form = bob.get(&format!(
        "/mail/compose?reply={}",
        links[0].trim_start_matches("/mail/message/")
    ));
    assert_eq!(form_field(&form.body, "subject").unwrap(), "Re: 회의 일정");

    // Forward as attachment: the original travels whole as message/rfc822.
    let link = Web::links_in(&view.body, "/mail/compose?forward_attached=")
        .into_iter()
        .next()
        .expect("a forward-as-attachment link");
    let form = alice.get(&link);
    assert_eq!(form_field(&form.body, "subject").unwrap(), "Fwd: 회의 일정");
    let field = |name: &str| form_field(&form.body, name).unwrap_or_default();
    let forward = alice.post_multipart(
        "/mail/compose",
        &[
            ("csrf_token", &Web::csrf_of(&form.body)),
            ("to", "carol@campus.test"),
            ("subject", &field("subject")),
            ("body", "참고하세요."),
            ("attach_original", &field("attach_original")),
            ("action", "send"),
        ],
        &[],
    );
    assert_eq!(forward.status, 303, "{}", forward.body);
    let carol = node.web_login("carol");
    let raw = newest_raw(&carol, "", 1);
    let msg = MessageParser::default().parse(&raw).unwrap();
    let inner = msg
        .attachment(0)
        .and_then(|a| a.message())
        .expect("message/rfc822");
    assert_eq!(inner.subject(), Some("회의 일정"));
    assert_eq!(inner.message_id(), Some("parent.1@campus.test"));
}

#[test]
fn drafts_are_saved_with_their_attachments_and_resumed() {
    let node = three_users();
    let alice = node.web_login("alice");
    let file = write_file(node.data(), "notes.txt", "회의록 초안".as_bytes());
    let saved = alice.post_multipart(
        "/mail/compose",
        &[
            ("csrf_token", &compose_token(&alice)),
            ("to", "bob@campus.test"),
            ("bcc", "carol@campus.test"),
            ("subject", "초안: 회의록"),
            ("body", "아직 쓰는 중"),
            ("action", "save"),
        ],
        &[Upload {
            field: "attachment",
            path: &file,
            name: "회의록.txt",
            content_type: "text/plain",
        }],
    );
    assert_eq!(saved.status, 303, "{}", saved.body);
    let location = saved
        .headers
        .lines()
        .find_map(|l| {
            l.strip_prefix("location: ")
                .or(l.strip_prefix("Location: "))
        })
        .expect("a redirect")
        .trim()
        .to_string();
    assert!(location.starts_with("/mail/compose?draft="), "{location}");

    // The Drafts folder lists it, and opening it resumes the form.
    let drafts = alice.get("/mail?folder=Drafts");
    let links = Web::links_in(&drafts.body, "/mail/compose?draft=");
    assert_eq!(links.len(), 1, "{}", drafts.body);
    let form = alice.get(&location);
    assert!(form.body.contains("class=\"alert notice\""), "saved notice");
    let form = alice.get(&links[0]);
    assert_eq!(form_field(&form.body, "to").unwrap(), "bob@campus.test");
    assert_eq!(form_field(&form.body, "bcc").unwrap(), "carol@campus.test");
    assert_eq!(form_field(&form.body, "subject").unwrap(), "초안: 회의록");
    assert_eq!(
        form_field(&form.body, "body").unwrap().trim_end(),
        "아직 쓰는 중"
    );
    assert!(form.body.contains("회의록.txt"), "the attachment is listed");
    assert!(form.body.contains("name=\"keep_0\""));

    // Sending from the draft sends its attachment too.
    let field = |name: &str| form_field(&form.body, name).unwrap_or_default();
    let sent = alice.post_multipart(
        "/mail/compose",
        &[
            ("csrf_token", &Web::csrf_of(&form.body)),
            ("to", &field("to")),
            ("bcc", ""),
            ("subject", "회의록"),
            ("body", "첨부합니다."),
            ("carry_from", &field("carry_from")),
            ("keep_0", "1"),
            ("action", "send"),
        ],
        &[],
    );
    assert_eq!(sent.status, 303, "{}", sent.body);
    let bob = node.web_login("bob");
    let raw = newest_raw(&bob, "", 1);
    let msg = MessageParser::default().parse(&raw).unwrap();
    let file = msg.attachment(0).expect("the draft's attachment");
    assert_eq!(file.attachment_name(), Some("회의록.txt"));
    assert_eq!(file.contents(), "회의록 초안".as_bytes());
    // The sent draft is gone from Drafts.
    let drafts = alice.get("/mail?folder=Drafts");
    assert!(
        Web::links_in(&drafts.body, "/mail/compose?draft=").is_empty(),
        "{}",
        drafts.body
    );
}

#[test]
fn refusals_come_back_clearly_with_what_was_typed() {
    let node = three_users();
    let alice = node.web_login("alice");

    // No CSRF token, or a wrong one: refused, nothing sent.
    for token in [None, Some("x".repeat(43))] {
        let mut fields = vec![
            ("to", "bob@campus.test"),
            ("subject", "csrf"),
            ("body", "x"),
            ("action", "send"),
        ];
        if let Some(token) = &token {
            fields.push(("csrf_token", token));
        }
        let r = alice.post_multipart("/mail/compose", &fields, &[]);
        assert_eq!(r.status, 403, "{}", r.body);
    }
    // A urlencoded POST is not the compose form.
    let r = alice.post(
        "/mail/compose",
        &[
            ("csrf_token", &compose_token(&alice)),
            ("to", "bob@campus.test"),
        ],
    );
    assert_eq!(r.status, 400);

    // A typo in an address: the form again, everything kept, the bad
    // address named.
    let token = compose_token(&alice);
    let r = alice.post_multipart(
        "/mail/compose",
        &[
            ("csrf_token", &token),
            ("to", "bob@campus.test, kim at campus"),
            ("subject", "<b>제목</b>"),
            ("body", "본문 <script>alert(1)</script>"),
            ("action", "send"),
        ],
        &[],
    );
    assert_eq!(r.status, 400);
    assert!(r.body.contains("kim at campus"), "{}", r.body);
    assert_eq!(form_field(&r.body, "subject").unwrap(), "<b>제목</b>");
    assert!(!r.body.contains("<script>alert(1)</script>"), "escaped");
    assert_eq!(
        form_field(&r.body, "body").unwrap(),
        "본문 <script>alert(1)</script>"
    );

    // An unknown local recipient: the engine refuses it, nobody gets mail,
    // and the uploaded file is kept in a draft the form now carries.
    let file = write_file(node.data(), "a.txt", b"attached");
    let r = alice.post_multipart(
        "/mail/compose",
        &[
            ("csrf_token", &token),
            ("to", "bob@campus.test, ghost@campus.test"),
            ("subject", "유령"),
            ("body", "x"),
            ("action", "send"),
        ],
        &[Upload {
            field: "attachment",
            path: &file,
            name: "첨부.txt",
            content_type: "text/plain",
        }],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("ghost@campus.test: 550"), "{}", r.body);
    assert_eq!(form_field(&r.body, "subject").unwrap(), "유령");
    assert!(r.body.contains("첨부.txt") && r.body.contains("name=\"keep_0\""));
    assert!(!form_field(&r.body, "carry_from").unwrap().is_empty());

    // Files over the upload limit: refused with the limit, text kept.
    let big = write_file(node.data(), "big.bin", &vec![7u8; 150_000]);
    let r = alice.post_multipart(
        "/mail/compose",
        &[
            ("csrf_token", &token),
            ("to", "bob@campus.test"),
            ("subject", "큰 파일"),
            ("body", "x"),
            ("action", "send"),
        ],
        &[Upload {
            field: "attachment",
            path: &big,
            name: "big.bin",
            content_type: "application/octet-stream",
        }],
    );
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(r.body.contains("KB"), "the limit is named: {}", r.body);
    assert_eq!(form_field(&r.body, "subject").unwrap(), "큰 파일");
    // A request far over the limit is not even read.
    let huge = write_file(node.data(), "huge.bin", &vec![7u8; 400_000]);
    let r = alice.post_multipart(
        "/mail/compose",
        &[("csrf_token", &token), ("action", "send")],
        &[Upload {
            field: "attachment",
            path: &huge,
            name: "huge.bin",
            content_type: "application/octet-stream",
        }],
    );
    assert_eq!(r.status, 413, "{}", r.body);

    // None of these reached bob; his inbox is empty.
    let bob = node.web_login("bob");
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(bob.message_links().is_empty(), "{}", bob.inbox());
}

#[test]
fn nobody_sends_as_someone_else_through_the_service_login() {
    let node = three_users();
    let secret = std::fs::read_to_string(node.data().join("submission-service.secret"))
        .expect("the service secret was made on first start");
    let secret = secret.trim();
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(node.data().join("submission-service.secret"))
            .unwrap()
            .permissions()
            .mode()
    };
    assert_eq!(mode & 0o777, 0o600, "owner-only");

    // A user cannot use an authorization identity to become someone else.
    let mut s = SubmissionTls::connect(&node);
    let r = s.auth_plain(
        &address_of("bob"),
        &address_of("alice"),
        &password_of("alice"),
    );
    assert!(r.starts_with("535"), "{r}");

    // The service with a wrong secret is refused.
    let mut s = SubmissionTls::connect(&node);
    let r = s.auth_plain(&address_of("alice"), "campusmail-webmail", "wrong");
    assert!(r.starts_with("535"), "{r}");

    // With the secret it acts for alice, and only as alice: her rules apply.
    let mut s = SubmissionTls::connect(&node);
    let r = s.auth_plain(&address_of("alice"), "campusmail-webmail", secret);
    assert!(r.starts_with("235"), "{r}");
    let r = s.cmd("MAIL FROM:<bob@campus.test>");
    assert!(r.starts_with("553"), "may not send as bob: {r}");
    let r = s.cmd("MAIL FROM:<alice@campus.test>");
    assert!(r.starts_with("250"), "{r}");

    // Not for a user who does not exist, nor without naming one.
    let mut s = SubmissionTls::connect(&node);
    let r = s.auth_plain("ghost@campus.test", "campusmail-webmail", secret);
    assert!(r.starts_with("535"), "{r}");
    let mut s = SubmissionTls::connect(&node);
    let r = s.auth_plain("", "campusmail-webmail", secret);
    assert!(r.starts_with("535"), "{r}");

    // Nor for a disabled user: bob's open webmail cannot send either.
    let bob = node.web_login("bob");
    let token = compose_token(&bob);
    node.cli_ok(&["user", "disable", &address_of("bob")], None);
    let mut s = SubmissionTls::connect(&node);
    let r = s.auth_plain(&address_of("bob"), "campusmail-webmail", secret);
    let refused = wait_until(10, || {
        // The engine reloads the snapshot when it changes.
        if r.starts_with("535") {
            return Some(());
        }
        let mut s = SubmissionTls::connect(&node);
        s.auth_plain(&address_of("bob"), "campusmail-webmail", secret)
            .starts_with("535")
            .then_some(())
    });
    assert!(refused.is_some(), "a disabled user's authzid is refused");
    let r = bob.post_multipart(
        "/mail/compose",
        &[
            ("csrf_token", &token),
            ("to", "alice@campus.test"),
            ("subject", "x"),
            ("body", "x"),
            ("action", "send"),
        ],
        &[],
    );
    assert!(
        !r.headers.contains("folder=Sent"),
        "{}{}",
        r.headers,
        r.body
    );
}
