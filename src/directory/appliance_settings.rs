//! Settings an admin may change from the console while the appliance
//! runs: the server's default mailbox limits and how long Trash and Junk
//! keep mail. Each one either follows `appliance.toml` (the default) or is
//! set here, in the directory tree `appliance` (key `settings`, one JSON
//! record), which travels to the peer node like users do, so both nodes
//! apply the same values.
//!
//! Owns: that record, and the rule for an effective value (the record's if
//! set, else the file's). Readers ask at use time (each delivery, each
//! purge pass, each page), so a change applies at once, with no restart.
//!
//! Invariant: a record is written only after `ApplianceSettings::check`
//! accepted it; what is stored is always valid.
//!
//! Reads untrusted input: yes, from the console's form (already parsed
//! into numbers by the page; `check` bounds them).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Directory, DirectoryError};
use crate::config::MailboxConfig;

/// The record's key in the `appliance` tree.
const KEY: &[u8] = b"settings";
/// Longest a purge period may be set to, in days (ten years).
pub const MAX_PURGE_DAYS: u32 = 3650;

/// Values set in the console; None = as `appliance.toml` says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplianceSettings {
    /// Mailbox size for users whose own and class's limits are unset
    /// (bytes; 0 = no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_quota_bytes: Option<u64>,
    /// The same, in messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_quota_messages: Option<u64>,
    /// Days mail stays in Trash before it is deleted for good (0 = kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purge_trash_days: Option<u32>,
    /// The same for Junk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purge_junk_days: Option<u32>,
}

/// Why settings were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ApplianceProblem {
    #[error("a purge period is longer than {MAX_PURGE_DAYS} days")]
    PurgeTooLong,
}

/// The values in force, with where each came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effective {
    pub default_quota_bytes: u64,
    pub default_quota_messages: u64,
    pub purge_trash: Duration,
    pub purge_junk: Duration,
}

const DAY: u64 = 24 * 3600;

impl ApplianceSettings {
    /// Accepts the settings if every value is in range.
    pub fn check(self) -> Result<ApplianceSettings, ApplianceProblem> {
        let too_long = |d: Option<u32>| d.is_some_and(|d| d > MAX_PURGE_DAYS);
        if too_long(self.purge_trash_days) || too_long(self.purge_junk_days) {
            return Err(ApplianceProblem::PurgeTooLong);
        }
        Ok(self)
    }

    /// The values in force: these where set, else the file's.
    pub fn effective(&self, file: &MailboxConfig) -> Effective {
        let days = |d: u32| Duration::from_secs(u64::from(d) * DAY);
        Effective {
            default_quota_bytes: self.default_quota_bytes.unwrap_or(file.default_quota.0),
            default_quota_messages: self
                .default_quota_messages
                .unwrap_or(file.default_quota_messages),
            purge_trash: self.purge_trash_days.map_or(file.purge_trash_after.0, days),
            purge_junk: self.purge_junk_days.map_or(file.purge_junk_after.0, days),
        }
    }
}

impl Directory {
    /// The console's settings (all None when none were ever set, or the
    /// record cannot be read: the file's values apply then).
    pub fn appliance_settings(&self) -> ApplianceSettings {
        match self.appliance.get(KEY) {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::error!(error = %e, "appliance settings unreadable; appliance.toml's values apply");
                ApplianceSettings::default()
            }),
            Ok(None) => ApplianceSettings::default(),
            Err(e) => {
                tracing::error!(error = %e, "appliance settings unreadable; appliance.toml's values apply");
                ApplianceSettings::default()
            }
        }
    }

    /// The values in force on this node.
    pub fn effective_settings(&self, file: &MailboxConfig) -> Effective {
        self.appliance_settings().effective(file)
    }

    /// Checks and saves the console's settings; durable when it returns.
    pub fn set_appliance_settings(
        &self,
        settings: ApplianceSettings,
    ) -> Result<ApplianceSettings, DirectoryError> {
        let settings = settings.check()?;
        if settings == ApplianceSettings::default() {
            self.appliance.remove(KEY)?;
        } else {
            self.appliance.insert(KEY, serde_json::to_vec(&settings)?)?;
        }
        self.commit()?;
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_values_win_over_the_file_and_unset_ones_follow_it() {
        let file = MailboxConfig::default();
        let none = ApplianceSettings::default();
        let e = none.effective(&file);
        assert_eq!(e.default_quota_bytes, file.default_quota.0);
        assert_eq!(e.purge_junk, file.purge_junk_after.0);
        let set = ApplianceSettings {
            default_quota_bytes: Some(5_000_000_000),
            purge_trash_days: Some(0),
            ..ApplianceSettings::default()
        };
        let e = set.effective(&file);
        assert_eq!(e.default_quota_bytes, 5_000_000_000);
        assert_eq!(e.default_quota_messages, file.default_quota_messages);
        assert_eq!(e.purge_trash, Duration::ZERO);
        assert_eq!(e.purge_junk, file.purge_junk_after.0);
    }

    #[test]
    fn purge_periods_are_bounded() {
        let long = ApplianceSettings {
            purge_junk_days: Some(MAX_PURGE_DAYS + 1),
            ..ApplianceSettings::default()
        };
        assert_eq!(long.check(), Err(ApplianceProblem::PurgeTooLong));
    }

    #[test]
    fn settings_are_saved_and_cleared() -> Result<(), DirectoryError> {
        let dir = tempfile::tempdir().map_err(|e| DirectoryError::BadValue(e.to_string()))?;
        let d = Directory::open(
            &dir.path().join("directory.db"),
            &dir.path().join("directory.snapshot.json"),
        )?;
        assert_eq!(d.appliance_settings(), ApplianceSettings::default());
        let s = ApplianceSettings {
            purge_junk_days: Some(7),
            ..ApplianceSettings::default()
        };
        d.set_appliance_settings(s.clone())?;
        assert_eq!(d.appliance_settings(), s);
        d.set_appliance_settings(ApplianceSettings::default())?;
        assert!(d.appliance.get(KEY)?.is_none());
        Ok(())
    }
}
