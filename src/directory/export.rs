//! `campusmail user export` and the console's export: every user as CSV,
//! in the columns the import reads (`import.rs`), without passwords.
//!
//! Owns nothing. The text is built in memory: 30,000 users are about 2 MB.
//!
//! Invariants:
//! - Loaded back with `user import` (into an empty directory), the file
//!   gives the same addresses, names, classes, leave dates and states;
//!   passwords are never exported (accounts come back without one).
//! - Fields are quoted as RFC 4180 says (`csv::quote`).
//!
//! Reads untrusted input: no.

use super::csv::quote;
use super::{Directory, DirectoryError};

/// The header line of an export.
pub const HEADER: &str = "address,display_name,class,leave_date,state";

impl Directory {
    /// Every user as CSV (CRLF line ends, as RFC 4180 §2 says).
    pub fn export_csv(&self) -> Result<String, DirectoryError> {
        let mut out = String::with_capacity(64 * (self.user_count() + 1));
        out.push_str(HEADER);
        out.push_str("\r\n");
        for user in self.users()? {
            let state = if user.enabled { "enabled" } else { "disabled" };
            let fields = [
                quote(&user.address),
                quote(user.display_name.as_deref().unwrap_or("")),
                quote(&user.class),
                quote(user.leave_date.as_deref().unwrap_or("")),
                state.to_string(),
            ];
            out.push_str(&fields.join(","));
            out.push_str("\r\n");
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::import::parse_csv;

    #[test]
    fn an_export_imports_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let open = |name: &str| {
            let d = Directory::open(
                &dir.path().join(name),
                &dir.path().join(format!("{name}.json")),
            )
            .unwrap();
            d.add_domain("campus.test").unwrap();
            d
        };
        let a = open("a");
        a.add_user("kim@campus.test", "long-password").unwrap();
        a.add_user("lee@campus.test", "long-password").unwrap();
        a.set_display_name("kim@campus.test", "김, \"민지\"")
            .unwrap();
        a.set_user_class("kim@campus.test", "default", Some("2027-02-28"))
            .unwrap();
        a.set_enabled("lee@campus.test", false).unwrap();
        let text = a.export_csv().unwrap();
        assert!(text.starts_with("address,display_name,class,leave_date,state\r\n"));
        assert!(!text.contains("argon2"), "no password hash: {text}");
        let b = open("b");
        b.import_users(&parse_csv(&text).unwrap(), false).unwrap();
        let strip = |d: &Directory| {
            d.users()
                .unwrap()
                .into_iter()
                .map(|u| (u.address, u.display_name, u.class, u.leave_date, u.enabled))
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(&a), strip(&b));
        assert_eq!(b.export_csv().unwrap(), text);
    }
}
