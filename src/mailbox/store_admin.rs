//! `campusmail store ...` from the command line: the command goes to the
//! running mailbox role over `store.sock`, or, when none runs, the store is
//! opened here directly (sled lets only one process open it).

use crate::config::Config;
use crate::store::commands::{execute, StoreCommand};

/// Runs `command`; Ok = text for the admin, Err = what went wrong.
pub fn run(config: &Config, command: &StoreCommand) -> anyhow::Result<String> {
    match crate::control::send(&config.store_socket(), command)? {
        Some(reply) if reply.ok => Ok(reply.output),
        Some(reply) => anyhow::bail!("{}", reply.output.trim_end()),
        None => {
            let store = config.open_store().map_err(|e| {
                anyhow::anyhow!(
                    "cannot open the mail store ({e}); if campusmail is running, \
                     its store socket {} did not answer",
                    config.store_socket().display()
                )
            })?;
            execute(&store, command).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))
        }
    }
}
