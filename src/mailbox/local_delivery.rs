//! Local delivery: what the LMTP server calls to put mail in mailboxes.
//!
//! Joins the directory (who receives mail for an address: a user, or an
//! alias's users; their quotas) and the store (where it goes: the INBOX, or
//! Junk for quarantined mail).
//!
//! Invariants:
//! - a recipient is reported delivered only after the store has made the
//!   message durable for every mailbox the address expands to; all the
//!   recipients of one LMTP transaction are committed together (one blob,
//!   one flush);
//! - quotas: a mailbox already at its limit refuses at RCPT (452 4.2.2); a
//!   message that would take it past the limit is deferred (452 4.2.2) and
//!   one larger than the whole quota is refused (552 5.2.2). An alias is
//!   delivered to all of its users or none, so a retry never duplicates.
//! - the auto-reply (`vacation::Responder`) hears of a message only after
//!   it is stored, and never holds up the LMTP reply.
//!
//! Known gap: if the store fails after some ops of a batch, the retry may
//! store the message again for those mailboxes (a duplicate, never a loss).

use std::collections::HashSet;
use std::sync::Arc;

use super::lmtp::{DeliveryFailure, LocalDelivery, RecipientCheck};
use super::vacation::Responder;
use crate::directory::{Directory, UserRecord};
use crate::store::{Store, Usage};

/// Limits for users without their own (`[mailbox] default_quota*`); 0 = none.
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultQuota {
    pub bytes: u64,
    pub messages: u64,
}

/// A mailbox's effective limits; 0 = no limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    pub bytes: u64,
    pub messages: u64,
}

impl DefaultQuota {
    /// These defaults (`appliance.toml`'s) as the console's settings
    /// change them, if they do.
    pub fn as_set_in(self, directory: &Directory) -> DefaultQuota {
        let s = directory.appliance_settings();
        DefaultQuota {
            bytes: s.default_quota_bytes.unwrap_or(self.bytes),
            messages: s.default_quota_messages.unwrap_or(self.messages),
        }
    }
}

impl Quota {
    /// The user's own limits, else their class's (`Directory::limits_of`),
    /// else the server's default: `default` (from `appliance.toml`) unless
    /// the console's settings set another.
    pub fn of(directory: &Directory, user: &UserRecord, default: DefaultQuota) -> Quota {
        let default = default.as_set_in(directory);
        let (bytes, messages) = directory.limits_of(user);
        Quota {
            bytes: bytes.unwrap_or(default.bytes),
            messages: messages.unwrap_or(default.messages),
        }
    }

    /// True when nothing more fits.
    pub fn is_full(&self, usage: Usage) -> bool {
        (self.bytes > 0 && usage.bytes >= self.bytes)
            || (self.messages > 0 && usage.messages >= self.messages)
    }

    /// Why a message of `size` bytes does not fit, if it does not.
    fn refuse(&self, usage: Usage, size: u64) -> Option<DeliveryFailure> {
        if self.bytes > 0 && size > self.bytes {
            return Some(DeliveryFailure::MailboxFull {
                for_good: true,
                why: format!(
                    "message of {size} bytes is larger than the mailbox quota of {} bytes",
                    self.bytes
                ),
            });
        }
        let over_bytes = self.bytes > 0 && usage.bytes.saturating_add(size) > self.bytes;
        let over_count = self.messages > 0 && usage.messages.saturating_add(1) > self.messages;
        (over_bytes || over_count).then(|| DeliveryFailure::MailboxFull {
            for_good: false,
            why: "mailbox full; try again later".into(),
        })
    }
}

pub struct MailboxDelivery {
    directory: Arc<Directory>,
    store: Arc<Store>,
    default_quota: DefaultQuota,
    responder: Option<Responder>,
}

impl MailboxDelivery {
    pub fn new(directory: Arc<Directory>, store: Arc<Store>, default_quota: DefaultQuota) -> Self {
        MailboxDelivery {
            directory,
            store,
            default_quota,
            responder: None,
        }
    }

    /// The same delivery, telling `responder` of every stored message.
    pub fn with_responder(mut self, responder: Responder) -> Self {
        self.responder = Some(responder);
        self
    }

    fn quota(&self, mailbox: &str) -> Result<Quota, DeliveryFailure> {
        match self.directory.user(mailbox) {
            Ok(Some(u)) => Ok(Quota::of(&self.directory, &u, self.default_quota)),
            Ok(None) => Err(DeliveryFailure::Permanent(format!(
                "{mailbox}: no such user here"
            ))),
            Err(e) => Err(DeliveryFailure::Temporary(format!(
                "directory lookup failed: {e}"
            ))),
        }
    }

    /// The mailboxes `recipient` expands to, each with room for `size` bytes.
    /// The mailboxes `recipient` delivers to, less those in `stored_before`
    /// (empty if all of them were), each checked against its quota.
    fn mailboxes_with_room(
        &self,
        recipient: &str,
        size: u64,
        stored_before: &HashSet<String>,
    ) -> Result<Vec<String>, DeliveryFailure> {
        let mut mailboxes = self
            .directory
            .mailboxes_for(recipient)
            .map_err(|e| DeliveryFailure::Temporary(format!("directory lookup failed: {e}")))?;
        if mailboxes.is_empty() {
            return Err(DeliveryFailure::Permanent(format!(
                "{recipient}: no such user here"
            )));
        }
        // Before the quota: a stored copy must not make its retry "full".
        mailboxes.retain(|m| !stored_before.contains(m));
        for mailbox in &mailboxes {
            let usage = self
                .store
                .usage(mailbox)
                .map_err(|e| DeliveryFailure::Temporary(format!("mail store error: {e}")))?;
            if let Some(refusal) = self.quota(mailbox)?.refuse(usage, size) {
                return Err(refusal);
            }
        }
        Ok(mailboxes)
    }
}

impl LocalDelivery for MailboxDelivery {
    fn check_recipient(&self, address: &str) -> RecipientCheck {
        match self.directory.mailboxes_for(address) {
            Ok(m) if !m.is_empty() => {
                let full = m.iter().any(|mailbox| {
                    let usage = self.store.usage(mailbox).unwrap_or_default();
                    self.quota(mailbox).is_ok_and(|q| q.is_full(usage))
                });
                if full {
                    RecipientCheck::Full
                } else {
                    RecipientCheck::Accept
                }
            }
            Ok(_) => match self.directory.user(address) {
                Ok(Some(user)) if !user.enabled => RecipientCheck::Disabled,
                _ => RecipientCheck::Unknown,
            },
            Err(e) => {
                tracing::error!(error = %e, "directory lookup failed during LMTP RCPT");
                // Unknown would bounce the mail; a lookup failure must not.
                RecipientCheck::Accept
            }
        }
    }

    fn deliver(&self, recipient: &str, message: &[u8]) -> Result<(), DeliveryFailure> {
        self.deliver_many(&[recipient.to_string()], message, None)
            .into_iter()
            .next()
            .unwrap_or_else(|| Err(DeliveryFailure::Temporary("nothing delivered".into())))
    }

    fn deliver_many(
        &self,
        recipients: &[String],
        message: &[u8],
        queue_ref: Option<&str>,
    ) -> Vec<Result<(), DeliveryFailure>> {
        let folder = super::folders::folder_for(message);
        let size = message.len() as u64;
        // A retry of a transaction stored already (here or, replicated, on
        // the peer): those mailboxes are not given a second copy.
        let stored_before = match queue_ref.map(|r| self.store.delivered_for(r)) {
            Some(Ok(reached)) => reached,
            Some(Err(e)) => {
                let why = format!("mail store error: {e}");
                return vec![Err(DeliveryFailure::Temporary(why)); recipients.len()];
            }
            None => Default::default(),
        };
        let mut results: Vec<Result<(), DeliveryFailure>> = Vec::with_capacity(recipients.len());
        let mut targets: Vec<(usize, String)> = Vec::new();
        for (i, recipient) in recipients.iter().enumerate() {
            match self.mailboxes_with_room(recipient, size, &stored_before) {
                Ok(mailboxes) if mailboxes.is_empty() => {
                    tracing::info!(%recipient, queue_id = queue_ref.unwrap_or(""),
                        "stored before (a retry after a crash or a takeover); not stored again");
                    results.push(Ok(()));
                }
                Ok(mailboxes) => {
                    targets.extend(mailboxes.into_iter().map(|m| (i, m)));
                    results.push(Ok(()));
                }
                Err(e) => results.push(Err(e)),
            }
        }
        if targets.is_empty() {
            return results;
        }
        let pairs: Vec<(&str, &str)> = targets.iter().map(|(_, m)| (m.as_str(), folder)).collect();
        match self.store.deliver_for(&pairs, message, queue_ref) {
            Ok(ids) => {
                for ((i, mailbox), id) in targets.iter().zip(ids) {
                    let recipient = &recipients[*i];
                    tracing::info!(%recipient, %mailbox, %folder, message = %id, size, "delivered");
                }
                if let Some(responder) = &self.responder {
                    // Quarantined mail (Junk) is never answered.
                    if folder != super::folders::JUNK {
                        for (_, mailbox) in &targets {
                            responder.delivered(mailbox, message);
                        }
                    }
                }
            }
            Err(e) => {
                for (i, _) in &targets {
                    results[*i] = Err(DeliveryFailure::Temporary(format!("mail store error: {e}")));
                }
            }
        }
        results
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retried_transaction_is_not_stored_twice() {
        let dir = tempfile::tempdir().unwrap();
        let directory = Arc::new(
            Directory::open(&dir.path().join("dir.db"), &dir.path().join("snap.json")).unwrap(),
        );
        directory.add_domain("campus.test").unwrap();
        for user in ["kim", "lee"] {
            directory
                .add_user(&format!("{user}@campus.test"), "a long password 1")
                .unwrap();
        }
        let team = vec!["kim@campus.test".to_string(), "lee@campus.test".to_string()];
        directory.add_alias("team@campus.test", &team).unwrap();
        let store = Arc::new(Store::open(&dir.path().join("store"), "node-a").unwrap());
        // One message per mailbox is its whole quota: a stored copy must
        // not make the retry look like a full mailbox.
        let quota = DefaultQuota {
            bytes: 0,
            messages: 1,
        };
        let delivery = MailboxDelivery::new(directory, store.clone(), quota);
        let message = b"Subject: once\r\n\r\nonce\r\n";
        let to = vec!["team@campus.test".to_string()];
        let first = delivery.deliver_many(&to, message, Some("018f0000000000aabbccdd"));
        assert!(first.iter().all(|r| r.is_ok()), "{first:?}");
        // The engine did not record the 250 and tries again.
        let again = delivery.deliver_many(&to, message, Some("018f0000000000aabbccdd"));
        assert!(again.iter().all(|r| r.is_ok()), "{again:?}");
        for user in ["kim", "lee"] {
            let page = store
                .list(&format!("{user}@campus.test"), "INBOX", 0, 10)
                .unwrap();
            assert_eq!(page.total, 1, "{user} has one copy");
        }
        // Without the queue id nothing is recognised (the quota refuses).
        let other = delivery.deliver_many(&to, message, None);
        assert!(other.iter().all(|r| r.is_err()), "{other:?}");
    }

    #[test]
    fn quota_rules() {
        let q = Quota {
            bytes: 1000,
            messages: 3,
        };
        let used = |bytes, messages| Usage { bytes, messages };
        assert!(q.refuse(used(0, 0), 1000).is_none());
        assert!(matches!(
            q.refuse(used(0, 0), 1001),
            Some(DeliveryFailure::MailboxFull { for_good: true, .. })
        ));
        assert!(matches!(
            q.refuse(used(500, 1), 600),
            Some(DeliveryFailure::MailboxFull {
                for_good: false,
                ..
            })
        ));
        assert!(matches!(
            q.refuse(used(0, 3), 10),
            Some(DeliveryFailure::MailboxFull {
                for_good: false,
                ..
            })
        ));
        assert!(q.is_full(used(1000, 0)));
        assert!(q.is_full(used(0, 3)));
        assert!(!q.is_full(used(999, 2)));
        let none = Quota {
            bytes: 0,
            messages: 0,
        };
        assert!(none.refuse(used(u64::MAX - 1, u64::MAX - 1), 10).is_none());
        assert!(!none.is_full(used(u64::MAX, u64::MAX)));
    }
}
