//! SMTP and LMTP replies: one type, written out in one place.
//!
//! Owns: nothing but the wire format of a reply (RFC 5321 §4.2): a three-digit
//! code, an optional enhanced status code (RFC 3463, advertised as
//! ENHANCEDSTATUSCODES per RFC 2034) and one or more text lines.
//!
//! Invariants:
//! - Every line the server sends to a peer goes through `Reply::write_to`.
//! - Reply text never holds CR or LF: text that echoes peer input (addresses,
//!   host names) cannot inject extra reply lines.
//! - Multi-line replies repeat code and enhanced status on every line
//!   (RFC 5321 §4.2.1, RFC 2034 §4).
//!
//! Reads untrusted input: no (callers may put peer text in a reply; it is
//! cleaned here).

use std::fmt;

/// One protocol reply to a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    code: u16,
    /// Enhanced status code such as "5.1.1"; absent for the greeting and for
    /// EHLO/LHLO replies (RFC 2034 §3) and SASL challenges (334).
    status: Option<&'static str>,
    lines: Vec<String>,
}

impl Reply {
    /// A one-line reply with an enhanced status code.
    pub(crate) fn new(code: u16, status: &'static str, text: impl Into<String>) -> Reply {
        Reply {
            code,
            status: Some(status),
            lines: vec![clean(text.into())],
        }
    }

    /// A one-line reply without an enhanced status code (greeting, 334).
    pub(crate) fn bare(code: u16, text: impl Into<String>) -> Reply {
        Reply {
            code,
            status: None,
            lines: vec![clean(text.into())],
        }
    }

    /// A multi-line reply without enhanced status (EHLO/LHLO keyword lists).
    pub(crate) fn multiline(code: u16, lines: Vec<String>) -> Reply {
        let mut lines: Vec<String> = lines.into_iter().map(clean).collect();
        if lines.is_empty() {
            lines.push(String::new());
        }
        Reply {
            code,
            status: None,
            lines,
        }
    }

    #[cfg(test)]
    pub(crate) fn code(&self) -> u16 {
        self.code
    }

    pub(crate) fn is_permanent_failure(&self) -> bool {
        self.code >= 500
    }

    /// The text of all lines joined by a space, for logs and envelope errors.
    pub(crate) fn text(&self) -> String {
        self.lines.join(" ")
    }

    /// Appends the reply in wire format (CRLF line ends) to `out`.
    pub(crate) fn write_to(&self, out: &mut Vec<u8>) {
        let last = self.lines.len().saturating_sub(1);
        for (i, line) in self.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            out.extend_from_slice(format!("{:03}{}", self.code, sep).as_bytes());
            if let Some(status) = self.status {
                out.extend_from_slice(status.as_bytes());
                if !line.is_empty() {
                    out.push(b' ');
                }
            }
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(status) => write!(f, "{} {} {}", self.code, status, self.text()),
            None => write!(f, "{} {}", self.code, self.text()),
        }
    }
}

/// Replaces control characters (CR, LF, NUL, ...) so text stays on one line.
fn clean(text: String) -> String {
    if text.chars().any(char::is_control) {
        text.chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(reply: &Reply) -> String {
        let mut out = Vec::new();
        reply.write_to(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn single_line_with_enhanced_status() {
        let r = Reply::new(550, "5.1.1", "<x@campus.test>: no such user here");
        assert_eq!(wire(&r), "550 5.1.1 <x@campus.test>: no such user here\r\n");
        assert!(r.is_permanent_failure());
    }

    #[test]
    fn multiline_marks_continuation_lines() {
        let r = Reply::multiline(
            250,
            vec!["mx.test".into(), "PIPELINING".into(), "8BITMIME".into()],
        );
        assert_eq!(
            wire(&r),
            "250-mx.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
        );
    }

    #[test]
    fn bare_reply_and_empty_text() {
        assert_eq!(wire(&Reply::bare(334, "")), "334 \r\n");
        assert_eq!(wire(&Reply::new(250, "2.0.0", "")), "250 2.0.0\r\n");
    }

    #[test]
    fn peer_text_cannot_inject_lines() {
        let r = Reply::new(501, "5.1.3", "bad <a\r\n250 ok>");
        assert_eq!(wire(&r), "501 5.1.3 bad <a??250 ok>\r\n");
    }
}
