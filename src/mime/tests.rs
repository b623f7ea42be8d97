//! Rendering tests over the `.eml` fixtures (CRLF as stored, and LF-only),
//! plus malformed and hostile input that must not panic.

use super::*;

const UTF8: &[u8] = include_bytes!("../../tests/fixtures/utf8-korean.eml");
const EUC_KR: &[u8] = include_bytes!("../../tests/fixtures/euc-kr.eml");
const ISO_2022_KR: &[u8] = include_bytes!("../../tests/fixtures/iso-2022-kr.eml");
const CP949: &[u8] = include_bytes!("../../tests/fixtures/cp949.eml");
const HTML: &[u8] = include_bytes!("../../tests/fixtures/html-remote-images.eml");
const MALFORMED: &[u8] = include_bytes!("../../tests/fixtures/malformed-mime.eml");
const ATTACHMENT: &[u8] = include_bytes!("../../tests/fixtures/multipart-attachment.eml");

const ALL: &[(&str, &[u8])] = &[
    ("utf8-korean", UTF8),
    ("euc-kr", EUC_KR),
    ("iso-2022-kr", ISO_2022_KR),
    ("cp949", CP949),
    ("html-remote-images", HTML),
    ("malformed-mime", MALFORMED),
    ("multipart-attachment", ATTACHMENT),
];

fn lf_only(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    for (i, &b) in raw.iter().enumerate() {
        if !(b == b'\r' && raw.get(i + 1) == Some(&b'\n')) {
            out.push(b);
        }
    }
    out
}

/// Runs `check` on the fixture as stored (CRLF) and with LF line ends.
fn both_line_ends(raw: &[u8], check: impl Fn(&RenderedMessage, &HeaderSummary)) {
    for bytes in [raw.to_vec(), lf_only(raw)] {
        check(&render(&bytes, false), &summarize(&bytes));
    }
}

fn text(m: &RenderedMessage) -> &str {
    m.text.as_deref().unwrap_or_default()
}

#[test]
fn utf8_korean() {
    both_line_ends(UTF8, |m, s| {
        assert_eq!(m.subject, "도서관 운영 시간 변경 안내");
        assert_eq!(s.subject, m.subject);
        assert_eq!(m.from, "중앙도서관 <library@campus.ac.kr>");
        assert_eq!(s.from, m.from);
        assert_eq!(m.to, "김학생 <student@campus.ac.kr>, friend@campus.ac.kr");
        assert_eq!(m.cc, "조교 <ta@campus.ac.kr>");
        assert_eq!(m.date, Some(1_741_051_800));
        assert_eq!(s.date, m.date);
        assert!(
            text(m).contains("안녕하세요, 캠퍼스 메일입니다."),
            "{:?}",
            m.text
        );
        assert!(
            text(m).contains("중앙도서관이 밤 11시까지 운영됩니다."),
            "{:?}",
            m.text
        );
        assert!(m.attachments.is_empty());
    });
}

#[test]
fn euc_kr() {
    both_line_ends(EUC_KR, |m, s| {
        assert_eq!(m.subject, "수강 신청 안내");
        assert_eq!(s.subject, "수강 신청 안내");
        assert_eq!(m.from, "교무처 <academic@campus.ac.kr>");
        assert!(
            text(m).contains("안녕하세요, 캠퍼스 메일입니다."),
            "{:?}",
            m.text
        );
        assert!(text(m).contains("수강 신청은 이번 주 금요일까지입니다."));
    });
}

#[test]
fn iso_2022_kr() {
    both_line_ends(ISO_2022_KR, |m, s| {
        assert_eq!(m.subject, "기숙사 점검 일정");
        assert_eq!(s.subject, "기숙사 점검 일정");
        assert_eq!(m.from, "생활관 행정실 <dorm@campus.ac.kr>");
        assert_eq!(s.from, m.from);
        assert!(
            text(m)
                .contains("안녕하세요, 캠퍼스 메일입니다.\n기숙사 점검은 수요일 오전에 있습니다."),
            "{:?}",
            m.text
        );
        assert!(!text(m).contains('\u{fffd}'));
    });
}

#[test]
fn cp949() {
    both_line_ends(CP949, |m, s| {
        assert_eq!(m.subject, "똠얌꿍 파티 초대");
        assert_eq!(s.subject, m.subject);
        assert_eq!(m.from, "요리 동아리 <club@campus.ac.kr>");
        assert!(
            text(m).contains("똠방각하 님, 안녕하세요. 캠퍼스 메일입니다."),
            "{:?}",
            m.text
        );
        assert!(text(m).contains("똠얌꿍을 먹습니다."));
    });
}

#[test]
fn html_is_sanitized_and_remote_images_blocked() {
    both_line_ends(HTML, |m, _| {
        assert_eq!(m.subject, "장학금 신청 안내");
        let html = m.html.as_deref().unwrap_or_default();
        assert!(html.contains("장학금 신청은 3월 14일까지입니다."), "{html}");
        for bad in [
            "<script",
            "onclick",
            "onload",
            "onmouseover",
            "javascript:",
            "<form",
            "<input",
            "<iframe",
            "tracker.example",
            "images.example",
            "evil.example",
            "url(",
        ] {
            assert!(!html.contains(bad), "{bad} survived: {html}");
        }
        assert!(m.remote_images_blocked);
        assert!(html.contains(r#"src="cid:logo@campus.ac.kr""#), "{html}");
        assert!(
            html.contains(r#"href="https://portal.campus.ac.kr/scholarship""#),
            "{html}"
        );
        assert!(
            html.contains(r#"rel="noopener noreferrer""#) && html.contains(r#"target="_blank""#)
        );
        assert!(text(m).contains("장학금 신청 안내입니다."));
    });
    let allowed = render(HTML, true);
    assert!(!allowed.remote_images_blocked);
    let html = allowed.html.unwrap_or_default();
    assert!(html.contains("https://tracker.example/pixel.gif") && !html.contains("<script"));
}

#[test]
fn attachments_are_listed() {
    both_line_ends(ATTACHMENT, |m, _| {
        assert_eq!(m.subject, "Syllabus / 강의계획서");
        assert_eq!(m.from, "Prof. Park <park@campus.ac.kr>");
        assert!(
            text(m).contains("첨부 파일을 확인해 주세요."),
            "{:?}",
            m.text
        );
        let got: Vec<_> = m
            .attachments
            .iter()
            .map(|a| (a.name.as_str(), a.content_type.as_str(), a.size))
            .collect();
        assert_eq!(
            got,
            vec![
                ("강의계획서.pdf", "application/pdf", 1063),
                ("명단.csv", "text/csv", 33)
            ]
        );
    });
}

#[test]
fn malformed_mime_shows_recoverable_text() {
    both_line_ends(MALFORMED, |m, s| {
        assert!(
            text(m).contains("깨진 메일이지만 이 문장은 보여야 합니다."),
            "{:?}",
            m.text
        );
        assert!(m.subject.contains("깨진"), "{}", m.subject);
        assert_eq!(m.date, None);
        assert_eq!(s.date, None);
    });
}

#[test]
fn every_fixture_renders_with_both_line_ends() {
    for (name, raw) in ALL {
        for bytes in [raw.to_vec(), lf_only(raw)] {
            let m = render(&bytes, false);
            assert!(m.text.is_some() || m.html.is_some(), "{name}: no body");
            assert!(!m.subject.is_empty(), "{name}: no subject");
        }
    }
}

#[test]
fn hostile_and_degenerate_input_does_not_panic() {
    let mut cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"\r\n".to_vec(),
        b"Subject: only headers\r\n".to_vec(),
        b"Subject: =?iso-2022-kr?B?GyQpQw4=?=\r\nFrom: =?iso-2022-kr?Q?=1B=0E?= <a@b>\r\n\r\n".to_vec(),
        b"Content-Type: text/plain; charset=iso-2022-kr\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!\x0e\x1b".to_vec(),
        b"Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n--\r\n".to_vec(),
        b"Content-Type: multipart/mixed; boundary=\"a\"\r\n\r\n--a\r\nContent-Type: message/rfc822\r\n\r\n--a".to_vec(),
        vec![0xff; 64],
        b"\x00\x01\x02From: \xff\xfe\r\n\r\n\x80\x81".to_vec(),
    ];
    // Deterministic junk: every fixture cut at many points, and bytes flipped.
    let mut seed: u32 = 0x2545_f491;
    for (_, raw) in ALL {
        for cut in (0..raw.len()).step_by(37) {
            cases.push(raw[..cut].to_vec());
        }
        let mut flipped = raw.to_vec();
        for _ in 0..64 {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            if let Some(b) = flipped.get_mut(seed as usize % raw.len().max(1)) {
                *b = (seed >> 8) as u8;
            }
        }
        cases.push(flipped);
    }
    for case in &cases {
        let _ = render(case, false);
        let _ = render(case, true);
        let _ = summarize(case);
    }
    assert_eq!(render(b"", false), RenderedMessage::default());
    assert_eq!(summarize(b""), HeaderSummary::default());
    let junk = render(b"Subject: only headers\r\n", false);
    assert_eq!(junk.subject, "only headers");
}

#[test]
fn unlabelled_euc_kr_body_and_header() {
    let mut raw = b"Subject: ".to_vec();
    raw.extend_from_slice(&encoding_rs::EUC_KR.encode("학과 공지").0);
    raw.extend_from_slice(b"\r\nFrom: a@campus.ac.kr\r\n\r\n");
    raw.extend_from_slice(
        &encoding_rs::EUC_KR
            .encode("안녕하세요, 캠퍼스 메일입니다.")
            .0,
    );
    let m = render(&raw, false);
    assert_eq!(m.subject, "학과 공지");
    assert_eq!(text(&m), "안녕하세요, 캠퍼스 메일입니다.");
}

#[test]
fn iso_2022_kr_decoder() {
    assert_eq!(
        charset::decode_iso2022kr(b"\x1b$)C\x0e>H3g\x0f, hi\r\n"),
        "안녕, hi\r\n"
    );
    // Line ends return to ASCII; stray bytes become U+FFFD, never a panic.
    assert_eq!(
        charset::decode_iso2022kr(b"\x0e>\nA\x1bX\xff"),
        "\u{fffd}\nA\u{fffd}X\u{fffd}"
    );
}

#[test]
fn the_thread_root_is_the_first_reference_else_the_parent_else_the_message() {
    let root =
        |headers: &str| summarize(format!("{headers}Subject: x\r\n\r\nbody\r\n").as_bytes()).thread;
    assert_eq!(
        root("Message-ID: <c@x>\r\nIn-Reply-To: <b@x>\r\nReferences: <a@x> <b@x>\r\n"),
        Some("a@x".into())
    );
    assert_eq!(
        root("Message-ID: <c@x>\r\nIn-Reply-To: <b@x>\r\n"),
        Some("b@x".into())
    );
    assert_eq!(root("Message-ID: <c@x>\r\n"), Some("c@x".into()));
    assert_eq!(root(""), None);
    let long = format!("Message-ID: <{}@x>\r\n", "a".repeat(300));
    assert_eq!(root(&long), None);
}
