//! Each user's address book: contacts they saved (name, address, note) and
//! the addresses they sent mail to from the webmail (collected, most used
//! first), in the directory tree `contacts`.
//!
//! Owns: the `contacts` tree. Keys are text (they travel in the op log,
//! whose keys are NUL-free text of at most `store::op::MAX_NAME` bytes):
//! `owner SPACE kind SPACE address`, kind `c` (a saved contact: JSON
//! [`Contact`]) or `u` (a collected address: JSON [`Collected`]). A mail
//! address holds no space (`address::normalize_address`), so the owner's
//! prefix `owner SPACE` never matches another owner.
//!
//! Invariants:
//! - One record per (owner, kind, address): last writer wins per record
//!   across the pair, so a contact edited on one node while mail is sent
//!   on the other keeps both changes (they are different records).
//! - A user has at most `MAX_CONTACTS` saved contacts (adding one more is
//!   refused with `ContactProblem::BookFull`) and `MAX_COLLECTED`
//!   collected addresses (the least used one makes room for a new one).
//! - What is stored was checked by `ContactForm::check` (names and notes
//!   bounded, no control characters; addresses normalized).
//! - `contacts` is one of `replicated::TREES`: a contact saved on one node
//!   is suggested on the other. Deleting the user deletes their book
//!   (`user_admin`).
//!
//! Reads untrusted input: yes, every field comes from the contacts form or
//! from the recipients of a message the user sent; the page escapes them
//! (askama) and `check` bounds them.

use serde::{Deserialize, Serialize};

use super::address::normalize_address;
use super::{Directory, DirectoryError};

/// Most saved contacts per user.
pub const MAX_CONTACTS: usize = 1000;
/// Most collected addresses per user.
pub const MAX_COLLECTED: usize = 200;
/// Longest contact name, in characters.
pub const MAX_CONTACT_NAME: usize = 100;
/// Longest note, in characters.
pub const MAX_NOTE: usize = 500;
/// Longest record key (the op log's limit for a directory key).
const MAX_KEY: usize = crate::store::MAX_NAME;

/// A contact the user saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub address: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub note: String,
}

/// An address the user sent mail to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collected {
    pub address: String,
    /// Messages sent to it.
    pub uses: u64,
    /// When mail last went to it (unix seconds).
    pub last_used: i64,
}

/// One suggestion for a recipient field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suggestion {
    /// `Name <address>` or the bare address: what goes into the field.
    pub value: String,
    pub address: String,
    pub name: String,
}

impl Suggestion {
    fn new(name: &str, address: &str) -> Suggestion {
        let value = if name.is_empty() {
            address.to_string()
        } else {
            // RFC 5322 §3.4: a display name with specials must be quoted.
            let plain = name.chars().all(|c| c.is_alphanumeric() || c == ' ');
            if plain {
                format!("{name} <{address}>")
            } else {
                let quoted = name.replace('\\', "\\\\").replace('"', "\\\"");
                format!("\"{quoted}\" <{address}>")
            }
        };
        Suggestion {
            value,
            address: address.to_string(),
            name: name.to_string(),
        }
    }
}

/// A contact as typed in the form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactForm {
    pub name: String,
    pub address: String,
    pub note: String,
}

/// What is wrong with a contact; each has a message in both catalogs
/// (`contacts.err_*`, see `catalog_key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ContactProblem {
    #[error("not a mail address")]
    BadAddress,
    #[error("name longer than {MAX_CONTACT_NAME} characters")]
    NameTooLong,
    #[error("note longer than {MAX_NOTE} characters")]
    NoteTooLong,
    #[error("name or note holds control characters")]
    ControlCharacters,
    #[error("the address book is full ({MAX_CONTACTS} contacts)")]
    BookFull,
    #[error("the address is already in the address book")]
    Duplicate,
    #[error("no such contact")]
    NotFound,
}

impl ContactProblem {
    /// Every problem, for the test that each has its messages.
    pub const ALL: [ContactProblem; 7] = [
        ContactProblem::BadAddress,
        ContactProblem::NameTooLong,
        ContactProblem::NoteTooLong,
        ContactProblem::ControlCharacters,
        ContactProblem::BookFull,
        ContactProblem::Duplicate,
        ContactProblem::NotFound,
    ];

    /// The catalog key of the message shown to the user (filled with
    /// `max`).
    pub fn catalog_key(&self) -> &'static str {
        match self {
            ContactProblem::BadAddress => "contacts.err_address",
            ContactProblem::NameTooLong => "contacts.err_name_long",
            ContactProblem::NoteTooLong => "contacts.err_note_long",
            ContactProblem::ControlCharacters => "contacts.err_control",
            ContactProblem::BookFull => "contacts.err_full",
            ContactProblem::Duplicate => "contacts.err_duplicate",
            ContactProblem::NotFound => "contacts.err_not_found",
        }
    }

    /// The number the message names, if any.
    pub fn limit(&self) -> usize {
        match self {
            ContactProblem::NameTooLong => MAX_CONTACT_NAME,
            ContactProblem::NoteTooLong => MAX_NOTE,
            ContactProblem::BookFull => MAX_CONTACTS,
            _ => 0,
        }
    }
}

/// A contact's address as stored, if `text` is one we can keep for
/// `owner`: normalized, ASCII (what the engine accepts in RCPT TO), and
/// short enough for a record key.
fn checked_address(owner: &str, text: &str) -> Option<String> {
    normalize_address(text.trim()).filter(|a| a.is_ascii() && owner.len() + a.len() + 3 <= MAX_KEY)
}

impl ContactForm {
    /// The contact to store for `owner`, or the first problem.
    pub fn check(&self, owner: &str) -> Result<Contact, ContactProblem> {
        let address = checked_address(owner, &self.address).ok_or(ContactProblem::BadAddress)?;
        let name = self.name.trim();
        let note = self.note.trim();
        if name.chars().count() > MAX_CONTACT_NAME {
            return Err(ContactProblem::NameTooLong);
        }
        if note.chars().count() > MAX_NOTE {
            return Err(ContactProblem::NoteTooLong);
        }
        if name.chars().chain(note.chars()).any(char::is_control) {
            return Err(ContactProblem::ControlCharacters);
        }
        Ok(Contact {
            address,
            name: name.to_string(),
            note: note.to_string(),
        })
    }
}

fn key(owner: &str, kind: char, address: &str) -> String {
    format!("{owner} {kind} {address}")
}

fn prefix(owner: &str, kind: char) -> String {
    format!("{owner} {kind} ")
}

impl Directory {
    fn owner(&self, address: &str) -> Result<String, DirectoryError> {
        Ok(self
            .user(address)?
            .ok_or_else(|| DirectoryError::NoSuchUser(address.to_string()))?
            .address)
    }

    /// The user's saved contacts, by name (then address).
    pub fn contacts(&self, owner: &str) -> Result<Vec<Contact>, DirectoryError> {
        let Some(owner) = normalize_address(owner) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for item in self.contacts.scan_prefix(prefix(&owner, 'c')) {
            let contact: Contact = serde_json::from_slice(&item?.1)?;
            out.push(contact);
        }
        out.sort_by(|a, b| {
            (a.name.to_lowercase(), &a.address).cmp(&(b.name.to_lowercase(), &b.address))
        });
        Ok(out)
    }

    /// One saved contact.
    pub fn contact(&self, owner: &str, address: &str) -> Result<Option<Contact>, DirectoryError> {
        let (Some(owner), Some(address)) = (normalize_address(owner), normalize_address(address))
        else {
            return Ok(None);
        };
        match self.contacts.get(key(&owner, 'c', &address))? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }

    /// The addresses the user sent mail to, most used first (then most
    /// recent).
    pub fn collected(&self, owner: &str) -> Result<Vec<Collected>, DirectoryError> {
        let Some(owner) = normalize_address(owner) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for item in self.contacts.scan_prefix(prefix(&owner, 'u')) {
            let c: Collected = serde_json::from_slice(&item?.1)?;
            out.push(c);
        }
        out.sort_by(|a, b| {
            (b.uses, b.last_used, &a.address).cmp(&(a.uses, a.last_used, &b.address))
        });
        Ok(out)
    }

    /// Saves a contact of an existing user. `replacing`: the address of
    /// the contact being edited (its record goes when the address
    /// changed); None adds a new one.
    pub fn save_contact(
        &self,
        owner: &str,
        form: &ContactForm,
        replacing: Option<&str>,
    ) -> Result<Contact, DirectoryError> {
        let owner = self.owner(owner)?;
        let contact = form.check(&owner)?;
        let _one = self.writes.lock().map_err(|_| DirectoryError::Poisoned)?;
        let old = match replacing {
            Some(old) => {
                let old = normalize_address(old).ok_or(ContactProblem::NotFound)?;
                if !self.contacts.contains_key(key(&owner, 'c', &old))? {
                    return Err(ContactProblem::NotFound.into());
                }
                Some(old)
            }
            None => None,
        };
        let new_key = key(&owner, 'c', &contact.address);
        if old.as_deref() != Some(contact.address.as_str()) {
            if self.contacts.contains_key(&new_key)? {
                return Err(ContactProblem::Duplicate.into());
            }
            if old.is_none()
                && self.contacts.scan_prefix(prefix(&owner, 'c')).count() >= MAX_CONTACTS
            {
                return Err(ContactProblem::BookFull.into());
            }
        }
        if let Some(old) = old.filter(|o| *o != contact.address) {
            self.contacts.remove(key(&owner, 'c', &old))?;
        }
        self.contacts
            .insert(new_key.as_bytes(), serde_json::to_vec(&contact)?)?;
        self.contacts.flush()?;
        Ok(contact)
    }

    /// Deletes a saved contact and the collected address alike, so the
    /// address is no longer suggested at all ("Delete" and "Forget" on
    /// the page).
    pub fn delete_contact(&self, owner: &str, address: &str) -> Result<(), DirectoryError> {
        let owner = self.owner(owner)?;
        let address = normalize_address(address).ok_or(ContactProblem::NotFound)?;
        let _one = self.writes.lock().map_err(|_| DirectoryError::Poisoned)?;
        let saved = self.contacts.remove(key(&owner, 'c', &address))?;
        let used = self.contacts.remove(key(&owner, 'u', &address))?;
        if saved.is_none() && used.is_none() {
            return Err(ContactProblem::NotFound.into());
        }
        self.contacts.flush()?;
        Ok(())
    }

    /// Counts one more message from `owner` to each of `recipients`
    /// (addresses that are not valid are skipped). When the collection is
    /// full, the least used (then oldest) address makes room.
    pub fn note_sent_to(
        &self,
        owner: &str,
        recipients: &[String],
        now: i64,
    ) -> Result<(), DirectoryError> {
        let Some(owner) = normalize_address(owner) else {
            return Ok(());
        };
        let _one = self.writes.lock().map_err(|_| DirectoryError::Poisoned)?;
        for recipient in recipients {
            let Some(address) = checked_address(&owner, recipient).filter(|a| *a != owner) else {
                continue;
            };
            let k = key(&owner, 'u', &address);
            let mut c = match self.contacts.get(&k)? {
                Some(bytes) => serde_json::from_slice(&bytes)?,
                None => {
                    self.make_room(&owner)?;
                    Collected {
                        address,
                        uses: 0,
                        last_used: now,
                    }
                }
            };
            c.uses = c.uses.saturating_add(1);
            c.last_used = c.last_used.max(now);
            self.contacts
                .insert(k.as_bytes(), serde_json::to_vec(&c)?)?;
        }
        self.contacts.flush()?;
        Ok(())
    }

    /// Removes least used collected addresses until one more fits.
    fn make_room(&self, owner: &str) -> Result<(), DirectoryError> {
        let mut all: Vec<Collected> = Vec::new();
        for item in self.contacts.scan_prefix(prefix(owner, 'u')) {
            all.push(serde_json::from_slice(&item?.1)?);
        }
        if all.len() < MAX_COLLECTED {
            return Ok(());
        }
        all.sort_by_key(|c| (c.uses, c.last_used));
        for c in &all[..=all.len() - MAX_COLLECTED] {
            self.contacts.remove(key(owner, 'u', &c.address))?;
        }
        Ok(())
    }

    /// Suggestions for a recipient field: saved contacts, then collected
    /// addresses (most used first), then users of the campus directory,
    /// each address once, those containing `query` (case-insensitive, in
    /// the name or the address; everything when empty), at most `limit`.
    /// The campus directory is asked only for a query of two characters
    /// or more (a whole campus is no suggestion).
    pub fn suggestions(
        &self,
        owner: &str,
        query: &str,
        limit: usize,
    ) -> Result<Vec<Suggestion>, DirectoryError> {
        let needle = query.trim().to_lowercase();
        let hit = |name: &str, address: &str| {
            needle.is_empty() || address.contains(&needle) || name.to_lowercase().contains(&needle)
        };
        let mut out: Vec<Suggestion> = Vec::new();
        let push = |out: &mut Vec<Suggestion>, name: &str, address: &str| {
            if out.len() < limit && hit(name, address) && !out.iter().any(|s| s.address == address)
            {
                out.push(Suggestion::new(name, address));
            }
        };
        for c in self.contacts(owner)? {
            push(&mut out, &c.name, &c.address);
        }
        for c in self.collected(owner)? {
            push(&mut out, "", &c.address);
        }
        if needle.chars().count() >= 2 && out.len() < limit {
            let (users, _) = self.search_users(&needle, limit)?;
            for u in users.iter().filter(|u| u.enabled) {
                push(
                    &mut out,
                    u.display_name.as_deref().unwrap_or(""),
                    &u.address,
                );
            }
        }
        Ok(out)
    }

    /// Removes every record of `owner`'s address book (user deletion).
    pub(super) fn remove_address_book(&self, owner: &str) -> Result<(), DirectoryError> {
        let mut p = owner.as_bytes().to_vec();
        p.push(b' ');
        for item in self.contacts.scan_prefix(&p) {
            self.contacts.remove(item?.0)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "contacts_tests.rs"]
mod tests;
