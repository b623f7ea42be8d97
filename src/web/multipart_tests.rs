//! Tests of the multipart/form-data parser, with bodies as Chromium and
//! curl send them, and malformed ones.

use super::*;

const CT: &str = "multipart/form-data; boundary=----WebKitFormBoundaryAbC123";

fn body(parts: &[&str]) -> Vec<u8> {
    let mut out = String::new();
    for p in parts {
        out.push_str("------WebKitFormBoundaryAbC123\r\n");
        out.push_str(p);
        out.push_str("\r\n");
    }
    out.push_str("------WebKitFormBoundaryAbC123--\r\n");
    out.into_bytes()
}

#[test]
fn fields_and_files_as_a_browser_sends_them() {
    let raw = body(&[
        "Content-Disposition: form-data; name=\"to\"\r\n\r\nbob@campus.test",
        "Content-Disposition: form-data; name=\"subject\"\r\n\r\n수강 신청\r\n둘째 줄",
        "Content-Disposition: form-data; name=\"attachment\"; filename=\"안내문 (최종).pdf\"\r\nContent-Type: application/pdf\r\n\r\n%PDF\r\n--not-a-boundary\r\n\x00\x01",
        "Content-Disposition: form-data; name=\"attachment\"; filename=\"\"\r\nContent-Type: application/octet-stream\r\n\r\n",
    ]);
    let form = parse(CT, &raw).unwrap();
    assert_eq!(form.get("to"), Some("bob@campus.test"));
    assert_eq!(form.get("subject"), Some("수강 신청\r\n둘째 줄"));
    assert_eq!(form.get("missing"), None);
    assert_eq!(form.files.len(), 2);
    assert_eq!(form.files[0].name, "안내문 (최종).pdf");
    assert_eq!(form.files[0].content_type, "application/pdf");
    assert_eq!(form.files[0].data, b"%PDF\r\n--not-a-boundary\r\n\x00\x01");
    assert_eq!(form.files[1].name, "");
    assert!(form.files[1].data.is_empty());
}

#[test]
fn boundaries_from_the_content_type() {
    assert_eq!(
        boundary(CT).as_deref(),
        Some("----WebKitFormBoundaryAbC123")
    );
    assert_eq!(
        boundary("Multipart/Form-Data; charset=utf-8; boundary=\"a b\"").as_deref(),
        Some("a b")
    );
    for bad in [
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "multipart/form-data; boundary=",
        "multipart/form-data; boundary=a\r\nb",
        &format!("multipart/form-data; boundary={}", "x".repeat(71)),
    ] {
        assert_eq!(boundary(bad), None, "{bad:?}");
        assert_eq!(parse(bad, b""), Err(MultipartError::NotMultipart));
    }
}

#[test]
fn file_names_lose_paths_and_controls() {
    let raw = body(&[
        "Content-Disposition: form-data; name=\"attachment\"; filename=\"C:\\\\Users\\\\kim\\\\보고서.hwp\"\r\n\r\nx",
        "Content-Disposition: form-data; name=\"attachment\"; filename=\"../../etc/passwd\"\r\n\r\nx",
        "Content-Disposition: form-data; name=\"attachment\"; filename=\"a%22b%0D%0Ac.txt\"\r\n\r\nx",
    ]);
    let form = parse(CT, &raw).unwrap();
    let names: Vec<_> = form.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["보고서.hwp", "passwd", "a\"bc.txt"]);
}

#[test]
fn malformed_bodies_are_errors() {
    let ok_part = "Content-Disposition: form-data; name=\"a\"\r\n\r\n1";
    let mut unterminated = body(&[ok_part]);
    unterminated.truncate(unterminated.len() - 30);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"garbage".to_vec(), "no boundary at the start"),
        (unterminated, "not closed"),
        (
            body(&["Content-Disposition: form-data; name=\"a\"\r\n1"]),
            "no blank line",
        ),
        (
            body(&["Content-Type: text/plain\r\n\r\n1"]),
            "no disposition",
        ),
        (
            body(&["Content-Disposition: attachment; name=\"a\"\r\n\r\n1"]),
            "not form-data",
        ),
        (
            body(&["Content-Disposition: form-data\r\n\r\n1"]),
            "no name",
        ),
        (body(&[ok_part, ok_part]), "repeated field"),
        (
            body(&["Content-Disposition: form-data; name=\"a\"\r\n\r\n\u{0}\u{0}"])
                .into_iter()
                .map(|b| if b == 0 { 0xff } else { b })
                .collect(),
            "not UTF-8",
        ),
    ];
    for (raw, what) in cases {
        assert!(parse(CT, &raw).is_err(), "{what}");
    }
    let many: Vec<String> = (0..=MAX_PARTS)
        .map(|i| format!("Content-Disposition: form-data; name=\"f{i}\"\r\n\r\n1"))
        .collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(parse(CT, &body(&many)), Err(MultipartError::TooManyParts));
}

#[test]
fn never_panics_on_truncations() {
    let raw = body(&[
        "Content-Disposition: form-data; name=\"to\"\r\n\r\nbob@campus.test",
        "Content-Disposition: form-data; name=\"f\"; filename=\"x\"\r\n\r\n12345",
    ]);
    for cut in 0..raw.len() {
        let _ = parse(CT, &raw[..cut]);
    }
}
