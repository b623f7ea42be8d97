//! Changes to one user beyond password, state and quota: the display name
//! and deleting the account.
//!
//! Owns nothing beyond the `users` and `aliases` trees it writes.
//!
//! Invariants:
//! - Deleting removes the user's record, their own settings (signature,
//!   auto-reply, forwarding) and address book (`contacts`) and takes the address out of every alias; an alias left with no member is removed too (mail to it would
//!   bounce anyway). The mailbox itself belongs to the store: the mailbox
//!   role empties it before it calls `delete_user` (`mailbox::mailbox_removal`),
//!   so no mail is left that nobody can reach, and a later user with the
//!   same address starts with an empty mailbox.
//! - A display name is at most `MAX_DISPLAY_NAME` characters without
//!   control characters.
//!
//! Reads untrusted input: names from the console and the CLI (checked).

use super::address::normalize_address;
use super::refusal::Refusal;
use super::{Directory, DirectoryError};

/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME: usize = 100;

/// A display name as stored: trimmed, None when empty.
pub fn checked_display_name(name: &str) -> Result<Option<String>, DirectoryError> {
    let name = name.trim();
    if name.chars().count() > MAX_DISPLAY_NAME {
        return Err(Refusal::NameTooLong.into());
    }
    if name.chars().any(char::is_control) {
        return Err(Refusal::NameHasControl.into());
    }
    Ok((!name.is_empty()).then(|| name.to_string()))
}

impl Directory {
    /// Sets (or with "" clears) the user's display name.
    pub fn set_display_name(&self, address: &str, name: &str) -> Result<(), DirectoryError> {
        let name = checked_display_name(name)?;
        self.update_user(address, |u| {
            u.display_name = name;
            Ok(())
        })
    }

    /// Removes the user's record and their alias memberships (see the
    /// module comment for the mailbox). Returns the aliases removed
    /// because the user was their last member.
    pub fn delete_user(&self, address: &str) -> Result<Vec<String>, DirectoryError> {
        let address = normalize_address(address)
            .ok_or_else(|| DirectoryError::NoSuchUser(address.to_string()))?;
        let _writes = self.writes.lock().map_err(|_| DirectoryError::Poisoned)?;
        if !self.users.contains_key(&address)? {
            return Err(DirectoryError::NoSuchUser(address));
        }
        let mut emptied = Vec::new();
        for (alias, targets) in self.aliases()? {
            if !targets.contains(&address) {
                continue;
            }
            let rest: Vec<&String> = targets.iter().filter(|t| **t != address).collect();
            if rest.is_empty() {
                self.aliases.remove(alias.as_bytes())?;
                emptied.push(alias);
            } else {
                self.aliases
                    .insert(alias.as_bytes(), serde_json::to_vec(&rest)?)?;
            }
        }
        self.users.remove(address.as_bytes())?;
        // Their own settings (signature, auto-reply, forwarding) and the
        // auto-reply's memory go too: a later user of the address starts
        // afresh, and no forward outlives the account.
        self.settings.remove(address.as_bytes())?;
        self.remove_address_book(&address)?;
        for item in self
            .vacation_replies
            .scan_prefix(super::settings::reply_prefix(&address))
        {
            self.vacation_replies.remove(item?.0)?;
        }
        self.commit()?;
        Ok(emptied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deleting_a_user_removes_them_from_aliases() {
        let dir = tempfile::tempdir().unwrap();
        let d = Directory::open(&dir.path().join("db"), &dir.path().join("snap.json")).unwrap();
        d.add_domain("campus.test").unwrap();
        for name in ["kim", "lee"] {
            d.add_user(&format!("{name}@campus.test"), "long-password")
                .unwrap();
        }
        d.add_alias(
            "office@campus.test",
            &["kim@campus.test".into(), "lee@campus.test".into()],
        )
        .unwrap();
        d.add_alias("kim.only@campus.test", &["kim@campus.test".into()])
            .unwrap();
        d.set_display_name("kim@campus.test", "  김민지 ").unwrap();
        let settings = crate::directory::settings::UserSettings {
            signature: "Kim".into(),
            ..Default::default()
        };
        d.set_user_settings("kim@campus.test", settings).unwrap();
        assert_eq!(
            d.user("kim@campus.test")
                .unwrap()
                .unwrap()
                .display_name
                .as_deref(),
            Some("김민지")
        );
        assert!(d.set_display_name("kim@campus.test", "a\nb").is_err());
        assert_eq!(
            d.delete_user("Kim@campus.test").unwrap(),
            vec!["kim.only@campus.test"]
        );
        assert!(d.user("kim@campus.test").unwrap().is_none());
        assert_eq!(
            d.aliases().unwrap(),
            vec![(
                "office@campus.test".to_string(),
                vec!["lee@campus.test".to_string()]
            )]
        );
        assert!(matches!(
            d.delete_user("kim@campus.test"),
            Err(DirectoryError::NoSuchUser(_))
        ));
        // The address is free again: a new user starts afresh.
        d.add_user("kim@campus.test", "other-password").unwrap();
        assert_eq!(d.user_settings("kim@campus.test").unwrap().signature, "");
    }
}
