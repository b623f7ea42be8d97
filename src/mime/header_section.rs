//! Working on a message's header section as bytes, without parsing the
//! whole message: finding and removing fields, e.g. trace or control fields
//! that only this appliance may set.
//!
//! Invariants:
//! - The body is never touched; a message without a header/body separator
//!   is treated as all header.
//! - A field is removed with its folded continuation lines (RFC 5322 §2.2.3).
//!
//! Reads untrusted input: yes (any received message); never panics.

use std::borrow::Cow;

/// Length of the header section including the blank line that ends it.
fn header_len(message: &[u8]) -> usize {
    let mut i = 0;
    while i < message.len() {
        let line_end = message[i..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(message.len(), |p| i + p + 1);
        let line = &message[i..line_end];
        if line == b"\r\n" || line == b"\n" {
            return line_end;
        }
        i = line_end;
    }
    message.len()
}

fn field_name(line: &[u8]) -> Option<&[u8]> {
    let colon = line.iter().position(|&b| b == b':')?;
    // RFC 5322 §4.5.3 (obsolete syntax): whitespace may precede the colon.
    let name = line[..colon].trim_ascii_end();
    (!name.is_empty() && name.iter().all(|b| b.is_ascii_graphic())).then_some(name)
}

/// The message without the header fields for which `remove(name, field)`
/// says true (`field` is the whole field, folded lines included).
pub fn remove_fields<'m>(message: &'m [u8], remove: impl Fn(&str, &[u8]) -> bool) -> Cow<'m, [u8]> {
    let end = header_len(message);
    let mut out: Option<Vec<u8>> = None;
    let mut i = 0;
    while i < end {
        // One field: its first line and any continuation lines.
        let mut j = i;
        loop {
            j = message[j..end]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(end, |p| j + p + 1);
            if j >= end || !matches!(message[j], b' ' | b'\t') {
                break;
            }
        }
        let field = &message[i..j];
        let drop = field_name(field)
            .map(|n| remove(&String::from_utf8_lossy(n), field))
            .unwrap_or(false);
        match (&mut out, drop) {
            (None, true) => out = Some(message[..i].to_vec()),
            (Some(o), false) => o.extend_from_slice(field),
            _ => {}
        }
        i = j;
    }
    match out {
        Some(mut o) => {
            o.extend_from_slice(&message[end.max(i).min(message.len())..]);
            Cow::Owned(o)
        }
        None => Cow::Borrowed(message),
    }
}

/// How many header fields are called `name` (case-insensitive).
pub fn count_fields(message: &[u8], name: &str) -> usize {
    let end = header_len(message);
    message[..end]
        .split(|&b| b == b'\n')
        .filter(|line| !line.starts_with(b" ") && !line.starts_with(b"\t"))
        .filter_map(field_name)
        .filter(|n| n.eq_ignore_ascii_case(name.as_bytes()))
        .count()
}

/// The unfolded value of the first field called `name` (case-insensitive).
pub fn field_value(message: &[u8], name: &str) -> Option<String> {
    let end = header_len(message);
    let text = String::from_utf8_lossy(&message[..end]);
    let mut value: Option<String> = None;
    for line in text.split('\n') {
        let line = line.trim_end_matches('\r');
        match &mut value {
            Some(v) if line.starts_with([' ', '\t']) => v.push_str(line),
            Some(_) => break,
            None => {
                if let Some((n, v)) = line.split_once(':') {
                    if n.eq_ignore_ascii_case(name) {
                        value = Some(v.to_string());
                    }
                }
            }
        }
    }
    value.map(|v| v.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"X-Secret: a\r\n b\r\nSubject: hi\r\nx-secret: c\r\n\r\nX-Secret: body\r\n";

    #[test]
    fn removes_folded_fields_in_the_header_only() {
        let out = remove_fields(MSG, |n, _| n.eq_ignore_ascii_case("x-secret"));
        assert_eq!(&*out, b"Subject: hi\r\n\r\nX-Secret: body\r\n".as_slice());
        let same = remove_fields(MSG, |_, _| false);
        assert!(matches!(same, Cow::Borrowed(_)));
    }

    #[test]
    fn finds_values_and_survives_junk() {
        assert_eq!(field_value(MSG, "x-secret").as_deref(), Some("a b"));
        assert_eq!(field_value(MSG, "subject").as_deref(), Some("hi"));
        assert_eq!(field_value(MSG, "from"), None);
        assert_eq!(count_fields(MSG, "X-SECRET"), 2);
        assert_eq!(count_fields(MSG, "subject"), 1);
        assert_eq!(
            count_fields(b"Received: a\r\n Received: b\r\n\r\n", "received"),
            1
        );
        for junk in [&b""[..], b"\n", b"no colon", b"\r\n\r\n", b"A: b\n c"] {
            let _ = remove_fields(junk, |_, _| true);
            let _ = field_value(junk, "a");
        }
        assert_eq!(&*remove_fields(b"A: b\n c", |_, _| true), b"".as_slice());
    }
}
