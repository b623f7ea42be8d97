//! Tests of message building: what mail-parser (an independent reader)
//! makes of what we build.

use mail_parser::{MessageParser, MimeHeaders};

use super::*;

fn mailbox(name: Option<&str>, address: &str) -> Mailbox {
    Mailbox {
        name: name.map(str::to_string),
        address: address.into(),
    }
}

fn korean() -> Outgoing {
    Outgoing {
        from: "alice@campus.test".into(),
        to: vec![mailbox(Some("김철수"), "kim@campus.test")],
        cc: vec![mailbox(None, "lee@example.org")],
        bcc: vec![mailbox(None, "secret@campus.test")],
        subject: "2025학년도 수강 신청 안내 — 꼭 읽어 주세요".into(),
        text: "안녕하세요.\n수강 신청은 금요일까지입니다.\n.\n끝".into(),
        attachments: vec![Attachment {
            name: "수강신청 안내문 (최종).pdf".into(),
            content_type: "application/pdf".into(),
            data: b"%PDF-1.4 \x00\x01\x02 binary".to_vec(),
        }],
        message_id: new_message_id("mail.campus.test", 1_750_000_000),
        date: 1_750_000_000,
        ..Outgoing::default()
    }
}

#[test]
fn korean_subject_names_and_file_names_survive_a_round_trip() {
    let built = korean().build(false);
    assert!(built.is_ascii(), "7-bit on the wire");
    let text = String::from_utf8(built.clone()).unwrap();
    assert!(text.contains("\r\nSubject: =?utf-8?"), "RFC 2047: {text}");
    assert!(text.contains("filename*"), "RFC 2231: {text}");
    assert!(!text.contains("\n\n") || text.contains("\r\n\r\n"));
    assert!(
        text.split("\r\n").all(|line| line.len() <= 998),
        "RFC 5322 §2.1.1 line length"
    );

    let msg = MessageParser::default().parse(&built).unwrap();
    assert_eq!(
        msg.subject(),
        Some("2025학년도 수강 신청 안내 — 꼭 읽어 주세요")
    );
    let to = msg.to().unwrap().first().unwrap();
    assert_eq!(to.name(), Some("김철수"));
    assert_eq!(to.address(), Some("kim@campus.test"));
    assert_eq!(
        msg.from().unwrap().first().unwrap().address(),
        Some("alice@campus.test")
    );
    assert!(msg.message_id().unwrap().ends_with("@mail.campus.test"));
    assert!(msg.date().is_some());
    assert_eq!(
        msg.body_text(0).unwrap().replace("\r\n", "\n"),
        "안녕하세요.\n수강 신청은 금요일까지입니다.\n.\n끝"
    );
    let file = msg.attachment(0).unwrap();
    assert_eq!(file.attachment_name(), Some("수강신청 안내문 (최종).pdf"));
    assert_eq!(file.contents(), b"%PDF-1.4 \x00\x01\x02 binary");
    assert_eq!(
        file.content_type().unwrap().c_subtype.as_deref(),
        Some("pdf")
    );
}

#[test]
fn bcc_only_in_drafts() {
    let m = korean();
    let sent = String::from_utf8(m.build(false)).unwrap();
    assert!(!sent.to_ascii_lowercase().contains("\nbcc:"), "{sent}");
    assert!(!sent.contains("secret@campus.test"));
    let draft = String::from_utf8(m.build(true)).unwrap();
    assert!(
        draft.contains("Bcc: <secret@campus.test>") || draft.contains("Bcc: secret@campus.test"),
        "{draft}"
    );
    assert_eq!(
        m.recipients(),
        ["kim@campus.test", "lee@example.org", "secret@campus.test"]
    );
}

#[test]
fn replies_carry_in_reply_to_and_references() {
    let m = Outgoing {
        in_reply_to: Some("parent@example.org".into()),
        references: vec!["root@example.org".into(), "parent@example.org".into()],
        ..korean()
    };
    let built = m.build(false);
    let msg = MessageParser::default().parse(&built).unwrap();
    assert_eq!(msg.in_reply_to().as_text(), Some("parent@example.org"));
    assert_eq!(
        msg.references().as_text_list().unwrap(),
        ["root@example.org", "parent@example.org"]
    );
    let text = String::from_utf8(built).unwrap();
    assert!(text.contains("In-Reply-To: <parent@example.org>"), "{text}");
}

#[test]
fn forwarded_messages_are_attached_whole_and_not_base64() {
    let original = "From: a@example.org\nSubject: =?utf-8?B?7JWI64WV?=\n\n원문 본문\n";
    let m = Outgoing {
        attachments: vec![Attachment::message("안녕.eml", original.as_bytes())],
        ..korean()
    };
    let built = m.build(false);
    let text = String::from_utf8_lossy(&built);
    assert!(text.contains("Content-Type: message/rfc822"), "{text}");
    assert!(text.contains("Content-Transfer-Encoding: 8bit"), "{text}");
    assert!(
        text.contains("From: a@example.org\r\nSubject:"),
        "CRLF inside: {text}"
    );
    let msg = MessageParser::default().parse(&built).unwrap();
    let inner = msg.attachment(0).unwrap().message().unwrap();
    assert_eq!(inner.subject(), Some("안녕"));
}

#[test]
fn odd_content_types_become_octet_stream() {
    let m = Outgoing {
        attachments: vec![Attachment {
            name: "x.bin".into(),
            content_type: "text/html\r\nX-Evil: 1".into(),
            data: vec![1, 2, 3],
        }],
        ..korean()
    };
    let text = String::from_utf8(m.build(false)).unwrap();
    assert!(!text.contains("X-Evil"), "{text}");
    assert!(text.contains("application/octet-stream"), "{text}");
}

#[test]
fn header_injection_through_typed_text_is_impossible() {
    let m = Outgoing {
        subject: "hello\r\nBcc: victim@example.org".into(),
        to: vec![mailbox(
            Some("x\r\nBcc: victim@example.org"),
            "kim@campus.test",
        )],
        ..korean()
    };
    let text = String::from_utf8(m.build(false)).unwrap();
    assert!(!text.contains("\r\nBcc:"), "{text}");
}

#[test]
fn address_lists_as_people_type_them() {
    let list = parse_address_list(
        "kim@campus.test, 이영희 <lee@campus.test>; \"Park, Jisoo\" <park@example.org>,, ",
    )
    .unwrap();
    assert_eq!(
        list,
        vec![
            mailbox(None, "kim@campus.test"),
            mailbox(Some("이영희"), "lee@campus.test"),
            mailbox(Some("Park, Jisoo"), "park@example.org"),
        ]
    );
    assert_eq!(list[2].display(), "\"Park, Jisoo\" <park@example.org>");
    assert_eq!(list[1].display(), "이영희 <lee@campus.test>");
    let again = parse_address_list(
        &list
            .iter()
            .map(Mailbox::display)
            .collect::<Vec<_>>()
            .join(", "),
    )
    .unwrap();
    assert_eq!(again, list, "display() reads back the same");
    assert_eq!(parse_address_list("  ").unwrap(), vec![]);
}

#[test]
fn bad_addresses_are_named() {
    for bad in [
        "not an address",
        "kim@",
        "<kim@campus.test",
        "kim@campus",
        "한글@campus.test",
        "a@b.test\r\nRCPT TO:<x@y.test>",
        "Name <a b@campus.test>",
    ] {
        let err = parse_address_list(&format!("ok@campus.test, {bad}")).unwrap_err();
        assert!(
            bad.contains(err.trim()) || err.contains("campus"),
            "{bad:?} -> {err:?}"
        );
    }
}

#[test]
fn line_ends_become_crlf() {
    assert_eq!(crlf(b"a\nb\r\nc\rd"), b"a\r\nb\r\nc\r\nd");
    assert_eq!(crlf(b""), b"");
}
