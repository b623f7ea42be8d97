//! Telling senders what became of their mail: delivery status notifications
//! (RFC 3464) built by `dsn.rs`, queued through the one door from the null
//! sender.
//!
//! Invariants:
//! - Never a DSN for a message from the null sender (RFC 5321 §6.1: no
//!   bounce of a bounce), so notifications can never loop.
//! - A DSN that cannot be built or queued is logged, never retried forever
//!   and never a reason to keep the original message.
//!
//! Reads untrusted input: remote servers' reply texts end up in the DSN;
//! `dsn.rs` keeps them from forming header lines.

use super::door::{Draft, QueueDoor};
use super::dsn::{self, DsnKind, DsnRecipient, DsnRequest};
use super::lane::QueueLane;
use super::{unix_now, Envelope, QueueId};
use crate::config::Config;

/// The RFC 3463 status code in a reply such as "550 5.1.1 no such user",
/// else one of class `default_class` made from the basic reply code.
pub fn dsn_status(reason: &str, default_class: char) -> String {
    let words: Vec<&str> = reason.split_whitespace().take(8).collect();
    for w in &words {
        let parts: Vec<&str> = w.split('.').collect();
        let is_code = parts.len() == 3
            && matches!(parts[0], "2" | "4" | "5")
            && parts[1..]
                .iter()
                .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()));
        if is_code {
            return (*w).to_string();
        }
    }
    let basic = words
        .iter()
        .find(|w| w.len() == 3 && w.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|w| w.chars().next())
        .filter(|c| matches!(c, '4' | '5'));
    format!("{}.0.0", basic.unwrap_or(default_class))
}

/// Builds and queues a DSN about `recipients` of `envelope` to its sender.
pub async fn send_dsn(
    door: &QueueDoor,
    config: &Config,
    envelope: &Envelope,
    kind: DsnKind,
    recipients: &[DsnRecipient],
    original: &[u8],
) {
    if envelope.sender.is_empty() {
        tracing::info!(queue_id = %envelope.id, "no notification: the message came from the null sender");
        return;
    }
    let request = DsnRequest {
        reporting_mta: &config.node.hostname,
        original_sender: &envelope.sender,
        queue_id: &envelope.id,
        arrival_date: envelope.arrived_at as i64,
        kind,
        recipients,
        original_message: original,
        now: unix_now() as i64,
    };
    let message = match dsn::build(&request) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(queue_id = %envelope.id, error = %e, "cannot build a delivery status notification");
            return;
        }
    };
    let draft = Draft {
        sender: String::new(),
        recipients: vec![envelope.sender.clone()],
        // Notifications are everyday mail even about a bulk message.
        lane: Some(QueueLane::Normal),
        ..Draft::default()
    };
    let id = QueueId::generate();
    match door.submit(id.clone(), draft, message).await {
        Ok(_) => tracing::info!(queue_id = %envelope.id, dsn = %id, to = %envelope.sender,
            kind = ?kind, recipients = recipients.len(), "delivery status notification queued"),
        Err(e) => {
            tracing::warn!(queue_id = %envelope.id, error = %e, "cannot queue a delivery status notification")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_come_from_replies() {
        assert_eq!(dsn_status("550 5.1.1 <x@y>: no such user", '5'), "5.1.1");
        assert_eq!(
            dsn_status("remote said: 552 5.2.2 mailbox full", '5'),
            "5.2.2"
        );
        assert_eq!(dsn_status("554 transaction failed", '5'), "5.0.0");
        assert_eq!(dsn_status("451 try later", '4'), "4.0.0");
        assert_eq!(dsn_status("connection refused", '4'), "4.0.0");
        assert_eq!(dsn_status("4.4.7 gave up", '5'), "4.4.7");
    }
}
