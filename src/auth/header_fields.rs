//! Header-section scanning for `strip_forged_results`: walks the header
//! fields of a raw message (folded fields, CRLF or bare LF line ends) and
//! drops the `Authentication-Results:` fields that claim our authserv-id
//! (RFC 8601 §5), leaving every other byte, the body included, as it was.
//!
//! Owns: nothing (pure functions over byte slices).
//!
//! Invariants: never panics, never rewrites a byte it keeps; returns the
//! input borrowed when nothing is removed.
//!
//! Reads untrusted input: yes, received messages.

use std::borrow::Cow;

use crate::mime::header_section::remove_fields;

/// Removes every `Authentication-Results:` header field whose authserv-id
/// equals `authserv_id` (ASCII case-insensitive), so nobody outside can
/// forge our verdicts (RFC 8601 §5). Other fields (including
/// `ARC-Authentication-Results:`) and the body are kept byte for byte.
pub fn strip_forged_results<'m>(message: &'m [u8], authserv_id: &str) -> Cow<'m, [u8]> {
    remove_fields(message, |_, field| claims_authserv_id(field, authserv_id))
}

/// Whether `field` (a whole header field) is an `Authentication-Results:`
/// field whose authserv-id is `ours`.
pub fn claims_authserv_id(field: &[u8], ours: &str) -> bool {
    let Some(colon) = field.iter().position(|&b| b == b':') else {
        return false;
    };
    let name = field[..colon].trim_ascii_end();
    if !name.eq_ignore_ascii_case(b"Authentication-Results") {
        return false;
    }
    authserv_id(&field[colon + 1..]).is_some_and(|id| id.eq_ignore_ascii_case(ours.as_bytes()))
}

/// The authserv-id at the start of an `Authentication-Results` value:
/// `[CFWS] value` where value is a token or a quoted-string (RFC 8601 §2.2).
fn authserv_id(value: &[u8]) -> Option<Cow<'_, [u8]>> {
    let rest = skip_cfws(value);
    if let Some(quoted) = rest.strip_prefix(b"\"") {
        let mut id = Vec::new();
        let mut bytes = quoted.iter();
        while let Some(&b) = bytes.next() {
            match b {
                b'"' => return Some(Cow::Owned(id)),
                b'\\' => id.push(*bytes.next()?),
                b'\r' | b'\n' => {}
                _ => id.push(b),
            }
        }
        return None;
    }
    let end = rest
        .iter()
        .position(|&b| b.is_ascii_whitespace() || b == b';' || b == b'(')
        .unwrap_or(rest.len());
    (end > 0).then(|| Cow::Borrowed(&rest[..end]))
}

/// Skips folding white space and (possibly nested) comments.
fn skip_cfws(mut rest: &[u8]) -> &[u8] {
    loop {
        rest = rest.trim_ascii_start();
        let Some(after) = rest.strip_prefix(b"(") else {
            return rest;
        };
        let mut depth = 1usize;
        let mut at = 0;
        while depth > 0 {
            match after.get(at) {
                None => return &[],
                Some(b'\\') => at += 1,
                Some(b'(') => depth += 1,
                Some(b')') => depth -= 1,
                Some(_) => {}
            }
            at += 1;
        }
        rest = after.get(at..).unwrap_or(&[]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str = "mx.campus.test";

    fn strip(message: &str) -> String {
        String::from_utf8(strip_forged_results(message.as_bytes(), OURS).into_owned()).unwrap()
    }

    #[test]
    fn removes_ours_and_keeps_others() {
        let message = "Received: from a\r\n\
            Authentication-Results: mx.campus.test; spf=pass smtp.mailfrom=a@b.test\r\n\
            Authentication-Results: mx.other.test; dkim=pass\r\n\
            ARC-Authentication-Results: i=1; mx.campus.test; dkim=pass\r\n\
            Subject: hi\r\n\
            \r\n\
            Authentication-Results: mx.campus.test; body text stays\r\n";
        assert_eq!(
            strip(message),
            "Received: from a\r\n\
            Authentication-Results: mx.other.test; dkim=pass\r\n\
            ARC-Authentication-Results: i=1; mx.campus.test; dkim=pass\r\n\
            Subject: hi\r\n\
            \r\n\
            Authentication-Results: mx.campus.test; body text stays\r\n"
        );
    }

    #[test]
    fn removes_folded_fields_whole_in_any_case_and_spelling() {
        let message = "authentication-results  :\r\n\t(forged) MX.Campus.Test 1;\r\n\
            \tspf=pass smtp.mailfrom=x@y.test;\r\n dkim=pass\r\n\
            Authentication-Results: \"mx.campus.test\"; dmarc=pass\r\n\
            Authentication-Results: mx.campus.test.evil; dmarc=pass\r\n\
            From: a@b.test\r\n\r\nbody\r\n";
        assert_eq!(
            strip(message),
            "Authentication-Results: mx.campus.test.evil; dmarc=pass\r\n\
            From: a@b.test\r\n\r\nbody\r\n"
        );
    }

    #[test]
    fn handles_bare_lf_and_messages_without_body() {
        assert_eq!(
            strip("Authentication-Results: mx.campus.test; none\nFrom: a@b.test\n\nbody\n"),
            "From: a@b.test\n\nbody\n"
        );
        assert_eq!(
            strip("From: a@b.test\r\nAuthentication-Results: mx.campus.test; none"),
            "From: a@b.test\r\n"
        );
    }

    #[test]
    fn borrows_when_nothing_is_removed() {
        let message = b"Authentication-Results: mx.other.test; none\r\n\r\nbody";
        assert!(matches!(
            strip_forged_results(message, OURS),
            Cow::Borrowed(_)
        ));
        assert!(matches!(strip_forged_results(b"", OURS), Cow::Borrowed(_)));
    }

    #[test]
    fn malformed_fields_never_panic() {
        for junk in [
            "Authentication-Results:",
            "Authentication-Results: (unclosed comment",
            "Authentication-Results: \"unclosed quote",
            "Authentication-Results: \"esc\\",
            "Authentication-Results: (a\\",
            "\r\n\r\n",
            " continuation first\r\n",
            "no colon at all\r\n",
        ] {
            let _ = strip_forged_results(junk.as_bytes(), OURS);
        }
    }
}
