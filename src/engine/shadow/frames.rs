//! The frames of the engines' shadow link, in the replication link's
//! framing (`replication::wire`: a length, a JSON header, raw bytes after
//! a `Hold`).
//!
//! Conversation: the origin (the engine that accepted the mail) connects
//! to its peer, the holder, and sends `Hello` with the ids still in its
//! queue; the holder answers `Welcome` with the ids it took over while the
//! origin was silent. From then on the origin sends `Hold` (answered by
//! `Held` once the copy is durable), `Progress`, `Done`, `TakenSeen`, and
//! `Ping` when idle. Only `Hold` is answered.

use serde::{Deserialize, Serialize};

use crate::engine::queue::Recipient;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ShadowFrame {
    // Origin to holder.
    /// First frame: who we are and which of our messages are still queued
    /// (copies of any other are finished and can go).
    Hello {
        node: String,
        queued: Vec<String>,
    },
    /// Keep this queue file (`len` bytes follow) until `Done`.
    Hold {
        id: String,
        len: u64,
    },
    /// These recipients of `id` are final (delivered or bounced) at the
    /// origin: a takeover must not send them again.
    Progress {
        id: String,
        recipients: Vec<(usize, Recipient)>,
    },
    /// These messages left the origin's queue.
    Done {
        ids: Vec<String>,
    },
    /// The origin dropped these taken-over messages from its queue: the
    /// holder can forget that it took them.
    TakenSeen {
        ids: Vec<String>,
    },
    /// Sent when idle, so the holder knows the origin is alive.
    Ping,

    // Holder to origin.
    /// Answer to `Hello`: the origin's messages this node is delivering
    /// itself because the origin was silent too long.
    Welcome {
        node: String,
        taken: Vec<String>,
    },
    /// The copy of `id` is durable here.
    Held {
        id: String,
    },
    Refused {
        reason: String,
    },
}
