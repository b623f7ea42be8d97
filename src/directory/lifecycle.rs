//! The classes' lifecycle rule (R12): a user whose leave date lies more
//! than their class's grace period (`disable_after_days`) in the past is
//! disabled: logins and new mail are refused, stored mail is kept.
//!
//! Owns nothing; `web::console::lifecycle` runs `disable_due` in the
//! background (at start and hourly), ends the disabled users' webmail
//! sessions and writes each one to the audit log.
//!
//! Invariants:
//! - Only enabled users with a leave date, in a defined class with a rule,
//!   are touched. The rule is applied again on every run, so an admin who
//!   enables such a user again must also give a later leave date (or
//!   another class); the admin guide says so.
//! - Days are whole UTC days: a user leaving on D with 0 days of grace is
//!   disabled from D+1 on.
//!
//! Reads untrusted input: no (directory records only).

use chrono::NaiveDate;

use super::classes::ClassRecord;
use super::{Directory, DirectoryError, UserRecord};

/// The day after which a user leaving on `leave` in a class with `grace`
/// days is disabled.
pub fn last_enabled_day(leave: NaiveDate, grace: u32) -> Option<NaiveDate> {
    leave.checked_add_days(chrono::Days::new(u64::from(grace)))
}

/// True when the rule disables `user` on `today`.
fn is_due(classes: &[ClassRecord], user: &UserRecord, today: NaiveDate) -> bool {
    if !user.enabled {
        return false;
    }
    let Some(grace) = classes
        .iter()
        .find(|c| c.name == user.class)
        .and_then(|c| c.disable_after_days)
    else {
        return false;
    };
    user.leave_date
        .as_deref()
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .and_then(|leave| last_enabled_day(leave, grace))
        .is_some_and(|last| today > last)
}

impl Directory {
    /// Addresses of the enabled users that the lifecycle rule disables on
    /// `today`.
    pub fn lifecycle_due(&self, today: NaiveDate) -> Result<Vec<String>, DirectoryError> {
        let classes = self.classes()?;
        Ok(self
            .users()?
            .into_iter()
            .filter(|u| is_due(&classes, u, today))
            .map(|u| u.address)
            .collect())
    }

    /// Disables every user `lifecycle_due` names, in one batch with one
    /// snapshot (a whole year's graduates at once); returns them.
    pub fn disable_due(&self, today: NaiveDate) -> Result<Vec<String>, DirectoryError> {
        let due = self.lifecycle_due(today)?;
        if due.is_empty() {
            return Ok(due);
        }
        let classes = self.classes()?;
        let _writes = self.writes.lock().map_err(|_| DirectoryError::Poisoned)?;
        let mut batch = sled::Batch::default();
        let mut disabled = Vec::new();
        for address in due {
            // Read again under the lock: an admin may have changed it.
            let Some(mut user) = self.user(&address)? else {
                continue;
            };
            if !is_due(&classes, &user, today) {
                continue;
            }
            user.enabled = false;
            batch.insert(address.as_bytes(), serde_json::to_vec(&user)?);
            disabled.push(address);
        }
        self.users.apply_batch(batch)?;
        self.commit()?;
        Ok(disabled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::classes::ClassChange;

    #[test]
    fn users_past_their_grace_period_are_disabled() {
        let dir = tempfile::tempdir().unwrap();
        let d = Directory::open(&dir.path().join("db"), &dir.path().join("snap.json")).unwrap();
        d.add_domain("campus.test").unwrap();
        let rule = |days| ClassChange {
            disable_after_days: Some(days),
            ..ClassChange::default()
        };
        d.add_class("student", &rule(Some(30))).unwrap();
        d.add_class("staff", &rule(None)).unwrap();
        for (name, class, leave) in [
            ("gone", "student", "2026-01-01"),
            ("edge", "student", "2026-01-31"),
            ("staying", "student", "2026-12-31"),
            ("no-date", "student", ""),
            ("staff", "staff", "2020-01-01"),
        ] {
            let address = format!("{name}@campus.test");
            d.add_user(&address, "long-password").unwrap();
            d.set_user_class(&address, class, Some(leave)).unwrap();
        }
        let today = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        // 2026-01-31 + 30 days = 2026-03-02: still enabled that day.
        assert_eq!(d.disable_due(today).unwrap(), vec!["gone@campus.test"]);
        assert!(!d.user("gone@campus.test").unwrap().unwrap().enabled);
        let tomorrow = today.succ_opt().unwrap();
        assert_eq!(d.disable_due(tomorrow).unwrap(), vec!["edge@campus.test"]);
        assert!(d.disable_due(tomorrow).unwrap().is_empty(), "done once");
    }
}
