//! Why the directory refused a change to classes, domains, aliases or a
//! user's details: one variant per reason, with what the admin typed, so
//! the CLI prints the English text below and the console shows the same
//! reason in the page's language (`web::console::directory_routes::explain`).
//!
//! Owns nothing; error values only.
//!
//! Reads untrusted input: no (it carries what the caller checked).

use super::classes::{MAX_CLASS_CHARS, MAX_GRACE_DAYS};
use super::groups::MAX_MEMBERS;
use super::user_admin::MAX_DISPLAY_NAME;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0:?} is not a class name: use letters, digits, - and _, at most {MAX_CLASS_CHARS} characters")]
    BadClassName(String),
    #[error("the class {0} exists already; change it with `campusmail class set {0} ...`")]
    ClassExists(String),
    #[error("there is no class {0}; define it first with `campusmail class add {0}` or on the console's Classes page")]
    NoSuchClass(String),
    #[error("the class {class} still has {users} users; move them to another class first")]
    ClassInUse { class: String, users: usize },
    #[error("a grace period of more than {MAX_GRACE_DAYS} days is not accepted; use \"never\" for no automatic disabling")]
    GraceTooLong,
    #[error("{0:?} is not a number of days; give a number (0 or more) or \"never\"")]
    BadDays(String),
    #[error("{reason}; or use \"default\" or \"unlimited\"")]
    BadLimit { typed: String, reason: String },
    #[error(
        "{0:?} is not a date; write the leave date as YYYY-MM-DD (e.g. 2027-02-28), or \"none\""
    )]
    BadLeaveDate(String),
    #[error("the name is longer than {MAX_DISPLAY_NAME} characters")]
    NameTooLong,
    #[error("the name holds a control character (a line break or tab); type it on one line")]
    NameHasControl,
    #[error("the domain {0} is not served here")]
    NoSuchDomain(String),
    #[error("the domain {domain} still has {users} users and {aliases} aliases; delete or move them first")]
    DomainInUse {
        domain: String,
        users: usize,
        aliases: usize,
    },
    #[error("there is no alias {0}")]
    NoSuchAlias(String),
    #[error("{0} would have no member left; remove the alias itself instead")]
    LastMember(String),
    #[error("an alias may have at most {MAX_MEMBERS} members")]
    TooManyMembers,
}
