//! Emptying a deleted user's mailbox: the data-retention rule of a user
//! deletion (the console states it on the confirmation page and in the
//! admin guide).
//!
//! The rule: deleting a user deletes their mail for good, in every folder,
//! on both nodes (the deletions are ordinary `Expunge` ops in the log, so
//! the peer applies them too); the disk space comes back with the next
//! compaction. Mail that must be kept is kept by disabling the account
//! instead, which keeps everything.
//!
//! Owns nothing; uses the store's own API.
//!
//! Invariants:
//! - Called only while the account is disabled (no delivery, no login),
//!   so nothing new arrives while the folders are walked.
//! - User folders are deleted first (their mail moves to Trash), then
//!   every system folder is emptied page by page until it is empty, so a
//!   later user with the same address starts with an empty mailbox.
//!
//! Reads untrusted input: no.

use crate::store::folders::SYSTEM_FOLDERS;
use crate::store::{Store, StoreError};

/// Messages expunged per step.
const PAGE: usize = 500;

/// Deletes every message and folder of `user`; returns how many messages
/// were deleted.
pub fn empty_mailbox(store: &Store, user: &str) -> Result<usize, StoreError> {
    // Top folders first (each takes its subfolders along); the second
    // pass catches any left, e.g. one whose parent died on the peer.
    for folder in store.user_folders(user)? {
        if folder.parent.is_none() {
            store.delete_folder(user, &folder.id)?;
        }
    }
    for folder in store.user_folders(user)? {
        store.delete_folder(user, &folder.id)?;
    }
    let mut removed = 0;
    for folder in SYSTEM_FOLDERS {
        loop {
            let page = store.list(user, folder, 0, PAGE)?;
            if page.messages.is_empty() {
                break;
            }
            let ids: Vec<_> = page.messages.into_iter().map(|m| m.id).collect();
            let gone = store.expunge_messages(user, &ids)?;
            removed += gone;
            if gone == 0 {
                // Nothing could be removed: stop rather than loop forever.
                break;
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_folder_is_emptied() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), "node-a").unwrap();
        let user = "kim@campus.test";
        let msg = |n: usize| format!("Subject: m{n}\r\nFrom: a@b.test\r\n\r\nbody {n}\r\n");
        for n in 0..1_203 {
            store.deliver(user, "INBOX", msg(n).as_bytes()).unwrap();
        }
        store.deliver(user, "Sent", msg(9_999).as_bytes()).unwrap();
        let folder = store.create_folder(user, "Projects", None).unwrap();
        store
            .deliver(user, &folder, msg(10_000).as_bytes())
            .unwrap();
        store
            .deliver("lee@campus.test", "INBOX", msg(1).as_bytes())
            .unwrap();
        assert_eq!(empty_mailbox(&store, user).unwrap(), 1_205);
        assert_eq!(store.usage(user).unwrap().messages, 0);
        assert!(store.user_folders(user).unwrap().is_empty());
        assert_eq!(store.usage("lee@campus.test").unwrap().messages, 1);
    }
}
