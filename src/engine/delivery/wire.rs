//! What the delivery clients (LMTP and SMTP) share on the wire: parsing the
//! server's replies and dot-stuffing the message. No I/O here.
//!
//! Owns: nothing.
//!
//! Invariants:
//! - A reply is at most `MAX_REPLY_LINES` lines; anything that is not
//!   `ddd`, `ddd text` or `ddd-text` is malformed. Nothing here panics on
//!   any input.
//! - `dot_stuff` output always ends in CRLF (unless the message is empty)
//!   and no line of it starts with a single dot (RFC 5321 §4.5.2).
//!
//! Reads untrusted input: yes, reply lines of the peer server.

use std::fmt;

/// Longest reply line we accept, line end included. RFC 5321 §4.5.3.1.5
/// allows 512 octets; real servers send longer ones, so be generous.
pub(crate) const MAX_REPLY_LINE: usize = 4096;
/// Most lines in one reply (a long EHLO reply has about 20).
pub(crate) const MAX_REPLY_LINES: usize = 100;

/// A complete, possibly multi-line, server reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServerReply {
    pub(crate) code: u16,
    /// The text of each line, without code and line end.
    pub(crate) lines: Vec<String>,
}

impl ServerReply {
    /// The lines' text joined by spaces.
    pub(crate) fn text(&self) -> String {
        self.lines.join(" ")
    }

    pub(crate) fn is_positive(&self) -> bool {
        self.code / 100 == 2
    }

    pub(crate) fn is_permanent(&self) -> bool {
        self.code / 100 == 5
    }
}

/// `250 text` with the lines joined: how replies are quoted in logs and DSNs.
impl fmt::Display for ServerReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.text();
        if text.is_empty() {
            write!(f, "{}", self.code)
        } else {
            write!(f, "{} {}", self.code, text)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the server sent a malformed reply")]
pub(crate) struct MalformedReply;

/// Collects the lines of one reply (RFC 5321 §4.2.1).
#[derive(Debug, Default)]
pub(crate) struct ReplyAssembler {
    lines: Vec<String>,
}

impl ReplyAssembler {
    /// Feeds one line (with its line end); `Some` once the reply is complete.
    /// The code of the last line counts (they should all be the same).
    pub(crate) fn feed(&mut self, line: &[u8]) -> Result<Option<ServerReply>, MalformedReply> {
        let (code, last, text) = parse_reply_line(line).ok_or(MalformedReply)?;
        if self.lines.len() >= MAX_REPLY_LINES {
            return Err(MalformedReply);
        }
        self.lines.push(text);
        if !last {
            return Ok(None);
        }
        Ok(Some(ServerReply {
            code,
            lines: std::mem::take(&mut self.lines),
        }))
    }
}

/// `ddd text`, `ddd-text` or `ddd` → (code, is last line, text).
pub(crate) fn parse_reply_line(line: &[u8]) -> Option<(u16, bool, String)> {
    let line = line.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let digits = line.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) || !(b'2'..=b'5').contains(&digits[0]) {
        return None;
    }
    let code = digits
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    let last = match line.get(3) {
        None | Some(b' ') => true,
        Some(b'-') => false,
        Some(_) => return None,
    };
    let text = String::from_utf8_lossy(line.get(4..).unwrap_or(b"")).into_owned();
    Some((code, last, text))
}

/// Doubles a leading dot on every line and makes sure the message ends in
/// CRLF (RFC 5321 §4.5.2).
pub(crate) fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 2);
    let mut line_start = true;
    for (i, &b) in message.iter().enumerate() {
        if line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        line_start = b == b'\n' && i > 0 && message[i - 1] == b'\r';
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stuffs_dots_and_ends_with_crlf() {
        assert_eq!(dot_stuff(b".a\r\nb.\r\n..c\r\n"), b"..a\r\nb.\r\n...c\r\n");
        assert_eq!(dot_stuff(b"no end"), b"no end\r\n");
        assert_eq!(dot_stuff(b""), b"");
    }

    #[test]
    fn parses_reply_lines() {
        assert_eq!(
            parse_reply_line(b"250-mx.test\r\n"),
            Some((250, false, "mx.test".into()))
        );
        assert_eq!(
            parse_reply_line(b"452 4.2.2 full\r\n"),
            Some((452, true, "4.2.2 full".into()))
        );
        assert_eq!(
            parse_reply_line(b"220\r\n"),
            Some((220, true, String::new()))
        );
        for bad in [
            &b"25\r\n"[..],
            b"abc x\r\n",
            b"250x\r\n",
            b"999 x\r\n",
            b"250 no line end",
            b"",
            b"\r\n",
            b"\xff\xfe\xfd\r\n",
        ] {
            assert_eq!(parse_reply_line(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn assembles_multi_line_replies() {
        let mut a = ReplyAssembler::default();
        assert_eq!(a.feed(b"250-mx.test hello\r\n"), Ok(None));
        assert_eq!(a.feed(b"250-PIPELINING\r\n"), Ok(None));
        let reply = a.feed(b"250 SIZE 1000\r\n").unwrap().unwrap();
        assert_eq!(reply.code, 250);
        assert_eq!(reply.lines, ["mx.test hello", "PIPELINING", "SIZE 1000"]);
        assert_eq!(reply.to_string(), "250 mx.test hello PIPELINING SIZE 1000");
        // The assembler starts afresh after a complete reply.
        let reply = a.feed(b"221\r\n").unwrap().unwrap();
        assert_eq!(reply.to_string(), "221");
        assert!(a.feed(b"junk\r\n").is_err());
    }

    #[test]
    fn endless_continuation_lines_are_malformed() {
        let mut a = ReplyAssembler::default();
        let mut result = Ok(None);
        for _ in 0..=MAX_REPLY_LINES {
            result = a.feed(b"250-more\r\n");
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(MalformedReply));
    }

    #[test]
    fn non_utf8_reply_text_is_kept_lossily() {
        let (code, last, text) = parse_reply_line(b"550 caf\xe9\r\n").unwrap();
        assert_eq!((code, last), (550, true));
        assert!(text.starts_with("caf"));
    }
}
