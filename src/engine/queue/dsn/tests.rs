//! Tests of `dsn::build`: every DSN is parsed back with mail-parser and
//! checked part by part and field by field.

use super::*;
use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

const HOST: &str = "mx.campus.test";
const NOW: i64 = 1_741_320_000; // 7 Mar 2025 04:00 UTC
const ORIGINAL: &[u8] = b"Received: from client.example.org\r\n\
    \tby mx.campus.test; Fri, 7 Mar 2025 03:00:00 +0000\r\n\
    From: Prof <prof@example.org>\r\n\
    To: student@campus.test\r\n\
    Subject: =?utf-8?B?7Iuc7ZeYIOyViOuCtA==?=\r\n\
    Message-ID: <orig-1@example.org>\r\n\
    \r\n\
    SECRET-BODY-LINE the body must never come back\r\n\
    Subject: not a header, part of the body\r\n";

fn recipient(address: &str, status: &str, diagnostic: &str, mta: Option<&str>) -> DsnRecipient {
    DsnRecipient {
        address: address.to_string(),
        status: status.to_string(),
        diagnostic: diagnostic.to_string(),
        remote_mta: mta.map(str::to_string),
    }
}

fn request<'a>(
    kind: DsnKind,
    recipients: &'a [DsnRecipient],
    original: &'a [u8],
) -> DsnRequest<'a> {
    DsnRequest {
        reporting_mta: HOST,
        original_sender: "prof@example.org",
        queue_id: "Q1A2B3",
        arrival_date: NOW - 3600,
        kind,
        recipients,
        original_message: original,
        now: NOW,
    }
}

fn two_recipients() -> Vec<DsnRecipient> {
    vec![
        recipient(
            "nobody@example.net",
            "5.1.1",
            "550 5.1.1 <nobody@example.net>: no such user",
            Some("mx1.example.net"),
        ),
        recipient("full@campus.test", "5.2.2", "mailbox is over quota", None),
    ]
}

fn parse(bytes: &[u8]) -> Message<'_> {
    MessageParser::default()
        .parse(bytes)
        .expect("the DSN parses")
}

/// The three parts under the multipart/report root.
fn report_parts<'a>(msg: &'a Message<'a>) -> Vec<&'a mail_parser::MessagePart<'a>> {
    let PartType::Multipart(ids) = &msg.parts[0].body else {
        panic!("the root is not multipart: {:?}", msg.parts[0].body);
    };
    ids.iter().map(|&id| &msg.parts[id as usize]).collect()
}

fn body_bytes(part: &mail_parser::MessagePart) -> Vec<u8> {
    match &part.body {
        PartType::Text(t) | PartType::Html(t) => t.as_bytes().to_vec(),
        PartType::Binary(b) | PartType::InlineBinary(b) => b.to_vec(),
        other => panic!("unexpected part body {other:?}"),
    }
}

fn mime_type(part: &mail_parser::MessagePart) -> String {
    let ct = part.content_type().expect("a content type");
    format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or(""))
}

/// The delivery-status groups (per-message first), each as unfolded
/// (name, value) fields.
fn status_groups(part: &mail_parser::MessagePart) -> Vec<Vec<(String, String)>> {
    let text = String::from_utf8(body_bytes(part)).expect("ASCII delivery-status");
    let mut groups = Vec::new();
    for group in text.split("\r\n\r\n").filter(|g| !g.trim().is_empty()) {
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in group.split("\r\n").filter(|l| !l.is_empty()) {
            if line.starts_with(' ') || line.starts_with('\t') {
                fields
                    .last_mut()
                    .expect("a field to continue")
                    .1
                    .push_str(line);
            } else {
                let (name, value) = line.split_once(':').expect("name: value");
                fields.push((name.to_string(), value.trim().to_string()));
            }
        }
        groups.push(fields);
    }
    groups
}

fn get<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// 7-bit, CRLF only, lines within 998 bytes.
fn assert_wire_safe(bytes: &[u8]) {
    assert!(bytes.is_ascii(), "non-ASCII byte on the wire");
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' {
            assert!(i > 0 && bytes[i - 1] == b'\r', "bare LF at {i}");
        }
        if b == b'\r' {
            assert_eq!(bytes.get(i + 1), Some(&b'\n'), "bare CR at {i}");
        }
    }
    for line in bytes.split(|&b| b == b'\n') {
        assert!(line.len() <= 999, "line of {} bytes", line.len());
    }
}

fn header_section(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header section");
    &bytes[..end + 2]
}

#[test]
fn failed_dsn_has_the_rfc3464_structure_and_headers() {
    let rcpts = two_recipients();
    let bytes = build(&request(DsnKind::Failed, &rcpts, ORIGINAL)).unwrap();
    assert_wire_safe(&bytes);
    let msg = parse(&bytes);

    let from = msg.from().and_then(|a| a.first()).unwrap();
    assert_eq!(from.address(), Some("MAILER-DAEMON@mx.campus.test"));
    assert_eq!(from.name(), Some("Mail Delivery System"));
    let to = msg.to().and_then(|a| a.first()).unwrap();
    assert_eq!(to.address(), Some("prof@example.org"));
    let subject = msg.subject().unwrap();
    assert!(subject.contains("메일 전달 실패"), "{subject}");
    assert!(subject.contains("Undelivered Mail"), "{subject}");
    assert!(subject.find("메일").unwrap() < subject.find("Undelivered").unwrap());
    assert_eq!(msg.date().unwrap().to_timestamp(), NOW);
    assert!(msg.message_id().unwrap().ends_with("@mx.campus.test"));
    assert!(msg.message_id().unwrap().contains("Q1A2B3"));
    assert_eq!(
        msg.header_raw("Auto-Submitted").map(str::trim),
        Some("auto-replied")
    );
    assert_eq!(msg.header_raw("MIME-Version").map(str::trim), Some("1.0"));
    let headers = String::from_utf8(header_section(&bytes).to_vec()).unwrap();
    assert!(headers.contains("Subject: =?utf-8?"), "RFC 2047: {headers}");

    let root = msg.content_type().unwrap();
    assert_eq!(root.ctype(), "multipart");
    assert_eq!(root.subtype(), Some("report"));
    assert_eq!(root.attribute("report-type"), Some("delivery-status"));
    let parts = report_parts(&msg);
    let types: Vec<String> = parts.iter().map(|p| mime_type(p)).collect();
    assert_eq!(
        types,
        [
            "text/plain",
            "message/delivery-status",
            "text/rfc822-headers"
        ]
    );
    assert_eq!(
        parts[0].content_type().unwrap().attribute("charset"),
        Some("utf-8")
    );
    assert_eq!(
        parts[1].content_transfer_encoding(),
        Some("7bit"),
        "the report stays readable"
    );
}

#[test]
fn delivery_status_fields_per_message_and_per_recipient() {
    let rcpts = two_recipients();
    let bytes = build(&request(DsnKind::Failed, &rcpts, ORIGINAL)).unwrap();
    let msg = parse(&bytes);
    let groups = status_groups(report_parts(&msg)[1]);
    assert_eq!(groups.len(), 3, "{groups:?}");

    let m = &groups[0];
    assert_eq!(get(m, "Reporting-MTA"), Some("dns; mx.campus.test"));
    assert_eq!(
        get(m, "Arrival-Date"),
        Some("Fri, 7 Mar 2025 03:00:00 +0000")
    );
    assert_eq!(get(m, "X-Campusmail-Queue-ID"), Some("Q1A2B3"));

    let a = &groups[1];
    assert_eq!(
        get(a, "Final-Recipient"),
        Some("rfc822; nobody@example.net")
    );
    assert_eq!(get(a, "Action"), Some("failed"));
    assert_eq!(get(a, "Status"), Some("5.1.1"));
    assert_eq!(get(a, "Remote-MTA"), Some("dns; mx1.example.net"));
    assert_eq!(
        get(a, "Diagnostic-Code"),
        Some("smtp; 550 5.1.1 <nobody@example.net>: no such user")
    );
    assert_eq!(get(a, "Will-Retry-Until"), None);

    let b = &groups[2];
    assert_eq!(get(b, "Final-Recipient"), Some("rfc822; full@campus.test"));
    assert_eq!(get(b, "Status"), Some("5.2.2"));
    assert_eq!(get(b, "Remote-MTA"), None, "unknown remote MTA is left out");
    assert_eq!(
        get(b, "Diagnostic-Code"),
        Some("X-Campusmail; mailbox is over quota"),
        "our own text is not called an SMTP reply"
    );
}

#[test]
fn human_part_is_korean_first_then_english_and_decodes() {
    let rcpts = two_recipients();
    let bytes = build(&request(DsnKind::Failed, &rcpts, ORIGINAL)).unwrap();
    let msg = parse(&bytes);
    let parts = report_parts(&msg);
    let text = String::from_utf8(body_bytes(parts[0])).unwrap();
    let ko = text.find("메일을 전달하지 못했습니다").expect(&text);
    let en = text
        .find("Your message could not be delivered")
        .expect(&text);
    assert!(ko < en, "Korean first: {text}");
    for needle in [
        "nobody@example.net",
        "받는 사람 주소가 존재하지 않습니다",
        "the recipient's address does not exist",
        "550 5.1.1 <nobody@example.net>: no such user",
        "메일함이 가득 찼습니다",
        "mailbox is full",
        "2025년 3월 7일 12:00 (한국 시간)",
        "7 Mar 2025 12:00 KST (7 Mar 03:00 UTC)",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in {text}");
    }
    assert!(
        !text.contains("계속 전달을 시도합니다"),
        "no retry promise in a bounce"
    );
}

#[test]
fn delayed_dsn_promises_retries_until_the_lifetime_ends() {
    let rcpts = vec![recipient(
        "slow@example.net",
        "4.4.1",
        "connection timed out",
        Some("mx.example.net"),
    )];
    let until = NOW + 4 * 86400;
    let bytes = build(&request(
        DsnKind::Delayed { retry_until: until },
        &rcpts,
        ORIGINAL,
    ))
    .unwrap();
    assert_wire_safe(&bytes);
    let msg = parse(&bytes);
    assert!(msg.subject().unwrap().contains("메일 전달 지연"));
    assert!(msg.subject().unwrap().contains("Delayed Mail"));
    let parts = report_parts(&msg);
    let text = String::from_utf8(body_bytes(parts[0])).unwrap();
    for needle in [
        "메일 전달이 늦어지고 있습니다",
        "2025년 3월 11일 13:00 (한국 시간)까지 계속 전달을 시도합니다",
        "지금은 아무것도 하실 필요가 없습니다",
        "Your message has not been delivered yet",
        "We will keep trying until 11 Mar 2025 13:00 KST",
        "No action is needed yet",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in {text}");
    }
    let groups = status_groups(parts[1]);
    assert_eq!(groups.len(), 2);
    let r = &groups[1];
    assert_eq!(get(r, "Action"), Some("delayed"));
    assert_eq!(get(r, "Status"), Some("4.4.1"));
    assert_eq!(
        get(r, "Will-Retry-Until"),
        Some("Tue, 11 Mar 2025 04:00:00 +0000")
    );
    assert_eq!(
        get(r, "Diagnostic-Code"),
        Some("X-Campusmail; connection timed out")
    );
}

#[test]
fn only_the_original_header_section_is_attached() {
    let rcpts = two_recipients();
    let bytes = build(&request(DsnKind::Failed, &rcpts, ORIGINAL)).unwrap();
    let raw = String::from_utf8(bytes.clone()).unwrap();
    assert!(!raw.contains("SECRET-BODY-LINE"));
    assert!(!raw.contains("not a header"));
    let msg = parse(&bytes);
    let headers = String::from_utf8(body_bytes(report_parts(&msg)[2])).unwrap();
    let end = ORIGINAL.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    assert_eq!(headers.as_bytes(), &ORIGINAL[..end + 2]);

    // No blank line: the section ends at the first line that is no field.
    let junk = b"From: a@example.org\nSubject: hi\nthis line is body text\nX-Late: no\n";
    let bytes = build(&request(DsnKind::Failed, &rcpts, junk)).unwrap();
    let msg = parse(&bytes);
    let headers = String::from_utf8(body_bytes(report_parts(&msg)[2])).unwrap();
    assert_eq!(headers, "From: a@example.org\r\nSubject: hi\r\n");
}

#[test]
fn eight_bit_original_headers_go_out_encoded() {
    // A raw EUC-KR subject ("안녕") as some old clients send it.
    let original = b"From: a@example.org\r\nSubject: \xbe\xc8\xb3\xe7\r\n\r\nbody\r\n";
    let rcpts = two_recipients();
    let bytes = build(&request(DsnKind::Failed, &rcpts, original)).unwrap();
    assert_wire_safe(&bytes);
    let msg = parse(&bytes);
    let part = report_parts(&msg)[2];
    assert_eq!(mime_type(part), "text/rfc822-headers");
    assert_ne!(part.content_transfer_encoding(), Some("7bit"));
}

#[test]
fn line_breaks_in_untrusted_fields_cannot_add_fields() {
    let rcpts = vec![recipient(
        "victim@example.net\r\nAction: delivered",
        "5.1.1\r\nX-Evil: 1",
        "550 no\r\nX-Injected: yes\r\n\r\nFinal-Recipient: rfc822; evil@example.net\nBcc: x@y",
        Some("mx.example.net\r\nX-Injected-Mta: yes"),
    )];
    let bytes = build(&request(DsnKind::Failed, &rcpts, ORIGINAL)).unwrap();
    assert_wire_safe(&bytes);
    let raw = String::from_utf8(bytes.clone()).unwrap();
    for line in raw.split("\r\n") {
        for bad in ["X-Injected", "X-Evil", "Bcc:", "Action: delivered"] {
            assert!(!line.starts_with(bad), "injected line {line:?}");
        }
    }
    let msg = parse(&bytes);
    assert!(msg.header_raw("X-Injected").is_none());
    assert!(msg.header_raw("Bcc").is_none());
    let groups = status_groups(report_parts(&msg)[1]);
    assert_eq!(groups.len(), 2, "one recipient group only: {groups:?}");
    let r = &groups[1];
    assert_eq!(r.iter().filter(|(n, _)| n == "Final-Recipient").count(), 1);
    assert_eq!(get(r, "Action"), Some("failed"));
    assert_eq!(
        get(r, "Status"),
        Some("5.0.0"),
        "a malformed status is replaced"
    );
    assert!(get(r, "Diagnostic-Code")
        .unwrap()
        .contains("X-Injected: yes"));
}

#[test]
fn never_bounces_a_bounce_and_refuses_bad_input() {
    let rcpts = two_recipients();
    for sender in ["", "<>", "  <> "] {
        let mut req = request(DsnKind::Failed, &rcpts, ORIGINAL);
        req.original_sender = sender;
        assert_eq!(build(&req), Err(DsnError::NullSender), "{sender:?}");
    }
    for sender in [
        "a@b.test\r\nBcc: x@y",
        "no-at-sign",
        "a b@c.test",
        "a@b,c@d",
    ] {
        let mut req = request(DsnKind::Failed, &rcpts, ORIGINAL);
        req.original_sender = sender;
        assert!(
            matches!(build(&req), Err(DsnError::InvalidSender(_))),
            "{sender:?}"
        );
    }
    let mut req = request(DsnKind::Failed, &rcpts, ORIGINAL);
    req.original_sender = "<prof@example.org>";
    assert!(build(&req).is_ok(), "angle brackets are taken off");

    let mut req = request(DsnKind::Failed, &rcpts, ORIGINAL);
    req.reporting_mta = "mx.campus.test\r\nX: y";
    assert!(matches!(build(&req), Err(DsnError::InvalidReportingMta(_))));
    let req = request(DsnKind::Failed, &[], ORIGINAL);
    assert_eq!(build(&req), Err(DsnError::NoRecipients));
}

#[test]
fn smtputf8_recipient_uses_the_utf8_address_type() {
    let rcpts = vec![recipient("학생@campus.test", "5.1.1", "", None)];
    let bytes = build(&request(DsnKind::Failed, &rcpts, ORIGINAL)).unwrap();
    assert_wire_safe(&bytes);
    let msg = parse(&bytes);
    let groups = status_groups(report_parts(&msg)[1]);
    assert_eq!(
        get(&groups[1], "Final-Recipient"),
        Some("utf-8; \\x{D559}\\x{C0DD}@campus.test")
    );
    assert_eq!(get(&groups[1], "Diagnostic-Code"), None, "none given");
    let text = String::from_utf8(body_bytes(report_parts(&msg)[0])).unwrap();
    assert!(text.contains("학생@campus.test"));
}

#[test]
fn long_diagnostics_are_folded_and_cut() {
    let long = format!("550 5.7.1 {}", "blocked ".repeat(300));
    let word = format!("554 {}", "x".repeat(5000));
    let rcpts = vec![
        recipient("a@example.net", "5.7.1", &long, None),
        recipient("b@example.net", "5.0.0", &word, None),
    ];
    let bytes = build(&request(DsnKind::Failed, &rcpts, ORIGINAL)).unwrap();
    assert_wire_safe(&bytes);
    let msg = parse(&bytes);
    let part = report_parts(&msg)[1];
    let raw = String::from_utf8(body_bytes(part)).unwrap();
    let longest = raw
        .split("\r\n")
        .filter(|l| !l.contains("xxxx"))
        .map(str::len)
        .max()
        .unwrap();
    assert!(longest <= 78, "folded at 78 columns, got {longest}");
    let groups = status_groups(part);
    let code = get(&groups[1], "Diagnostic-Code").unwrap();
    assert!(
        code.starts_with("smtp; 550 5.7.1 blocked blocked"),
        "{code}"
    );
    assert!(code.len() <= MAX_DIAGNOSTIC_BYTES + 10);
}

/// xorshift64*: reproducible junk without a dependency.
fn junk(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

#[test]
fn junk_never_panics_and_stays_wire_safe() {
    let huge_header = format!("X-Big: {}\r\n\r\nbody", "a".repeat(300_000));
    let many_fields = "X-F: 1\r\n".repeat(20_000);
    let mut originals: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"\r\n\r\n".to_vec(),
        b"\n".to_vec(),
        b": no name\r\n".to_vec(),
        b" continuation first\r\nFrom: a@b\r\n".to_vec(),
        b"From a@b Thu Jan  1 00:00:00 1970\nFrom: x\n\nbody".to_vec(),
        b"Subject: a\rb\0c\r\n\r\n".to_vec(),
        vec![0xff; 1000],
        huge_header.into_bytes(),
        many_fields.into_bytes(),
    ];
    for seed in 1..40 {
        let mut j = b"From: x@y\r\n".to_vec();
        j.extend(junk(seed, 3000));
        originals.push(j);
        originals.push(junk(seed * 7919, 5000));
    }
    let weird = [
        recipient("", "", "", Some("")),
        recipient(
            "\u{0}\u{7f}\u{85}",
            "9.9.9",
            "\u{2028}\u{feff}",
            Some("é\r\n"),
        ),
        recipient(
            "a@b",
            "5.1234.1",
            &"한".repeat(2000),
            Some(&"m".repeat(5000)),
        ),
        recipient(&"x".repeat(10_000), "4.4.7", "421-multi\r\n421 line", None),
    ];
    for (i, original) in originals.iter().enumerate() {
        for kind in [
            DsnKind::Failed,
            DsnKind::Delayed {
                retry_until: i64::MAX,
            },
            DsnKind::Delayed {
                retry_until: i64::MIN,
            },
        ] {
            let mut req = request(kind, &weird, original);
            req.now = if i % 2 == 0 { i64::MIN } else { i64::MAX };
            req.arrival_date = -(i as i64);
            req.queue_id = "../\r\n<>\u{0}";
            let bytes = build(&req).expect("junk still gives a DSN");
            assert_wire_safe(&bytes);
            let msg = parse(&bytes);
            let parts = report_parts(&msg);
            assert_eq!(parts.len(), 3);
            let headers = body_bytes(parts[2]);
            assert!(headers.len() <= MAX_ORIGINAL_HEADER_BYTES);
            assert_eq!(status_groups(parts[1]).len(), 1 + weird.len());
        }
    }
}

#[test]
fn status_class_follows_the_action() {
    let rcpts = vec![
        recipient("a@example.net", "5.1.1", "", None),
        recipient("b@example.net", "2.0.0", "", None),
        recipient("c@example.net", "4.4.7", "", None),
        recipient("d@example.net", "5.1", "", None),
    ];
    let classes = |kind| {
        let bytes = build(&request(kind, &rcpts, ORIGINAL)).unwrap();
        let msg = parse(&bytes);
        status_groups(report_parts(&msg)[1])[1..]
            .iter()
            .map(|g| get(g, "Status").unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        classes(DsnKind::Failed),
        ["5.1.1", "5.0.0", "4.4.7", "5.0.0"]
    );
    assert_eq!(
        classes(DsnKind::Delayed { retry_until: NOW }),
        ["4.1.1", "4.0.0", "4.4.7", "4.0.0"]
    );
}
