//! Local delivery: what the LMTP server calls to put mail in mailboxes.
//!
//! Joins the directory (who receives mail for an address: a user, or an
//! alias's users) and the store (where it goes: the INBOX).
//!
//! Invariant: a recipient is reported delivered only after the store has
//! made the message durable for every mailbox the address expands to.
//! Known gap: if an alias expands to several users and the store fails
//! after some of them, the retry stores it again for those (a duplicate,
//! never a loss).

use std::sync::Arc;

use super::lmtp::{DeliveryFailure, LocalDelivery, RecipientCheck};
use crate::directory::Directory;
use crate::store::Store;

pub struct MailboxDelivery {
    directory: Arc<Directory>,
    store: Arc<Store>,
}

impl MailboxDelivery {
    pub fn new(directory: Arc<Directory>, store: Arc<Store>) -> Self {
        MailboxDelivery { directory, store }
    }
}

impl LocalDelivery for MailboxDelivery {
    fn check_recipient(&self, address: &str) -> RecipientCheck {
        match self.directory.mailboxes_for(address) {
            Ok(m) if !m.is_empty() => RecipientCheck::Accept,
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
        let mailboxes = self
            .directory
            .mailboxes_for(recipient)
            .map_err(|e| DeliveryFailure::Temporary(format!("directory lookup failed: {e}")))?;
        if mailboxes.is_empty() {
            return Err(DeliveryFailure::Permanent(format!(
                "{recipient}: no such user here"
            )));
        }
        let folder = super::folders::folder_for(message);
        for mailbox in mailboxes {
            let id = self
                .store
                .deliver(&mailbox, folder, message)
                .map_err(|e| DeliveryFailure::Temporary(format!("mail store error: {e}")))?;
            tracing::info!(%recipient, %mailbox, %folder, message = %id, size = message.len(), "delivered");
        }
        Ok(())
    }
}
