//! Korean mail in every charset the campus receives (UTF-8, EUC-KR, CP949,
//! ISO-2022-KR), HTML mail with scripts and remote images, and malformed
//! MIME: sent over SMTP by swaks, read back through the webmail over HTTPS.

mod common;

use common::*;

/// (fixture, subject in the inbox, a sentence of its body)
const CASES: &[(&str, &str, &str)] = &[
    (
        "utf8-korean.eml",
        "도서관 운영 시간 변경 안내",
        "중앙도서관이 밤 11시까지 운영됩니다.",
    ),
    (
        "euc-kr.eml",
        "수강 신청 안내",
        "수강 신청은 이번 주 금요일까지입니다.",
    ),
    (
        "iso-2022-kr.eml",
        "기숙사 점검 일정",
        "기숙사 점검은 수요일 오전에 있습니다.",
    ),
    ("cp949.eml", "똠얌꿍 파티 초대", "똠얌꿍을 먹습니다."),
    (
        "malformed-mime.eml",
        "깨진",
        "깨진 메일이지만 이 문장은 보여야 합니다.",
    ),
];

#[test]
fn korean_legacy_charsets_display_correctly_in_the_webmail() {
    let node = Node::with_users();
    for (name, _, _) in CASES {
        send_fixture(&node, name);
    }
    let web = node.web_login("alice");
    let inbox = wait_until(30, || {
        let page = web.inbox();
        (web.message_links().len() == CASES.len()).then_some(page)
    })
    .unwrap_or_else(|| panic!("fixtures not all delivered: {}", node.log("all")));
    for (name, subject, _) in CASES {
        assert!(
            inbox.contains(subject),
            "{name}: subject {subject:?} not in inbox:\n{inbox}"
        );
    }
    assert!(
        !inbox.contains('\u{fffd}'),
        "replacement characters in the inbox:\n{inbox}"
    );

    for link in web.message_links() {
        let view = web.get(&link);
        assert_eq!(view.status, 200, "{link}: {}", view.body);
        let case = CASES
            .iter()
            .find(|(_, subject, _)| view.body.contains(subject))
            .unwrap_or_else(|| panic!("{link} shows none of the subjects: {}", view.body));
        assert!(
            view.body.contains(case.2),
            "{}: body text missing:\n{}",
            case.0,
            view.body
        );
        assert!(
            !view.body.contains('\u{fffd}'),
            "{}: replacement characters",
            case.0
        );
    }
}

#[test]
fn html_mail_is_sanitized_and_remote_images_are_blocked() {
    let node = Node::with_users();
    send_fixture(&node, "html-remote-images.eml");
    let web = node.web_login("alice");
    wait_until(30, || (web.message_links().len() == 1).then_some(()))
        .expect("HTML message delivered");
    let link = web.message_links()[0].clone();
    let view = web.get(&link);
    assert_eq!(view.status, 200);
    // The HTML is shown in a sandboxed frame, never inline in the page.
    assert!(
        view.body.contains("<iframe") && view.body.contains("sandbox"),
        "{}",
        view.body
    );
    assert!(
        view.body.contains("images=1"),
        "a way to show the blocked images: {}",
        view.body
    );

    let body = web.get(&format!("{link}/body"));
    assert_eq!(body.status, 200);
    assert!(
        body.body.contains("장학금 신청은 3월 14일까지입니다."),
        "{}",
        body.body
    );
    let lower = body.body.to_ascii_lowercase();
    for bad in [
        "<script",
        "onclick",
        "onerror",
        "javascript:",
        "tracker.example",
    ] {
        assert!(
            !lower.contains(bad),
            "{bad} survived sanitizing: {}",
            body.body
        );
    }
    let csp = body.headers.to_ascii_lowercase();
    assert!(
        csp.contains("content-security-policy: default-src 'none'"),
        "{csp}"
    );
    assert!(
        !csp.contains("img-src https:") && !csp.contains("img-src data: cid: https:"),
        "{csp}"
    );

    // Allowed on request: the remote image comes back, scripts still do not.
    let allowed = web.get(&format!("{link}/body?images=1"));
    assert!(allowed.body.contains("tracker.example"), "{}", allowed.body);
    assert!(!allowed.body.to_ascii_lowercase().contains("<script"));
}
