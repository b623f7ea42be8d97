//! Management commands on the directory, as data.
//!
//! The CLI builds a `DirectoryCommand`; it is executed here either inside the
//! running mailbox role (sent over the control socket) or directly on the
//! database when the appliance is stopped. One code path either way.
//!
//! Invariant: the text returned is what the admin sees; errors say what to do.

use serde::{Deserialize, Serialize};

use super::import::ImportRequest;
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
}

/// "default" -> None, "unlimited" -> Some(0), else `parse`.
fn parse_limit(
    text: &str,
    parse: impl Fn(&str) -> Result<u64, String>,
) -> Result<Option<u64>, DirectoryError> {
    match text.trim() {
        "default" => Ok(None),
        "unlimited" | "none" => Ok(Some(0)),
        t => parse(t).map(Some).map_err(|e| {
            DirectoryError::BadValue(format!("{e}; or use \"default\" or \"unlimited\""))
        }),
    }
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
        UserImport(request) => directory
            .import_users(&request.rows, request.skip_existing)?
            .to_string(),
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
            let bytes = bytes
                .as_deref()
                .map(|t| parse_limit(t, crate::config::parse_size))
                .transpose()?;
            let messages = messages
                .as_deref()
                .map(|t| {
                    parse_limit(t, |n| {
                        n.parse::<u64>()
                            .map_err(|_| format!("{n:?} is not a number of messages"))
                    })
                })
                .transpose()?;
            let u = directory.set_quota(address, bytes, messages)?;
            let show = |v: Option<u64>, unit: &str| match v {
                None => "the default".to_string(),
                Some(0) => "no limit".to_string(),
                Some(n) => format!("{n} {unit}"),
            };
            format!(
                "quota of {}: {} / {}",
                u.address,
                show(u.quota_bytes, "bytes"),
                show(u.quota_messages, "messages")
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
    })
}
