//! The SMTP client's vocabulary: TLS policy, time limits, the server's
//! extensions, and the outcomes of a transaction (data, not errors).
//!
//! Owns: nothing.
//!
//! Invariants: parsing an EHLO reply never fails; unknown or malformed
//! extension lines are ignored (RFC 5321 §4.1.1.1).
//!
//! Reads untrusted input: yes, the EHLO reply's lines.

use std::time::Duration;

use super::super::wire::ServerReply;

/// Whether to use STARTTLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsPolicy {
    /// STARTTLS if offered, plain text if not. A failed handshake fails this
    /// connection temporarily; the caller may retry later with `Disabled`
    /// (as Postfix does) so a server with broken TLS still gets its mail.
    Opportunistic,
    /// STARTTLS or no delivery (temporary failure when not offered).
    Required,
    Disabled,
}

/// Limits for each wait on the server. Defaults follow RFC 5321 §4.5.3.2
/// (connecting is bounded separately, at 30 s like Postfix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientTimeouts {
    pub connect: Duration,
    /// §4.5.3.2.1 initial 220: 5 minutes.
    pub greeting: Duration,
    /// §4.5.3.2.2/3 MAIL, RCPT (and EHLO, STARTTLS, RSET): 5 minutes.
    pub command: Duration,
    /// §4.5.3.2.4 the 354 to DATA: 2 minutes.
    pub data_init: Duration,
    /// §4.5.3.2.5 each block of message data written: 3 minutes.
    pub data_block: Duration,
    /// §4.5.3.2.6 the reply after the final dot: 10 minutes.
    pub data_end: Duration,
}

impl Default for ClientTimeouts {
    fn default() -> Self {
        let minutes = |m: u64| Duration::from_secs(60 * m);
        ClientTimeouts {
            connect: Duration::from_secs(30),
            greeting: minutes(5),
            command: minutes(5),
            data_init: minutes(2),
            data_block: minutes(3),
            data_end: minutes(10),
        }
    }
}

impl ClientTimeouts {
    /// The same limit for every wait (tests use a short one).
    pub fn uniform(limit: Duration) -> Self {
        ClientTimeouts {
            connect: limit,
            greeting: limit,
            command: limit,
            data_init: limit,
            data_block: limit,
            data_end: limit,
        }
    }
}

/// What the server's EHLO reply offers (RFC 5321 §4.1.1.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions {
    pub pipelining: bool,
    /// SIZE offered, with its limit; `Some(0)` means no fixed limit
    /// (RFC 1870 §4).
    pub size: Option<u64>,
    pub eight_bit_mime: bool,
    pub smtputf8: bool,
    pub starttls: bool,
    pub enhanced_status_codes: bool,
}

impl Extensions {
    /// The lines after the first name one extension each: keyword, params.
    pub(super) fn from_ehlo(reply: &ServerReply) -> Extensions {
        let mut ext = Extensions::default();
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            match keyword.to_ascii_uppercase().as_str() {
                "PIPELINING" => ext.pipelining = true,
                "SIZE" => ext.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0)),
                "8BITMIME" => ext.eight_bit_mime = true,
                "SMTPUTF8" => ext.smtputf8 = true,
                "STARTTLS" => ext.starttls = true,
                "ENHANCEDSTATUSCODES" => ext.enhanced_status_codes = true,
                _ => {}
            }
        }
        ext
    }

    /// The server's fixed size limit, if it has one.
    pub fn size_limit(&self) -> Option<u64> {
        self.size.filter(|&n| n > 0)
    }
}

/// What became of one recipient; the text quotes the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientOutcome {
    Delivered(String),
    Temporary(String),
    Permanent(String),
}

/// A failure that applies to every recipient of the attempt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionFailure {
    #[error("{0}")]
    Temporary(String),
    #[error("{0}")]
    Permanent(String),
}

/// How a failed TLS handshake's text begins (see `is_tls_handshake`).
pub(super) const TLS_HANDSHAKE_FAILED: &str = "TLS handshake failed with ";

impl SessionFailure {
    /// True when STARTTLS was accepted but the handshake failed: with
    /// `TlsPolicy::Opportunistic` the caller may try the same server again
    /// with `TlsPolicy::Disabled` (RFC 7435 §6: fall back rather than not
    /// deliver).
    pub fn is_tls_handshake(&self) -> bool {
        matches!(self, SessionFailure::Temporary(text) if text.starts_with(TLS_HANDSHAKE_FAILED))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ehlo(lines: &[&str]) -> ServerReply {
        ServerReply {
            code: 250,
            lines: lines.iter().map(|l| l.to_string()).collect(),
        }
    }

    #[test]
    fn reads_extensions_case_insensitively() {
        let ext = Extensions::from_ehlo(&ehlo(&[
            "mx.test Hello",
            "pipelining",
            "SIZE 35882577",
            "8BITMIME",
            "SMTPUTF8",
            "StartTLS",
            "ENHANCEDSTATUSCODES",
            "AUTH PLAIN LOGIN",
        ]));
        assert_eq!(
            ext,
            Extensions {
                pipelining: true,
                size: Some(35882577),
                eight_bit_mime: true,
                smtputf8: true,
                starttls: true,
                enhanced_status_codes: true,
            }
        );
        assert_eq!(ext.size_limit(), Some(35882577));
    }

    #[test]
    fn the_greeting_line_is_not_an_extension_and_junk_is_ignored() {
        let ext = Extensions::from_ehlo(&ehlo(&["PIPELINING", "", "   ", "SIZE x", "\u{fffd}"]));
        assert!(!ext.pipelining);
        // SIZE without a usable number: offered, no fixed limit.
        assert_eq!(ext.size, Some(0));
        assert_eq!(ext.size_limit(), None);
        assert_eq!(Extensions::from_ehlo(&ehlo(&[])), Extensions::default());
    }

    #[test]
    fn tls_handshake_failures_are_recognisable() {
        let tls = SessionFailure::Temporary(format!("{TLS_HANDSHAKE_FAILED}mx[192.0.2.1]: eof"));
        assert!(tls.is_tls_handshake());
        let said = SessionFailure::Temporary("host mx said: 421 TLS handshake failed with".into());
        assert!(!said.is_tls_handshake());
    }
}
