//! When an auto-reply may answer a message (RFC 3834 §2), and what the
//! reply looks like (§3): pure functions over the delivered message's
//! header section, no I/O.
//!
//! Invariants:
//! - Never an answer to the null reverse path, to a message with
//!   `Auto-Submitted` other than `no`, `Precedence: bulk/list/junk`, any
//!   `List-*` field, bulk-lane mail, mail that does not name the user (or
//!   one of their aliases) in To or Cc, or mail from the user themselves or
//!   a mailer daemon.
//! - The reply carries `Auto-Submitted: auto-replied` (§5), `In-Reply-To`
//!   and `References` (§3.1.3, §3.1.4), comes from the user's own address
//!   and goes only to the reverse path (§4); its own reverse path is null
//!   (§3.3), which `mod.rs` uses when submitting.
//!
//! Reads untrusted input: yes, header fields of received mail (parsed by
//! mail-parser through `mime::original`; never panics).

use crate::directory::address::normalize_address;
use crate::directory::settings::Vacation;
use crate::mime::compose::{new_message_id, Mailbox, Outgoing};
use crate::mime::header_section::{count_fields, field_value};
use crate::mime::original::{self, Original};

/// Why a message gets no auto-reply; data, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    NullSender,
    AutoSubmitted,
    Precedence,
    MailingList,
    BulkLane,
    /// The user is not among To/Cc (a Bcc, a list, a forward).
    NotAddressed,
    /// From the user or from an address no person reads.
    FromRobotOrSelf,
}

/// What the rules read of a delivered message.
pub struct Incoming<'a> {
    /// The reverse path (Return-Path); empty for `<>`.
    pub sender: &'a str,
    /// The header section of the message.
    pub header: &'a [u8],
    /// The engine delivered it from the bulk lane.
    pub bulk_lane: bool,
}

/// May `user` (whose mail also arrives as `aliases`) answer `incoming`?
pub fn may_answer(incoming: &Incoming<'_>, user: &str, aliases: &[String]) -> Result<(), Skip> {
    let Some(sender) = normalize_address(incoming.sender) else {
        return Err(Skip::NullSender);
    };
    if incoming.bulk_lane {
        return Err(Skip::BulkLane);
    }
    let header = incoming.header;
    // §2: "Auto-Submitted" with any value but "no" (RFC 3834 §5 syntax:
    // the keyword, then optional parameters after ";").
    if let Some(value) = field_value(header, "Auto-Submitted") {
        let keyword = value.split(';').next().unwrap_or("").trim();
        if !keyword.eq_ignore_ascii_case("no") {
            return Err(Skip::AutoSubmitted);
        }
    }
    if let Some(value) = field_value(header, "Precedence") {
        let value = value.trim();
        if ["bulk", "list", "junk"]
            .iter()
            .any(|p| value.eq_ignore_ascii_case(p))
        {
            return Err(Skip::Precedence);
        }
    }
    // RFC 2369 and RFC 2919 list fields: List-Id, List-Unsubscribe, ...
    for name in [
        "List-Id",
        "List-Help",
        "List-Unsubscribe",
        "List-Subscribe",
        "List-Post",
        "List-Owner",
        "List-Archive",
    ] {
        if count_fields(header, name) > 0 {
            return Err(Skip::MailingList);
        }
    }
    let local = sender.split('@').next().unwrap_or("");
    let robot = local.eq_ignore_ascii_case("mailer-daemon")
        || local.eq_ignore_ascii_case("postmaster")
        || local.eq_ignore_ascii_case("noreply")
        || local.eq_ignore_ascii_case("no-reply")
        || local.to_ascii_lowercase().starts_with("owner-")
        || local.to_ascii_lowercase().ends_with("-request");
    let mine = |a: &str| a == user || aliases.iter().any(|x| x == a);
    if robot || mine(&sender) {
        return Err(Skip::FromRobotOrSelf);
    }
    let parsed = original::read(header);
    let addressed = parsed
        .to
        .iter()
        .chain(&parsed.cc)
        .filter_map(|m| normalize_address(&m.address))
        .any(|a| mine(&a));
    if !addressed {
        return Err(Skip::NotAddressed);
    }
    Ok(())
}

/// The auto-reply to `incoming` from `user`, as bytes to submit.
pub fn build_reply(
    incoming: &Incoming<'_>,
    user: &str,
    vacation: &Vacation,
    hostname: &str,
    now: i64,
) -> Vec<u8> {
    let parent: Original = original::read(incoming.header);
    let (in_reply_to, references) = original::thread_ids(&parent);
    // §3.1.5: the subject starts with "Auto:" so people and programs see
    // the reply is automatic; then the user's own subject, or else the
    // subject of the message answered.
    let own = vacation.subject.trim();
    let subject = if own.is_empty() {
        format!("Auto: {}", parent.subject.trim())
    } else {
        format!("Auto: {own}")
    };
    let outgoing = Outgoing {
        from: user.to_string(),
        to: vec![Mailbox {
            name: None,
            address: incoming.sender.to_string(),
        }],
        subject,
        text: vacation.text.clone(),
        in_reply_to,
        references,
        message_id: new_message_id(hostname, now),
        date: now,
        ..Outgoing::default()
    };
    let mut message = b"Auto-Submitted: auto-replied\r\n".to_vec();
    message.extend_from_slice(&outgoing.build(false));
    message
}

/// The header section of `message` (with its ending blank line), at most
/// `limit` bytes: all the rules and the reply need.
pub fn header_section(message: &[u8], limit: usize) -> &[u8] {
    let end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .or_else(|| message.windows(2).position(|w| w == b"\n\n").map(|p| p + 2))
        .unwrap_or(message.len());
    &message[..end.min(limit)]
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: &str = "kim@campus.test";

    fn header(extra: &str) -> String {
        format!(
            "From: Lee <lee@far.test>\r\nTo: Kim <Kim@Campus.test>\r\nSubject: 회의\r\n\
             Message-ID: <m1@far.test>\r\nReferences: <m0@far.test>\r\n{extra}\r\n"
        )
    }

    fn check(sender: &str, extra: &str, bulk_lane: bool) -> Result<(), Skip> {
        let h = header(extra);
        let incoming = Incoming {
            sender,
            header: h.as_bytes(),
            bulk_lane,
        };
        may_answer(&incoming, USER, &["office@campus.test".to_string()])
    }

    #[test]
    fn answers_a_personal_message() {
        assert_eq!(check("lee@far.test", "", false), Ok(()));
        assert_eq!(
            check("lee@far.test", "Auto-Submitted: no\r\n", false),
            Ok(())
        );
        assert_eq!(
            check("lee@far.test", "Precedence: first-class\r\n", false),
            Ok(())
        );
    }

    #[test]
    fn never_answers_what_rfc3834_section2_excludes() {
        assert_eq!(check("", "", false), Err(Skip::NullSender));
        assert_eq!(check("lee@far.test", "", true), Err(Skip::BulkLane));
        for auto in [
            "auto-generated",
            "auto-replied",
            "Auto-Notified; owner-email=x@y",
        ] {
            let extra = format!("Auto-Submitted: {auto}\r\n");
            assert_eq!(
                check("lee@far.test", &extra, false),
                Err(Skip::AutoSubmitted),
                "{auto}"
            );
        }
        for p in ["bulk", "List", "junk"] {
            let extra = format!("Precedence: {p}\r\n");
            assert_eq!(check("lee@far.test", &extra, false), Err(Skip::Precedence));
        }
        assert_eq!(
            check("lee@far.test", "List-Id: <staff.campus.test>\r\n", false),
            Err(Skip::MailingList)
        );
        assert_eq!(
            check("lee@far.test", "list-unsubscribe: <mailto:x@y>\r\n", false),
            Err(Skip::MailingList)
        );
        assert_eq!(
            check("MAILER-DAEMON@far.test", "", false),
            Err(Skip::FromRobotOrSelf)
        );
        assert_eq!(
            check("kim@campus.test", "", false),
            Err(Skip::FromRobotOrSelf)
        );
        assert_eq!(
            check("staff-request@far.test", "", false),
            Err(Skip::FromRobotOrSelf)
        );
    }

    #[test]
    fn answers_only_when_named_in_to_or_cc() {
        let h = "From: lee@far.test\r\nTo: everyone@far.test\r\nSubject: x\r\n\r\n";
        let incoming = Incoming {
            sender: "lee@far.test",
            header: h.as_bytes(),
            bulk_lane: false,
        };
        assert_eq!(may_answer(&incoming, USER, &[]), Err(Skip::NotAddressed));
        let h = "From: lee@far.test\r\nTo: a@far.test\r\nCc: office@campus.test\r\n\r\n";
        let incoming = Incoming {
            header: h.as_bytes(),
            ..incoming
        };
        assert_eq!(may_answer(&incoming, USER, &[]), Err(Skip::NotAddressed));
        assert_eq!(
            may_answer(&incoming, USER, &["office@campus.test".into()]),
            Ok(())
        );
    }

    #[test]
    fn the_reply_threads_and_says_it_is_automatic() {
        let h = header("");
        let incoming = Incoming {
            sender: "lee@far.test",
            header: h.as_bytes(),
            bulk_lane: false,
        };
        let vacation = Vacation {
            enabled: true,
            text: "12월 10일까지 휴가입니다.\nBack on 10 December.".into(),
            ..Vacation::default()
        };
        let reply = build_reply(&incoming, USER, &vacation, "mx.campus.test", 1_700_000_000);
        let parsed = mail_parser::MessageParser::default()
            .parse(&reply[..])
            .unwrap();
        assert_eq!(
            parsed.header_raw("Auto-Submitted").map(str::trim),
            Some("auto-replied")
        );
        assert_eq!(parsed.subject(), Some("Auto: 회의"));
        assert_eq!(parsed.in_reply_to().as_text(), Some("m1@far.test"));
        let refs: Vec<_> = parsed
            .references()
            .as_text_list()
            .unwrap_or_default()
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(refs, ["m0@far.test", "m1@far.test"]);
        assert_eq!(
            parsed
                .from()
                .and_then(|a| a.first())
                .and_then(|a| a.address()),
            Some(USER)
        );
        assert_eq!(
            parsed
                .to()
                .and_then(|a| a.first())
                .and_then(|a| a.address()),
            Some("lee@far.test")
        );
        assert!(parsed.body_text(0).unwrap().contains("휴가"));
        let own = Vacation {
            subject: "부재중 / Away".into(),
            ..vacation
        };
        let reply = build_reply(&incoming, USER, &own, "mx.campus.test", 1_700_000_000);
        let parsed = mail_parser::MessageParser::default()
            .parse(&reply[..])
            .unwrap();
        assert_eq!(parsed.subject(), Some("Auto: 부재중 / Away"));
    }

    #[test]
    fn header_section_stops_at_the_blank_line_and_the_limit() {
        assert_eq!(header_section(b"A: b\r\n\r\nbody", 100), b"A: b\r\n\r\n");
        assert_eq!(header_section(b"A: b\n\nbody", 100), b"A: b\n\n");
        assert_eq!(header_section(b"A: b\r\n\r\nbody", 3), b"A: ");
        assert_eq!(header_section(b"", 3), b"");
    }
}
