//! The mailbox role's link to the engine's `engine.sock`: the engine's
//! report (counters, lanes, process), the queue listing and the admin's
//! actions, as the console and `/metrics` need them. The roles may be two
//! processes, so this is the only way the mailbox role sees the queue.
//!
//! Invariants:
//! - Every call is bounded by `TIMEOUT`; a stopped or stuck engine is an
//!   `EngineLinkError`, never a hung web worker.
//! - The engine's JSON is parsed with serde into the `console_api` types;
//!   anything else is `Malformed`.
//!
//! Reads untrusted input: only the engine's replies (our own process
//! user's socket).

use std::path::PathBuf;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::engine::queue::commands::QueueCommand;
pub use crate::engine::queue::console_api::{
    ActOutcome, EngineReport, LaneReport, ListingFilter, MessageStatus, QueueAction, QueueListing,
    QueuedMessage,
};

/// Longest wait for one answer from the engine.
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum EngineLinkError {
    #[error("the engine is not running (nothing answers on {0})")]
    NotRunning(PathBuf),
    #[error("the engine did not answer: {0}")]
    Talk(String),
    #[error("the engine refused the request: {0}")]
    Refused(String),
    #[error("the engine's answer could not be read: {0}")]
    Malformed(String),
}

/// The way to the engine of this node.
#[derive(Debug, Clone)]
pub struct EngineLink {
    socket: PathBuf,
}

impl EngineLink {
    pub fn new(socket: PathBuf) -> EngineLink {
        EngineLink { socket }
    }

    fn ask<T: DeserializeOwned>(&self, command: &QueueCommand) -> Result<T, EngineLinkError> {
        let reply = crate::control::send_within(&self.socket, command, Some(TIMEOUT))
            .map_err(|e| EngineLinkError::Talk(e.to_string()))?
            .ok_or_else(|| EngineLinkError::NotRunning(self.socket.clone()))?;
        if !reply.ok {
            return Err(EngineLinkError::Refused(reply.output));
        }
        serde_json::from_str(&reply.output).map_err(|e| EngineLinkError::Malformed(e.to_string()))
    }

    pub fn report(&self) -> Result<EngineReport, EngineLinkError> {
        self.ask(&QueueCommand::Report)
    }

    pub fn listing(&self, filter: ListingFilter) -> Result<QueueListing, EngineLinkError> {
        self.ask(&QueueCommand::Listing { filter })
    }

    pub fn act(&self, id: &str, action: QueueAction) -> Result<ActOutcome, EngineLinkError> {
        self.ask(&QueueCommand::Act {
            id: id.to_string(),
            action,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopped_engine_is_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let link = EngineLink::new(dir.path().join("engine.sock"));
        assert!(matches!(link.report(), Err(EngineLinkError::NotRunning(_))));
    }
}
