//! Management commands on the directory, as data.
//!
//! The CLI builds a `DirectoryCommand`; it is executed here either inside the
//! running mailbox role (sent over the control socket) or directly on the
//! database when the appliance is stopped. One code path either way.
//!
//! Invariant: the text returned is what the admin sees; errors say what to do.

use serde::{Deserialize, Serialize};

use super::classes::{ClassChange, ClassRecord};
use super::import::{ImportReport, ImportRequest};
use super::refusal::Refusal;
use super::{Directory, DirectoryError};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum DirectoryCommand {
    DomainAdd {
        domain: String,
    },
    DomainList,
    UserAdd {
        address: String,
        password: String,
    },
    UserList,
    UserImport(ImportRequest),
    UserPasswd {
        address: String,
        password: String,
    },
    UserDisable {
        address: String,
    },
    UserEnable {
        address: String,
    },
    /// Each limit: None = unchanged, "default", "unlimited", or a size
    /// ("2GB") / a message count.
    UserQuota {
        address: String,
        bytes: Option<String>,
        messages: Option<String>,
    },
    AliasAdd {
        alias: String,
        targets: Vec<String>,
    },
    AliasList,
    /// Sets ("" clears) a user's display name.
    UserSetName {
        address: String,
        display_name: String,
    },
    /// Puts a user in a class; `leave_date`: None = unchanged, "" or
    /// "none" = cleared, else YYYY-MM-DD.
    UserSetClass {
        address: String,
        class: String,
        leave_date: Option<String>,
    },
    /// Removes the account (the console empties the mailbox first).
    UserDelete {
        address: String,
    },
    UserExport,
    DomainRemove {
        domain: String,
    },
    AliasRemove {
        alias: String,
    },
    AliasMembers {
        alias: String,
        add: Vec<String>,
        remove: Vec<String>,
    },
    /// Each setting: None = unchanged; limits as for `UserQuota`; days a
    /// number or "never".
    ClassAdd {
        name: String,
        #[serde(flatten)]
        settings: ClassSettings,
    },
    ClassSet {
        name: String,
        #[serde(flatten)]
        settings: ClassSettings,
    },
    ClassRemove {
        name: String,
    },
    ClassList,
}

/// A class's settings as the admin typed them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ClassSettings {
    pub quota_bytes: Option<String>,
    pub quota_messages: Option<String>,
    pub disable_after_days: Option<String>,
}

impl ClassSettings {
    /// The change these settings make, or what is wrong with them.
    pub fn change(&self) -> Result<ClassChange, DirectoryError> {
        let days = |t: &str| -> Result<Option<u32>, DirectoryError> {
            match t.trim() {
                "never" | "none" | "" => Ok(None),
                n => n
                    .parse::<u32>()
                    .map(Some)
                    .map_err(|_| Refusal::BadDays(n.to_string()).into()),
            }
        };
        Ok(ClassChange {
            quota_bytes: self
                .quota_bytes
                .as_deref()
                .map(parse_bytes_limit)
                .transpose()?,
            quota_messages: self
                .quota_messages
                .as_deref()
                .map(parse_messages_limit)
                .transpose()?,
            disable_after_days: self.disable_after_days.as_deref().map(days).transpose()?,
        })
    }
}

/// A byte limit as the admin writes it ("2GB", "default", "unlimited").
pub fn parse_bytes_limit(text: &str) -> Result<Option<u64>, DirectoryError> {
    parse_limit(text, crate::config::parse_size)
}

/// A message-count limit ("50000", "default", "unlimited").
pub fn parse_messages_limit(text: &str) -> Result<Option<u64>, DirectoryError> {
    parse_limit(text, |n| {
        n.parse::<u64>()
            .map_err(|_| format!("{n:?} is not a number of messages"))
    })
}

/// How a limit reads to the admin.
pub fn show_limit(v: Option<u64>, unit: &str) -> String {
    match v {
        None => "the default".to_string(),
        Some(0) => "no limit".to_string(),
        Some(n) => format!("{n} {unit}"),
    }
}

fn show_class(c: &ClassRecord) -> String {
    let rule = match c.disable_after_days {
        None => "never disabled automatically".to_string(),
        Some(d) => format!("disabled {d} days after the leave date"),
    };
    format!(
        "{}\tquota {} / {}\t{rule}",
        c.name,
        show_limit(c.quota_bytes, "bytes"),
        show_limit(c.quota_messages, "messages")
    )
}

/// "default" -> None, "unlimited" -> Some(0), else `parse`.
fn parse_limit(
    text: &str,
    parse: impl Fn(&str) -> Result<u64, String>,
) -> Result<Option<u64>, DirectoryError> {
    match text.trim() {
        "default" => Ok(None),
        "unlimited" | "none" => Ok(Some(0)),
        t => parse(t).map(Some).map_err(|reason| {
            Refusal::BadLimit {
                typed: t.to_string(),
                reason,
            }
            .into()
        }),
    }
}

/// `user import` (the CLI and the console): the report as data, for the
/// console to say in the page's language.
pub fn import(
    directory: &Directory,
    request: &ImportRequest,
) -> Result<ImportReport, DirectoryError> {
    directory.import_users(&request.rows, request.skip_existing)
}

/// Runs `command` and returns the text to show the admin.
pub fn execute(
    directory: &Directory,
    command: &DirectoryCommand,
) -> Result<String, DirectoryError> {
    use DirectoryCommand::*;
    Ok(match command {
        DomainAdd { domain } => {
            directory.add_domain(domain)?;
            format!("domain {} added", domain.trim().to_ascii_lowercase())
        }
        DomainList => directory.domains()?.join("\n"),
        UserAdd { address, password } => {
            let address = directory.add_user(address, password)?;
            format!("user {address} added")
        }
        UserList => directory
            .users()?
            .iter()
            .map(|u| {
                let state = if u.enabled { "enabled" } else { "disabled" };
                let login = if u.has_password() {
                    ""
                } else {
                    "\tno password"
                };
                format!("{}\t{}\t{}{login}", u.address, state, u.class)
            })
            .collect::<Vec<_>>()
            .join("\n"),
        UserImport(request) => import(directory, request)?.to_string(),
        UserPasswd { address, password } => {
            directory.set_password(address, password)?;
            format!("password of {address} changed")
        }
        UserDisable { address } => {
            directory.set_enabled(address, false)?;
            format!("user {address} disabled: logins and new mail are refused, stored mail is kept")
        }
        UserEnable { address } => {
            directory.set_enabled(address, true)?;
            format!("user {address} enabled")
        }
        UserQuota {
            address,
            bytes,
            messages,
        } => {
            let bytes = bytes.as_deref().map(parse_bytes_limit).transpose()?;
            let messages = messages.as_deref().map(parse_messages_limit).transpose()?;
            let u = directory.set_quota(address, bytes, messages)?;
            format!(
                "quota of {}: {} / {}",
                u.address,
                show_limit(u.quota_bytes, "bytes"),
                show_limit(u.quota_messages, "messages")
            )
        }
        AliasAdd { alias, targets } => {
            let alias = directory.add_alias(alias, targets)?;
            format!("alias {alias} -> {} added", targets.join(", "))
        }
        AliasList => directory
            .aliases()?
            .iter()
            .map(|(a, t)| format!("{a}\t{}", t.join(", ")))
            .collect::<Vec<_>>()
            .join("\n"),
        UserSetName {
            address,
            display_name,
        } => {
            directory.set_display_name(address, display_name)?;
            format!("name of {address} set")
        }
        UserSetClass {
            address,
            class,
            leave_date,
        } => {
            let u = directory.set_user_class(address, class, leave_date.as_deref())?;
            let leave = u.leave_date.as_deref().unwrap_or("none");
            format!("{} is in class {}, leave date {leave}", u.address, u.class)
        }
        UserDelete { address } => {
            let emptied = directory.delete_user(address)?;
            let mut text = format!("user {address} deleted");
            if !emptied.is_empty() {
                text.push_str(&format!(
                    "; aliases left without members removed: {}",
                    emptied.join(", ")
                ));
            }
            text
        }
        UserExport => directory.export_csv()?,
        DomainRemove { domain } => {
            directory.remove_domain(domain)?;
            format!("domain {} removed", domain.trim().to_ascii_lowercase())
        }
        AliasRemove { alias } => {
            directory.remove_alias(alias)?;
            format!("alias {} removed", alias.trim())
        }
        AliasMembers { alias, add, remove } => {
            let members = directory.change_members(alias, add, remove)?;
            format!("{} -> {}", alias.trim(), members.join(", "))
        }
        ClassAdd { name, settings } => show_class(&directory.add_class(name, &settings.change()?)?),
        ClassSet { name, settings } => show_class(&directory.set_class(name, &settings.change()?)?),
        ClassRemove { name } => {
            directory.remove_class(name)?;
            format!("class {} removed", name.trim().to_lowercase())
        }
        ClassList => directory
            .seats()?
            .iter()
            .map(|s| {
                let head = match &s.record {
                    Some(c) => show_class(c),
                    None => format!("{}\t(not defined: no defaults, no rule)", s.class),
                };
                format!("{head}\t{} enabled, {} disabled", s.enabled, s.disabled)
            })
            .collect::<Vec<_>>()
            .join("\n"),
    })
}
