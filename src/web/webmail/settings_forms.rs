//! The forms of `/mail/settings` besides the password: language, how the
//! message list is shown, signature, auto-reply and forwarding. Each form carries a `section`
//! field and changes only its own part of the user's settings.
//!
//! Owns: reading a form into `UserSettings` (`apply`) and the text the
//! page shows in the fields (`SettingsView`).
//!
//! Invariants:
//! - `apply` only copies and trims what was typed; every rule (lengths,
//!   dates, addresses) is checked once, by `UserSettings::check` when the
//!   directory saves them, so the web and any other caller agree.
//! - A refused form is shown again with what the user typed, not the
//!   saved values, so nothing typed is lost.
//!
//! Reads untrusted input: yes, the form fields.

use crate::directory::settings::{
    Forward, UserSettings, MAX_PERIOD_DAYS, MAX_SIGNATURE_CHARS, MAX_VACATION_SUBJECT_CHARS,
    MAX_VACATION_TEXT_CHARS,
};
use crate::web::form::Form;

/// Which form was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Password,
    Language,
    ListView,
    Signature,
    Vacation,
    Forward,
}

impl Section {
    /// The `section` field; a form without one is the password form (the
    /// first form this page had).
    pub fn of(form: &Form) -> Option<Section> {
        Some(match form.get("section").unwrap_or("password") {
            "password" => Section::Password,
            "language" => Section::Language,
            "list" => Section::ListView,
            "signature" => Section::Signature,
            "vacation" => Section::Vacation,
            "forward" => Section::Forward,
            _ => return None,
        })
    }

    /// The `done=` value of the page after a successful save.
    pub fn name(self) -> &'static str {
        match self {
            Section::Password => "password",
            Section::Language => "language",
            Section::ListView => "list",
            Section::Signature => "signature",
            Section::Vacation => "vacation",
            Section::Forward => "forward",
        }
    }

    pub fn from_name(name: &str) -> Option<Section> {
        [
            Section::Password,
            Section::Language,
            Section::ListView,
            Section::Signature,
            Section::Vacation,
            Section::Forward,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }
}

/// `settings` with `section`'s fields replaced by the form's.
pub fn apply(section: Section, form: &Form, mut settings: UserSettings) -> UserSettings {
    let text = |name: &str| form.get(name).unwrap_or("").to_string();
    let checked = |name: &str| form.get(name).is_some();
    match section {
        Section::Password => {}
        Section::Language => {
            settings.language = Some(text("language").trim().to_string()).filter(|l| !l.is_empty());
        }
        // Anything but "conversations" is the flat list, the default.
        Section::ListView => {
            settings.list_by_conversation = form.get("list_view") == Some("conversations");
        }
        Section::Signature => settings.signature = text("signature").trim_end().to_string(),
        Section::Vacation => {
            let v = &mut settings.vacation;
            v.enabled = checked("vacation_enabled");
            v.start = Some(text("vacation_start"));
            v.end = Some(text("vacation_end"));
            v.subject = text("vacation_subject").trim().to_string();
            v.text = text("vacation_text").trim_end().to_string();
            // Not a number: 0, which the check refuses with its message.
            v.period_days = text("vacation_period").trim().parse().unwrap_or(0);
        }
        Section::Forward => {
            let to = text("forward_to").trim().to_string();
            settings.forward = (!to.is_empty()).then(|| Forward {
                to,
                keep_copy: checked("forward_keep"),
            });
        }
    }
    settings
}

/// What the settings forms show.
pub struct SettingsView {
    /// "", "ko" or "en".
    pub language: String,
    pub list_by_conversation: bool,
    pub signature: String,
    pub vacation_enabled: bool,
    pub vacation_start: String,
    pub vacation_end: String,
    pub vacation_subject: String,
    pub vacation_text: String,
    pub vacation_period: String,
    pub forward_to: String,
    pub forward_keep: bool,
    pub max_signature: usize,
    pub max_subject: usize,
    pub max_text: usize,
    pub max_period: u32,
}

impl SettingsView {
    pub fn of(settings: &UserSettings) -> SettingsView {
        let v = &settings.vacation;
        SettingsView {
            language: settings.language.clone().unwrap_or_default(),
            list_by_conversation: settings.list_by_conversation,
            signature: settings.signature.clone(),
            vacation_enabled: v.enabled,
            vacation_start: v.start.clone().unwrap_or_default(),
            vacation_end: v.end.clone().unwrap_or_default(),
            vacation_subject: v.subject.clone(),
            vacation_text: v.text.clone(),
            vacation_period: v.period_days.to_string(),
            forward_to: settings
                .forward
                .as_ref()
                .map(|f| f.to.clone())
                .unwrap_or_default(),
            // A new forward keeps a copy unless the user says otherwise.
            forward_keep: settings.forward.as_ref().is_none_or(|f| f.keep_copy),
            max_signature: MAX_SIGNATURE_CHARS,
            max_subject: MAX_VACATION_SUBJECT_CHARS,
            max_text: MAX_VACATION_TEXT_CHARS,
            max_period: MAX_PERIOD_DAYS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Form {
        let body: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", k, crate::web::form::encode(v)))
            .collect();
        Form::parse(body.join("&").as_bytes(), 100_000).unwrap()
    }

    #[test]
    fn each_section_changes_only_its_fields() {
        let saved = UserSettings {
            signature: "Kim".into(),
            ..UserSettings::default()
        };
        let f = form(&[("section", "language"), ("language", "en")]);
        let s = apply(Section::of(&f).unwrap(), &f, saved.clone());
        assert_eq!(s.language.as_deref(), Some("en"));
        assert_eq!(s.signature, "Kim");
        let f = form(&[("section", "language"), ("language", "")]);
        assert_eq!(apply(Section::Language, &f, s).language, None);

        let f = form(&[
            ("section", "vacation"),
            ("vacation_enabled", "on"),
            ("vacation_text", "away\r\n"),
            ("vacation_period", "x"),
        ]);
        let s = apply(Section::Vacation, &f, saved.clone());
        assert!(s.vacation.enabled);
        assert_eq!(s.vacation.text, "away");
        assert_eq!(s.vacation.period_days, 0, "refused later by the check");

        let f = form(&[("section", "forward"), ("forward_to", " lee@far.test ")]);
        let s = apply(Section::Forward, &f, saved.clone());
        assert_eq!(
            s.forward,
            Some(Forward {
                to: "lee@far.test".into(),
                keep_copy: false
            })
        );
        let f = form(&[("section", "forward"), ("forward_to", "")]);
        assert_eq!(apply(Section::Forward, &f, s).forward, None);
        let f = form(&[("section", "list"), ("list_view", "conversations")]);
        let s = apply(Section::of(&f).unwrap(), &f, saved.clone());
        assert!(s.list_by_conversation);
        assert_eq!(s.signature, "Kim");
        assert!(SettingsView::of(&s).list_by_conversation);
        let f = form(&[("section", "list"), ("list_view", "messages")]);
        assert!(!apply(Section::ListView, &f, s).list_by_conversation);
        assert_eq!(Section::from_name("list"), Some(Section::ListView));
        assert_eq!(Section::of(&form(&[])), Some(Section::Password));
        assert_eq!(Section::of(&form(&[("section", "evil")])), None);
    }
}
