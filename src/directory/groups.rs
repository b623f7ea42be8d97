//! Domains, aliases and groups as the console edits them: removing a
//! domain or an alias, and the members of a group.
//!
//! A group (distribution list, department list) is an alias with many
//! members: mail to it is stored once per member (single-instance blobs
//! keep that cheap). Members are local users.
//!
//! Owns nothing beyond the `domains` and `aliases` trees it writes.
//!
//! Invariants:
//! - A domain is removed only when no user and no alias is left in it, so
//!   no address is ever left in a domain the appliance no longer serves.
//! - An alias always has at least one member: removing the last one is
//!   refused (remove the alias instead).
//! - Every member is an existing local user, checked under the write lock.
//!
//! Reads untrusted input: addresses from the console and the CLI (checked).

use super::address::{domain_of, normalize_address};
use super::refusal::Refusal;
use super::{Directory, DirectoryError};

/// Most members one alias or group may have.
pub const MAX_MEMBERS: usize = 50_000;

impl Directory {
    /// Stops serving `domain`; refused while users or aliases use it.
    pub fn remove_domain(&self, domain: &str) -> Result<(), DirectoryError> {
        let domain = domain.trim().to_ascii_lowercase();
        let _writes = self.writes.lock().map_err(|_| DirectoryError::Poisoned)?;
        if !self.domains.contains_key(&domain)? {
            return Err(Refusal::NoSuchDomain(domain).into());
        }
        let in_domain = |key: &[u8]| domain_of(&String::from_utf8_lossy(key)) == domain;
        let mut users = 0;
        for item in self.users.iter() {
            if in_domain(&item?.0) {
                users += 1;
            }
        }
        let mut aliases = 0;
        for item in self.aliases.iter() {
            if in_domain(&item?.0) {
                aliases += 1;
            }
        }
        if users + aliases > 0 {
            return Err(Refusal::DomainInUse {
                domain,
                users,
                aliases,
            }
            .into());
        }
        self.domains.remove(domain.as_bytes())?;
        self.commit()
    }

    /// Removes an alias or group (its members' mailboxes are untouched).
    pub fn remove_alias(&self, alias: &str) -> Result<(), DirectoryError> {
        let alias = normalize_address(alias).ok_or_else(|| no_alias(alias))?;
        let _writes = self.writes.lock().map_err(|_| DirectoryError::Poisoned)?;
        if self.aliases.remove(alias.as_bytes())?.is_none() {
            return Err(no_alias(&alias));
        }
        self.commit()
    }

    /// The members of one alias.
    pub fn alias(&self, alias: &str) -> Result<Option<Vec<String>>, DirectoryError> {
        let Some(alias) = normalize_address(alias) else {
            return Ok(None);
        };
        match self.aliases.get(alias.as_bytes())? {
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
            None => Ok(None),
        }
    }

    /// Adds `add` and removes `remove` from an alias's members; returns
    /// the members after the change.
    pub fn change_members(
        &self,
        alias: &str,
        add: &[String],
        remove: &[String],
    ) -> Result<Vec<String>, DirectoryError> {
        let alias = normalize_address(alias).ok_or_else(|| no_alias(alias))?;
        let _writes = self.writes.lock().map_err(|_| DirectoryError::Poisoned)?;
        let mut members = self.alias(&alias)?.ok_or_else(|| no_alias(&alias))?;
        for target in add {
            let user = self
                .user(target)?
                .ok_or_else(|| DirectoryError::BadAliasTarget(target.trim().to_string()))?;
            if !members.contains(&user.address) {
                members.push(user.address);
            }
        }
        for target in remove {
            let target = normalize_address(target).unwrap_or_else(|| target.clone());
            members.retain(|m| *m != target);
        }
        if members.is_empty() {
            return Err(Refusal::LastMember(alias).into());
        }
        if members.len() > MAX_MEMBERS {
            return Err(Refusal::TooManyMembers.into());
        }
        members.sort();
        self.aliases
            .insert(alias.as_bytes(), serde_json::to_vec(&members)?)?;
        self.commit()?;
        Ok(members)
    }
}

fn no_alias(alias: &str) -> DirectoryError {
    Refusal::NoSuchAlias(alias.trim().to_string()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_aliases_and_group_members() {
        let dir = tempfile::tempdir().unwrap();
        let d = Directory::open(&dir.path().join("db"), &dir.path().join("snap.json")).unwrap();
        d.add_domain("campus.test").unwrap();
        d.add_domain("old.test").unwrap();
        for name in ["kim", "lee", "park"] {
            d.add_user(&format!("{name}@campus.test"), "long-password")
                .unwrap();
        }
        d.add_alias("physics@campus.test", &["kim@campus.test".into()])
            .unwrap();
        let members = d
            .change_members(
                "physics@campus.test",
                &["park@campus.test".into(), "Lee@campus.test".into()],
                &[],
            )
            .unwrap();
        assert_eq!(
            members,
            ["kim@campus.test", "lee@campus.test", "park@campus.test"]
        );
        assert_eq!(d.mailboxes_for("physics@campus.test").unwrap().len(), 3);
        assert!(d
            .change_members("physics@campus.test", &["ghost@campus.test".into()], &[])
            .is_err());
        let members = d
            .change_members("physics@campus.test", &[], &["kim@campus.test".into()])
            .unwrap();
        assert_eq!(members, ["lee@campus.test", "park@campus.test"]);
        assert!(d
            .change_members(
                "physics@campus.test",
                &[],
                &["lee@campus.test".into(), "park@campus.test".into()]
            )
            .is_err());
        assert!(d.remove_domain("campus.test").is_err(), "users are in it");
        d.remove_domain("old.test").unwrap();
        assert!(d.remove_domain("old.test").is_err());
        d.remove_alias("physics@campus.test").unwrap();
        assert!(d.remove_alias("physics@campus.test").is_err());
        assert!(d.mailboxes_for("physics@campus.test").unwrap().is_empty());
    }
}
