//! User classes (R12): staff, faculty, student, alumni, retiree, ...; each
//! with default mailbox limits and a lifecycle rule, and the seat count
//! per class the licence view shows.
//!
//! Owns: the `classes` tree of `directory.db` (key: the class name, value:
//! a `ClassRecord` as JSON). The tree replicates to the peer like users
//! (`replicated::TREES`).
//!
//! Invariants:
//! - A class name is letters, digits, `-` and `_`, stored lower-cased
//!   (`checked_class_name`), the same rule the CSV import applies.
//! - A user's limits are its own, else its class's, else the configured
//!   default (`limits_of`); "0" means no limit at every level.
//! - A class is removed only when no user is in it.
//! - Users may name a class that is not defined (imported before classes
//!   existed, or `default`): such a class has no defaults and no rule, and
//!   the licence view lists it as not defined.
//!
//! Reads untrusted input: class names and numbers from the CLI and the
//! console (checked here).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::refusal::Refusal;
use super::{Directory, DirectoryError, UserRecord};

/// Longest class name.
pub const MAX_CLASS_CHARS: usize = 32;
/// Longest grace period of a lifecycle rule (about 30 years).
pub const MAX_GRACE_DAYS: u32 = 11_000;

/// One class of users.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClassRecord {
    pub name: String,
    /// Default limits of the class's users; None = the configured default,
    /// Some(0) = no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_messages: Option<u64>,
    /// Lifecycle: disable a user this many days after their leave date;
    /// None = never automatically.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_after_days: Option<u32>,
}

/// What `set_class` changes; None leaves a field as it is.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClassChange {
    pub quota_bytes: Option<Option<u64>>,
    pub quota_messages: Option<Option<u64>>,
    pub disable_after_days: Option<Option<u32>>,
}

/// One line of the licence view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seats {
    pub class: String,
    /// None when users name the class but it is not defined.
    pub record: Option<ClassRecord>,
    pub enabled: usize,
    pub disabled: usize,
}

/// A class name as stored, or None when it is not one.
pub fn checked_class_name(name: &str) -> Option<String> {
    let name = name.trim();
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_CLASS_CHARS
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '_');
    ok.then(|| name.to_lowercase())
}

fn bad_name(name: &str) -> DirectoryError {
    Refusal::BadClassName(name.trim().to_string()).into()
}

impl Directory {
    /// Defines a class; refuses one that exists.
    pub fn add_class(
        &self,
        name: &str,
        change: &ClassChange,
    ) -> Result<ClassRecord, DirectoryError> {
        let name = checked_class_name(name).ok_or_else(|| bad_name(name))?;
        let _writes = self.writes.lock().map_err(|_| DirectoryError::Poisoned)?;
        if self.classes.contains_key(&name)? {
            return Err(Refusal::ClassExists(name).into());
        }
        let mut record = ClassRecord {
            name: name.clone(),
            quota_bytes: None,
            quota_messages: None,
            disable_after_days: None,
        };
        apply(&mut record, change)?;
        self.classes
            .insert(name.as_bytes(), serde_json::to_vec(&record)?)?;
        self.commit()?;
        Ok(record)
    }

    /// Changes a defined class.
    pub fn set_class(
        &self,
        name: &str,
        change: &ClassChange,
    ) -> Result<ClassRecord, DirectoryError> {
        let name = checked_class_name(name).ok_or_else(|| bad_name(name))?;
        let _writes = self.writes.lock().map_err(|_| DirectoryError::Poisoned)?;
        let mut record = self.class(&name)?.ok_or_else(|| no_class(&name))?;
        apply(&mut record, change)?;
        self.classes
            .insert(name.as_bytes(), serde_json::to_vec(&record)?)?;
        self.commit()?;
        Ok(record)
    }

    /// Removes a class no user is in.
    pub fn remove_class(&self, name: &str) -> Result<(), DirectoryError> {
        let name = checked_class_name(name).ok_or_else(|| bad_name(name))?;
        let _writes = self.writes.lock().map_err(|_| DirectoryError::Poisoned)?;
        if self.class(&name)?.is_none() {
            return Err(no_class(&name));
        }
        let members = self.users()?.iter().filter(|u| u.class == name).count();
        if members > 0 {
            return Err(Refusal::ClassInUse {
                class: name,
                users: members,
            }
            .into());
        }
        self.classes.remove(name.as_bytes())?;
        self.commit()
    }

    pub fn class(&self, name: &str) -> Result<Option<ClassRecord>, DirectoryError> {
        match self.classes.get(name.trim().to_lowercase().as_bytes())? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Every defined class, by name.
    pub fn classes(&self) -> Result<Vec<ClassRecord>, DirectoryError> {
        self.classes
            .iter()
            .map(|r| Ok(serde_json::from_slice(&r?.1)?))
            .collect()
    }

    /// Puts a user in a defined class (or `default`) and sets or clears
    /// their leave date ("YYYY-MM-DD"; None leaves it, Some("") clears it).
    pub fn set_user_class(
        &self,
        address: &str,
        class: &str,
        leave_date: Option<&str>,
    ) -> Result<UserRecord, DirectoryError> {
        let class = checked_class_name(class).ok_or_else(|| bad_name(class))?;
        if class != "default" && self.class(&class)?.is_none() {
            return Err(no_class(&class));
        }
        let leave = leave_date.map(checked_leave_date).transpose()?;
        self.update_user(address, |u| {
            u.class = class;
            if let Some(date) = leave {
                u.leave_date = date;
            }
            Ok(())
        })?;
        self.user(address)?
            .ok_or_else(|| DirectoryError::NoSuchUser(address.to_string()))
    }

    /// The user's own limits, else their class's; None = the configured
    /// default (`[mailbox] default_quota*`), Some(0) = no limit.
    pub fn limits_of(&self, user: &UserRecord) -> (Option<u64>, Option<u64>) {
        let class = match (user.quota_bytes, user.quota_messages) {
            (Some(_), Some(_)) => None,
            _ => self.class(&user.class).ok().flatten(),
        };
        let of_class = |f: fn(&ClassRecord) -> Option<u64>| class.as_ref().and_then(f);
        (
            user.quota_bytes.or_else(|| of_class(|c| c.quota_bytes)),
            user.quota_messages
                .or_else(|| of_class(|c| c.quota_messages)),
        )
    }

    /// Seats per class: every defined class, and every class users name.
    pub fn seats(&self) -> Result<Vec<Seats>, DirectoryError> {
        let mut by_class: BTreeMap<String, Seats> = BTreeMap::new();
        for record in self.classes()? {
            by_class.insert(
                record.name.clone(),
                Seats {
                    class: record.name.clone(),
                    record: Some(record),
                    enabled: 0,
                    disabled: 0,
                },
            );
        }
        for user in self.users()? {
            let seats = by_class.entry(user.class.clone()).or_insert_with(|| Seats {
                class: user.class.clone(),
                record: None,
                enabled: 0,
                disabled: 0,
            });
            if user.enabled {
                seats.enabled += 1;
            } else {
                seats.disabled += 1;
            }
        }
        Ok(by_class.into_values().collect())
    }
}

fn no_class(name: &str) -> DirectoryError {
    Refusal::NoSuchClass(name.to_string()).into()
}

fn apply(record: &mut ClassRecord, change: &ClassChange) -> Result<(), DirectoryError> {
    if let Some(b) = change.quota_bytes {
        record.quota_bytes = b;
    }
    if let Some(m) = change.quota_messages {
        record.quota_messages = m;
    }
    if let Some(days) = change.disable_after_days {
        if days.is_some_and(|d| d > MAX_GRACE_DAYS) {
            return Err(Refusal::GraceTooLong.into());
        }
        record.disable_after_days = days;
    }
    Ok(())
}

/// "" -> None (clear), "YYYY-MM-DD" -> Some(date), else a clear error.
pub fn checked_leave_date(text: &str) -> Result<Option<String>, DirectoryError> {
    let text = text.trim();
    if text.is_empty() || text == "none" {
        return Ok(None);
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(|d| Some(d.format("%Y-%m-%d").to_string()))
        .map_err(|_| Refusal::BadLeaveDate(text.to_string()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> (tempfile::TempDir, Directory) {
        let dir = tempfile::tempdir().unwrap();
        let d = Directory::open(&dir.path().join("db"), &dir.path().join("snap.json")).unwrap();
        d.add_domain("campus.test").unwrap();
        (dir, d)
    }

    #[test]
    fn classes_give_default_limits_and_count_seats() {
        let (_dir, d) = open();
        let change = ClassChange {
            quota_bytes: Some(Some(1000)),
            quota_messages: None,
            disable_after_days: Some(Some(180)),
        };
        d.add_class("Student", &change).unwrap();
        assert!(d.add_class("student", &change).is_err(), "no duplicate");
        // The class travels to the peer like users do.
        assert!(d
            .records()
            .unwrap()
            .iter()
            .any(|(tree, key, _)| *tree == "classes" && key == "student"));
        assert!(d.add_class("bad name", &change).is_err());
        d.add_user("kim@campus.test", "long-password").unwrap();
        d.add_user("lee@campus.test", "long-password").unwrap();
        assert!(d.set_user_class("kim@campus.test", "alumni", None).is_err());
        let kim = d
            .set_user_class("kim@campus.test", "student", Some("2027-02-28"))
            .unwrap();
        assert_eq!(kim.leave_date.as_deref(), Some("2027-02-28"));
        assert_eq!(d.limits_of(&kim), (Some(1000), None));
        // The user's own limit wins over the class's.
        let kim = d.set_quota("kim@campus.test", Some(Some(5)), None).unwrap();
        assert_eq!(d.limits_of(&kim), (Some(5), None));
        d.set_enabled("lee@campus.test", false).unwrap();
        let seats = d.seats().unwrap();
        let student = seats.iter().find(|s| s.class == "student").unwrap();
        assert_eq!((student.enabled, student.disabled), (1, 0));
        let default = seats.iter().find(|s| s.class == "default").unwrap();
        assert_eq!(
            (default.enabled, default.disabled, default.record.is_none()),
            (0, 1, true)
        );
        assert!(d.remove_class("student").is_err(), "kim is in it");
        d.set_user_class("kim@campus.test", "default", Some(""))
            .unwrap();
        d.remove_class("student").unwrap();
        assert!(d.classes().unwrap().is_empty());
    }

    #[test]
    fn leave_dates_are_checked() {
        assert_eq!(
            checked_leave_date("2027-2-3").unwrap().as_deref(),
            Some("2027-02-03")
        );
        assert_eq!(checked_leave_date(" ").unwrap(), None);
        assert!(checked_leave_date("2027-02-30").is_err());
        assert!(checked_leave_date("next year").is_err());
    }
}
