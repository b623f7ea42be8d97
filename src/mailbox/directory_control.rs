//! The mailbox role's side of `campusmail user|domain|alias|class ...`
//! while it runs: each command arrives on the control socket and runs
//! here, as in the console, with what only the running role can add.
//!
//! Owns: nothing; the handler holds the directory, the store and (once
//! the web has started) the webmail's session table.
//!
//! Invariants:
//! - `user disable`, `user passwd` and `user delete` end the user's webmail
//!   session on this node, as the console does (the peer ends its own
//!   when the change arrives, `directory_sync`).
//! - `user delete` disables the account, empties the mailbox
//!   (`mailbox_removal`) and only then removes the record, like the console.
//!
//! Reads untrusted input: only the appliance's own user's commands.

use std::sync::{Arc, OnceLock};

use super::mailbox_removal::empty_mailbox;
use crate::directory::commands::{execute, DirectoryCommand};
use crate::directory::Directory;
use crate::store::Store;
use crate::web::session::SessionStore;

/// Runs one command from the control socket; the text for the admin.
pub fn handle(
    directory: &Directory,
    store: &Store,
    sessions: &OnceLock<Arc<SessionStore>>,
    command: &DirectoryCommand,
) -> Result<String, String> {
    let end_sessions = |address: &str| {
        if let Some(sessions) = sessions.get() {
            let normalized = crate::directory::address::normalize_address(address)
                .unwrap_or_else(|| address.to_string());
            sessions.end_all_sessions_of(&normalized);
        }
    };
    match command {
        DirectoryCommand::UserDelete { address } => {
            let disable = DirectoryCommand::UserDisable {
                address: address.clone(),
            };
            execute(directory, &disable).map_err(|e| e.to_string())?;
            end_sessions(address);
            let user = directory
                .user(address)
                .map_err(|e| e.to_string())?
                .map(|u| u.address)
                .unwrap_or_else(|| address.clone());
            let removed = empty_mailbox(store, &user).map_err(|e| {
                format!("{user} is disabled, but emptying the mailbox failed ({e}); run the delete again")
            })?;
            let text = execute(directory, command).map_err(|e| e.to_string())?;
            Ok(format!("{text}, with {removed} messages"))
        }
        DirectoryCommand::UserDisable { address }
        | DirectoryCommand::UserPasswd { address, .. } => {
            let text = execute(directory, command).map_err(|e| e.to_string())?;
            end_sessions(address);
            Ok(text)
        }
        other => execute(directory, other).map_err(|e| e.to_string()),
    }
}
