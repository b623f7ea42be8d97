//! Tests of reading stored messages back for replies, forwards and drafts.

use super::*;

const PARENT: &str = "From: =?UTF-8?B?6rmA7LKg7IiY?= <kim@example.org>\r\n\
Reply-To: list@example.org\r\n\
To: alice@campus.test, Bob <bob@campus.test>\r\n\
Cc: carol@example.org, Alice@Campus.Test\r\n\
Subject: =?UTF-8?B?7ZqM7J2YIOydvOyglQ==?=\r\n\
Date: Tue, 1 Jul 2025 10:00:00 +0900\r\n\
Message-ID: <parent@example.org>\r\n\
In-Reply-To: <before@example.org>\r\n\
References: <root@example.org> <before@example.org>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\
\r\n\
--b\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
회의는 3시입니다.\r\n\
> 이전 글\r\n\
--b\r\n\
Content-Type: application/pdf\r\n\
Content-Disposition: attachment; filename*=UTF-8''%ED%9A%8C%EC%9D%98.pdf\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
JVBERi0x\r\n\
--b--\r\n";

#[test]
fn reads_what_a_reply_needs() {
    let o = read(PARENT.as_bytes());
    assert_eq!(o.message_id.as_deref(), Some("parent@example.org"));
    assert_eq!(o.references, ["root@example.org", "before@example.org"]);
    assert_eq!(o.subject, "회의 일정");
    assert_eq!(o.from[0].name.as_deref(), Some("김철수"));
    assert_eq!(o.reply_to[0].address, "list@example.org");
    assert!(o.text.contains("회의는 3시입니다."), "{}", o.text);
    assert_eq!(o.attachments.len(), 1);
    assert_eq!(o.attachments[0].name, "회의.pdf");
    assert_eq!(o.attachments[0].data, b"%PDF-1");
}

#[test]
fn references_follow_rfc5322_3_6_4() {
    let o = read(PARENT.as_bytes());
    let (in_reply_to, references) = thread_ids(&o);
    assert_eq!(in_reply_to.as_deref(), Some("parent@example.org"));
    assert_eq!(
        references,
        [
            "root@example.org",
            "before@example.org",
            "parent@example.org"
        ]
    );
    // No References: a single In-Reply-To is taken instead.
    let o = Original {
        message_id: Some("p@x.test".into()),
        in_reply_to: vec!["q@x.test".into()],
        ..Original::default()
    };
    assert_eq!(thread_ids(&o).1, ["q@x.test", "p@x.test"]);
    // No ids at all: neither field.
    assert_eq!(thread_ids(&Original::default()), (None, vec![]));
    // Long threads keep their first and newest ids.
    let o = Original {
        message_id: Some("last@x.test".into()),
        references: (0..80).map(|i| format!("m{i}@x.test")).collect(),
        ..Original::default()
    };
    let refs = thread_ids(&o).1;
    assert_eq!(refs.len(), MAX_REFERENCES);
    assert_eq!(refs[0], "m0@x.test");
    assert_eq!(refs[MAX_REFERENCES - 1], "last@x.test");
}

#[test]
fn subjects_are_not_prefixed_twice() {
    assert_eq!(reply_subject("회의 일정"), "Re: 회의 일정");
    assert_eq!(reply_subject("Re: 회의 일정"), "Re: 회의 일정");
    assert_eq!(reply_subject("RE: x"), "RE: x");
    assert_eq!(reply_subject("Fwd: x"), "Re: Fwd: x");
    assert_eq!(forward_subject("x"), "Fwd: x");
    assert_eq!(forward_subject("FW: x"), "FW: x");
    assert_eq!(forward_subject("fwd:x"), "fwd:x");
    assert_eq!(reply_subject(""), "Re: ");
    assert_eq!(reply_subject("R"), "Re: R");
}

#[test]
fn reply_and_reply_all_recipients() {
    let o = read(PARENT.as_bytes());
    let (to, cc) = reply_recipients(&o, "alice@campus.test", false);
    assert_eq!(
        to.iter().map(|m| m.address.as_str()).collect::<Vec<_>>(),
        ["list@example.org"]
    );
    assert!(cc.is_empty());
    let (to, cc) = reply_recipients(&o, "alice@campus.test", true);
    assert_eq!(
        to.iter().map(|m| m.address.as_str()).collect::<Vec<_>>(),
        ["list@example.org", "bob@campus.test"],
        "never to oneself"
    );
    assert_eq!(
        cc.iter().map(|m| m.address.as_str()).collect::<Vec<_>>(),
        ["carol@example.org"]
    );
    // Replying to one's own sent message goes to its recipients.
    let mine = Original {
        from: vec![Mailbox {
            name: None,
            address: "alice@campus.test".into(),
        }],
        to: o.to.clone(),
        ..Original::default()
    };
    let (to, _) = reply_recipients(&mine, "alice@campus.test", false);
    assert_eq!(
        to.iter().map(|m| m.address.as_str()).collect::<Vec<_>>(),
        ["bob@campus.test"]
    );
}

#[test]
fn quoting() {
    assert_eq!(quote("a\n\n> b"), "> a\n>\n>> b");
}

#[test]
fn html_only_mail_is_quoted_as_text() {
    let raw = b"From: a@example.org\r\nContent-Type: text/html\r\n\r\n\
<p>First &amp; <b>second</b></p><p>Third&nbsp;line<br>fourth</p><script>x()</script>";
    let o = read(raw);
    assert_eq!(o.text, "First & second\nThird line\nfourth");
}

#[test]
fn malformed_input_gives_an_empty_original() {
    for raw in [&b""[..], b"\xff\xfe\x00", b"Message-ID: <a b@c>\r\n\r\n"] {
        let o = read(raw);
        assert_eq!(o.message_id, None);
    }
}
