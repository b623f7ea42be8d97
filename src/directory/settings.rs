//! Each user's own settings: page language, signature, auto-reply
//! (vacation), forwarding and how the webmail lists mail, in the directory tree `settings`, keyed by the
//! user's normalized address.
//!
//! Owns: the `settings` tree (one JSON record per user who changed
//! anything; a user without one has the defaults) and the per-node
//! `vacation_replies` tree (when each sender last got an auto-reply from
//! each user, RFC 3834 §2 "once per period"; records older than the longest
//! period are pruned).
//!
//! Invariants:
//! - A record is written only after `UserSettings::check` accepted it, and
//!   only for an existing user; what is stored is always valid.
//! - `settings` travels to the peer node like users do (it is one of
//!   `replicated::TREES`), and so does `vacation_replies` (keys `user TAB
//!   sender`, values unix seconds as text): a sender answered by one node
//!   is not answered again by the other within the period (only two
//!   messages reaching both nodes within the replication lag can each get
//!   a reply).
//! - Forwarding is published in the engine's snapshot (`forwards`), since
//!   the engine expands forwarded recipients when mail enters the queue.
//!
//! Reads untrusted input: yes, every field comes from the settings form;
//! `check` bounds lengths and parses dates and addresses.

use serde::{Deserialize, Serialize};

use super::address::normalize_address;
use super::{Directory, DirectoryError};

/// Longest signature, in characters.
pub const MAX_SIGNATURE_CHARS: usize = 1000;
/// Longest auto-reply subject, in characters.
pub const MAX_VACATION_SUBJECT_CHARS: usize = 200;
/// Longest auto-reply text, in characters.
pub const MAX_VACATION_TEXT_CHARS: usize = 4000;
/// Days between two auto-replies to the same sender: the default and the
/// allowed range (RFC 3834 §2 leaves the period to the responder; 7 days
/// is the common choice, and RFC 5230 §4.1's default too).
pub const DEFAULT_PERIOD_DAYS: u32 = 7;
pub const MAX_PERIOD_DAYS: u32 = 90;

/// One user's settings. A missing field reads as its default, so records
/// written by an older version stay readable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSettings {
    /// "ko" or "en"; None = the browser's choice, as before logging in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Plain text put under new messages and replies in compose.
    #[serde(default)]
    pub signature: String,
    #[serde(default)]
    pub vacation: Vacation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward: Option<Forward>,
    /// The webmail's `/mail` lists mail by conversation (one row per
    /// conversation) unless a link asks for every message.
    #[serde(default, skip_serializing_if = "is_false")]
    pub list_by_conversation: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// The auto-reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vacation {
    pub enabled: bool,
    /// First and last day (YYYY-MM-DD, the appliance's local time), both
    /// optional and inclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// Put after "Auto: "; empty: the subject of the message answered
    /// (RFC 3834 §3.1.5).
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub text: String,
    /// At most one reply per sender within this many days.
    #[serde(default = "default_period")]
    pub period_days: u32,
}

fn default_period() -> u32 {
    DEFAULT_PERIOD_DAYS
}

impl Default for Vacation {
    fn default() -> Self {
        Vacation {
            enabled: false,
            start: None,
            end: None,
            subject: String::new(),
            text: String::new(),
            period_days: DEFAULT_PERIOD_DAYS,
        }
    }
}

impl Vacation {
    /// True when replies go out on `today`.
    pub fn is_active(&self, today: chrono::NaiveDate) -> bool {
        let day = |d: &Option<String>| d.as_deref().and_then(parse_date);
        self.enabled
            && day(&self.start).is_none_or(|start| today >= start)
            && day(&self.end).is_none_or(|end| today <= end)
    }
}

/// Where the user's mail is forwarded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forward {
    /// One address, local or remote (normalized).
    pub to: String,
    /// Also deliver to the user's own mailbox.
    pub keep_copy: bool,
}

/// What is wrong with settings a user asked for; each has a message in
/// both catalogs (`settings.err_*`, see `catalog_key`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsProblem {
    #[error("language must be ko or en")]
    BadLanguage,
    #[error("signature longer than {MAX_SIGNATURE_CHARS} characters")]
    SignatureTooLong,
    #[error("auto-reply subject longer than {MAX_VACATION_SUBJECT_CHARS} characters")]
    VacationSubjectTooLong,
    #[error("auto-reply text longer than {MAX_VACATION_TEXT_CHARS} characters")]
    VacationTextTooLong,
    #[error("auto-reply turned on without a text")]
    VacationTextMissing,
    #[error("a date is not YYYY-MM-DD")]
    BadDate,
    #[error("the auto-reply ends before it starts")]
    EndBeforeStart,
    #[error("the reply period must be 1 to {MAX_PERIOD_DAYS} days")]
    BadPeriod,
    #[error("the forwarding address is not a mail address")]
    BadForwardAddress,
    #[error("mail cannot be forwarded to the same address")]
    ForwardToSelf,
    #[error("the forwarding address is in a local domain but no one receives mail there")]
    ForwardToNobody,
}

impl SettingsProblem {
    /// Every problem, for the test that each has its messages.
    pub const ALL: [SettingsProblem; 11] = [
        SettingsProblem::BadLanguage,
        SettingsProblem::SignatureTooLong,
        SettingsProblem::VacationSubjectTooLong,
        SettingsProblem::VacationTextTooLong,
        SettingsProblem::VacationTextMissing,
        SettingsProblem::BadDate,
        SettingsProblem::EndBeforeStart,
        SettingsProblem::BadPeriod,
        SettingsProblem::BadForwardAddress,
        SettingsProblem::ForwardToSelf,
        SettingsProblem::ForwardToNobody,
    ];

    /// The catalog key of the message shown to the user.
    pub fn catalog_key(&self) -> &'static str {
        match self {
            SettingsProblem::BadLanguage => "settings.err_language",
            SettingsProblem::SignatureTooLong => "settings.err_signature_long",
            SettingsProblem::VacationSubjectTooLong => "settings.err_vacation_subject_long",
            SettingsProblem::VacationTextTooLong => "settings.err_vacation_text_long",
            SettingsProblem::VacationTextMissing => "settings.err_vacation_text_missing",
            SettingsProblem::BadDate => "settings.err_date",
            SettingsProblem::EndBeforeStart => "settings.err_end_before_start",
            SettingsProblem::BadPeriod => "settings.err_period",
            SettingsProblem::BadForwardAddress => "settings.err_forward_address",
            SettingsProblem::ForwardToSelf => "settings.err_forward_self",
            SettingsProblem::ForwardToNobody => "settings.err_forward_nobody",
        }
    }
}

/// A YYYY-MM-DD date.
pub fn parse_date(text: &str) -> Option<chrono::NaiveDate> {
    chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok()
}

impl UserSettings {
    /// Checks (and normalizes: trimmed dates, normalized forward address)
    /// the settings of `owner`.
    pub fn check(mut self, owner: &str) -> Result<UserSettings, SettingsProblem> {
        if let Some(lang) = &self.language {
            if lang != "ko" && lang != "en" {
                return Err(SettingsProblem::BadLanguage);
            }
        }
        if self.signature.chars().count() > MAX_SIGNATURE_CHARS {
            return Err(SettingsProblem::SignatureTooLong);
        }
        let v = &mut self.vacation;
        if v.subject.chars().count() > MAX_VACATION_SUBJECT_CHARS {
            return Err(SettingsProblem::VacationSubjectTooLong);
        }
        if v.text.chars().count() > MAX_VACATION_TEXT_CHARS {
            return Err(SettingsProblem::VacationTextTooLong);
        }
        if v.enabled && v.text.trim().is_empty() {
            return Err(SettingsProblem::VacationTextMissing);
        }
        if !(1..=MAX_PERIOD_DAYS).contains(&v.period_days) {
            return Err(SettingsProblem::BadPeriod);
        }
        let mut days = Vec::new();
        for date in [&mut v.start, &mut v.end] {
            *date = date
                .take()
                .map(|d| d.trim().to_string())
                .filter(|d| !d.is_empty());
            days.push(match date.as_deref() {
                Some(d) => Some(parse_date(d).ok_or(SettingsProblem::BadDate)?),
                None => None,
            });
        }
        if let [Some(start), Some(end)] = days[..] {
            if end < start {
                return Err(SettingsProblem::EndBeforeStart);
            }
        }
        if let Some(forward) = &mut self.forward {
            let to = normalize_address(forward.to.trim())
                .filter(|a| a.is_ascii() && !a.contains(['<', '>', ' ', ',']))
                .ok_or(SettingsProblem::BadForwardAddress)?;
            if Some(&to) == normalize_address(owner).as_ref() {
                return Err(SettingsProblem::ForwardToSelf);
            }
            forward.to = to;
        }
        Ok(self)
    }
}

/// Key of a `vacation_replies` record: user, TAB, sender (both normalized;
/// a TAB is in no address, and unlike NUL a replicated key may hold it).
fn reply_key(user: &str, sender: &str) -> Vec<u8> {
    let mut key = reply_prefix(user);
    key.extend_from_slice(sender.to_ascii_lowercase().as_bytes());
    key
}

/// The prefix of every `vacation_replies` key of `user`.
pub(super) fn reply_prefix(user: &str) -> Vec<u8> {
    let mut key = user.as_bytes().to_vec();
    key.push(b'\t');
    key
}

/// When a `vacation_replies` record says the sender was answered.
fn replied_at(value: &[u8]) -> i64 {
    std::str::from_utf8(value)
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0)
}

impl Directory {
    /// The user's settings (the defaults when they never saved any).
    pub fn user_settings(&self, address: &str) -> Result<UserSettings, DirectoryError> {
        let Some(address) = normalize_address(address) else {
            return Ok(UserSettings::default());
        };
        match self.settings.get(address)? {
            Some(bytes) => Ok(serde_json::from_slice(&bytes)?),
            None => Ok(UserSettings::default()),
        }
    }

    /// Checks and saves the settings of an existing user; the engine's
    /// snapshot (forwarding) is published before this returns.
    pub fn set_user_settings(
        &self,
        address: &str,
        settings: UserSettings,
    ) -> Result<UserSettings, DirectoryError> {
        let user = self
            .user(address)?
            .ok_or_else(|| DirectoryError::NoSuchUser(address.to_string()))?;
        let settings = settings.check(&user.address)?;
        if let Some(forward) = &settings.forward {
            // A local forward must reach someone: an unknown or disabled
            // local address would bounce every message forwarded there.
            let local = self
                .domains
                .contains_key(super::address::domain_of(&forward.to))?;
            if local && self.mailboxes_for(&forward.to)?.is_empty() {
                return Err(SettingsProblem::ForwardToNobody.into());
            }
        }
        self.settings
            .insert(user.address.as_bytes(), serde_json::to_vec(&settings)?)?;
        self.commit()?;
        Ok(settings)
    }

    /// Every user's forwarding, for the engine's snapshot.
    pub(super) fn forwards(&self) -> Result<Vec<(String, Forward)>, DirectoryError> {
        let mut out = Vec::new();
        for item in self.settings.iter() {
            let (key, value) = item?;
            let settings: UserSettings = serde_json::from_slice(&value)?;
            if let Some(forward) = settings.forward {
                out.push((String::from_utf8_lossy(&key).into_owned(), forward));
            }
        }
        Ok(out)
    }

    /// Records that `user` answers `sender` now, unless it already did
    /// within `period_secs`: true when a reply should go out. Checked and
    /// written under one lock, so two deliveries at once make one reply.
    pub fn claim_vacation_reply(
        &self,
        user: &str,
        sender: &str,
        now: i64,
        period_secs: i64,
    ) -> Result<bool, DirectoryError> {
        let key = reply_key(user, sender);
        let _one = self.writes.lock().map_err(|_| DirectoryError::Poisoned)?;
        if let Some(last) = self.vacation_replies.get(&key)? {
            if now.saturating_sub(replied_at(&last)) < period_secs {
                return Ok(false);
            }
        }
        self.vacation_replies
            .insert(key, now.to_string().as_bytes())?;
        // Durable before the reply is sent: after a crash the sender gets
        // no second reply (RFC 3834 §2 prefers too few responses to too many).
        self.vacation_replies.flush()?;
        Ok(true)
    }

    /// Forgets `user`'s replies older than the longest period there can
    /// be, so the memory stays as large as one period's correspondents.
    pub fn prune_vacation_replies(&self, user: &str, now: i64) -> Result<usize, DirectoryError> {
        let oldest = now.saturating_sub(i64::from(MAX_PERIOD_DAYS) * 24 * 3600);
        let mut forgotten = 0;
        for item in self.vacation_replies.scan_prefix(reply_prefix(user)) {
            let (key, last) = item?;
            if replied_at(&last) < oldest {
                self.vacation_replies.remove(key)?;
                forgotten += 1;
            }
        }
        Ok(forgotten)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> chrono::NaiveDate {
        parse_date(s).unwrap()
    }

    #[test]
    fn checks_every_field_with_its_own_problem() {
        let ok = UserSettings::default();
        assert_eq!(ok.clone().check("a@x.test"), Ok(ok.clone()));
        let bad = |change: fn(&mut UserSettings)| {
            let mut s = UserSettings::default();
            change(&mut s);
            s.check("a@x.test").unwrap_err()
        };
        assert_eq!(
            bad(|s| s.language = Some("fr".into())),
            SettingsProblem::BadLanguage
        );
        assert_eq!(
            bad(|s| s.signature = "가".repeat(MAX_SIGNATURE_CHARS + 1)),
            SettingsProblem::SignatureTooLong
        );
        assert_eq!(
            bad(|s| s.vacation.enabled = true),
            SettingsProblem::VacationTextMissing
        );
        assert_eq!(
            bad(|s| s.vacation.period_days = 0),
            SettingsProblem::BadPeriod
        );
        assert_eq!(
            bad(|s| s.vacation.start = Some("2026-13-01".into())),
            SettingsProblem::BadDate
        );
        assert_eq!(
            bad(|s| {
                s.vacation.start = Some("2026-08-10".into());
                s.vacation.end = Some("2026-08-01".into());
            }),
            SettingsProblem::EndBeforeStart
        );
        assert_eq!(
            bad(|s| {
                s.forward = Some(Forward {
                    to: "not an address".into(),
                    keep_copy: true,
                })
            }),
            SettingsProblem::BadForwardAddress
        );
        assert_eq!(
            bad(|s| {
                s.forward = Some(Forward {
                    to: "A@X.test".into(),
                    keep_copy: true,
                })
            }),
            SettingsProblem::ForwardToSelf
        );
        // A signature of exactly the limit in Korean characters is fine.
        let s = UserSettings {
            signature: "가".repeat(MAX_SIGNATURE_CHARS),
            ..UserSettings::default()
        };
        assert!(s.check("a@x.test").is_ok());
    }

    #[test]
    fn vacation_is_active_between_its_days() {
        let mut v = Vacation {
            enabled: true,
            text: "away".into(),
            ..Vacation::default()
        };
        assert!(v.is_active(date("2026-12-01")));
        v.start = Some("2026-12-02".into());
        v.end = Some("2026-12-05".into());
        assert!(!v.is_active(date("2026-12-01")));
        assert!(v.is_active(date("2026-12-02")));
        assert!(v.is_active(date("2026-12-05")));
        assert!(!v.is_active(date("2026-12-06")));
        v.enabled = false;
        assert!(!v.is_active(date("2026-12-03")));
    }

    #[test]
    fn records_without_new_fields_read_as_defaults() {
        let s: UserSettings = serde_json::from_str(r#"{"signature":"kim"}"#).unwrap();
        assert_eq!(s.vacation.period_days, DEFAULT_PERIOD_DAYS);
        assert_eq!(s.forward, None);
        assert!(!s.list_by_conversation);
        // The default is not written, so older records stay as they were.
        assert!(!serde_json::to_string(&s).unwrap().contains("list_by"));
        let grouped = UserSettings {
            list_by_conversation: true,
            ..s
        };
        let back: UserSettings =
            serde_json::from_str(&serde_json::to_string(&grouped).unwrap()).unwrap();
        assert!(back.list_by_conversation);
    }

    #[test]
    fn saved_settings_publish_forwards_and_replies_are_claimed_once_per_period() {
        let dir = tempfile::tempdir().unwrap();
        let snap = dir.path().join("snap.json");
        let d = Directory::open(&dir.path().join("db"), &snap).unwrap();
        d.add_domain("campus.test").unwrap();
        d.add_user("kim@campus.test", "long-password").unwrap();
        let settings = UserSettings {
            forward: Some(Forward {
                to: "Lee@Remote.test".into(),
                keep_copy: false,
            }),
            ..UserSettings::default()
        };
        assert!(matches!(
            d.set_user_settings("ghost@campus.test", settings.clone()),
            Err(DirectoryError::NoSuchUser(_))
        ));
        let to_nobody = UserSettings {
            forward: Some(Forward {
                to: "ghost@campus.test".into(),
                keep_copy: true,
            }),
            ..UserSettings::default()
        };
        assert!(matches!(
            d.set_user_settings("kim@campus.test", to_nobody),
            Err(DirectoryError::Settings(SettingsProblem::ForwardToNobody))
        ));
        d.set_user_settings("kim@campus.test", settings).unwrap();
        let read = d.user_settings("KIM@campus.test").unwrap();
        assert_eq!(read.forward.unwrap().to, "lee@remote.test");
        let published = super::super::snapshot::DirectorySnapshot::read(&snap).unwrap();
        assert_eq!(published.forwards["kim@campus.test"].to, "lee@remote.test");
        d.set_enabled("kim@campus.test", false).unwrap();
        let published = super::super::snapshot::DirectorySnapshot::read(&snap).unwrap();
        assert!(
            published.forwards.is_empty(),
            "disabled users forward nothing"
        );
        d.set_enabled("kim@campus.test", true).unwrap();

        let day = 24 * 3600;
        assert!(d
            .claim_vacation_reply("kim@campus.test", "p@x.test", 1000, 7 * day)
            .unwrap());
        assert!(!d
            .claim_vacation_reply("kim@campus.test", "P@x.test", 2000, 7 * day)
            .unwrap());
        assert!(d
            .claim_vacation_reply("kim@campus.test", "q@x.test", 2000, 7 * day)
            .unwrap());
        assert!(d
            .claim_vacation_reply("kim@campus.test", "p@x.test", 1000 + 7 * day, 7 * day)
            .unwrap());
        // Older than any period: forgotten; q (claimed at 2000) stays.
        let later = 2000 + i64::from(MAX_PERIOD_DAYS) * day;
        assert_eq!(
            d.prune_vacation_replies("kim@campus.test", later).unwrap(),
            0
        );
        assert_eq!(
            d.prune_vacation_replies("kim@campus.test", later + 1)
                .unwrap(),
            1
        );
        assert!(d
            .claim_vacation_reply("kim@campus.test", "q@x.test", later + 1, day)
            .unwrap());
    }

    #[test]
    fn a_reply_claimed_on_one_node_holds_on_the_other() {
        let open = |dir: &tempfile::TempDir| {
            let d = Directory::open(&dir.path().join("db"), &dir.path().join("s.json")).unwrap();
            d.add_domain("campus.test").unwrap();
            d.add_user("kim@campus.test", "long-password").unwrap();
            d
        };
        let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (a, b) = (open(&da), open(&db));
        assert!(a
            .claim_vacation_reply("kim@campus.test", "p@x.test", 1000, 3600)
            .unwrap());
        // What the pair's directory sync carries: every record as text.
        for (tree, key, value) in a.records().unwrap() {
            if tree == "vacation_replies" {
                b.apply_replicated(tree, &key, Some(&value)).unwrap();
            }
        }
        assert!(!b
            .claim_vacation_reply("kim@campus.test", "p@x.test", 2000, 3600)
            .unwrap());
        assert!(b
            .claim_vacation_reply("kim@campus.test", "p@x.test", 1000 + 3600, 3600)
            .unwrap());
    }
}
