//! The mailbox folders every user has, and how the engine asks LMTP
//! delivery to file a message into one of them.
//!
//! Invariant: `DELIVER_TO` and `LANE` are control fields only the engine may set: the
//! engine removes it from every message it accepts before deciding whether
//! to add its own (DMARC quarantine), so a sender can never choose a folder.

pub const INBOX: &str = "INBOX";
pub const JUNK: &str = "Junk";
/// Copies of what the user sent from the webmail.
pub const SENT: &str = "Sent";
/// Messages saved from the compose form, to be resumed.
pub const DRAFTS: &str = "Drafts";
/// Deleted messages, until purged (`purger`) or deleted for good.
pub const TRASH: &str = crate::store::folders::TRASH;

/// Header field the engine adds to ask for a folder other than the inbox.
pub const DELIVER_TO: &str = "X-Campusmail-Deliver-To";

/// Header field the engine puts on a bulk-lane message it hands to LMTP
/// (`X-Campusmail-Lane: bulk`), so the auto-reply never answers bulk mail
/// (RFC 3834 §2). Like `DELIVER_TO`, removed from every accepted message.
pub const LANE: &str = "X-Campusmail-Lane";

/// True when the engine marked `message` as bulk-lane mail.
pub fn is_bulk_lane(message: &[u8]) -> bool {
    crate::mime::header_section::field_value(message, LANE)
        .is_some_and(|v| v.eq_ignore_ascii_case("bulk"))
}

/// The folder a delivered message goes to: Junk when the engine asked for
/// it, else the inbox.
pub fn folder_for(message: &[u8]) -> &'static str {
    match crate::mime::header_section::field_value(message, DELIVER_TO) {
        Some(v) if v.eq_ignore_ascii_case(JUNK) => JUNK,
        _ => INBOX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_mark_files_into_junk() {
        assert_eq!(
            folder_for(b"X-Campusmail-Deliver-To: Junk\r\nSubject: x\r\n\r\n"),
            JUNK
        );
        assert_eq!(
            folder_for(b"Subject: x\r\n\r\nX-Campusmail-Deliver-To: Junk\r\n"),
            INBOX
        );
        assert_eq!(folder_for(b"X-Campusmail-Deliver-To: Trash\r\n\r\n"), INBOX);
    }

    #[test]
    fn the_engine_mark_tells_bulk_lane_mail() {
        assert!(is_bulk_lane(
            b"Return-Path: <a@x.test>\r\nX-Campusmail-Lane: bulk\r\n\r\n"
        ));
        assert!(!is_bulk_lane(
            b"Subject: x\r\n\r\nX-Campusmail-Lane: bulk\r\n"
        ));
        assert!(!is_bulk_lane(b"X-Campusmail-Lane: normal\r\n\r\n"));
    }
}
