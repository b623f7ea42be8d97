//! Store operations: the only way metadata changes (DESIGN.md "The store").
//!
//! Every mutation — local or replicated — is a [`ReplicationOp`]: an op id
//! (origin node, gap-free sequence), a hybrid-logical-clock timestamp and an
//! [`Op`]. The `oplog` tree holds every op applied here, keyed by
//! `origin \0 seq(BE)`; the state trees are what applying them produced
//! (see `state.rs`). Ops are encoded as JSON: easy to inspect with a debugger
//! and to version by adding optional fields.
//!
//! Untrusted input: ops from the peer. `validate` checks what apply relies
//! on (names, derived ids, blob id shape) before an op touches any tree.

use serde::{Deserialize, Serialize};

use super::blob::BlobId;
use super::hlc::HlcTimestamp;
use super::id::{is_valid_node_name, MessageId, OpId};
use super::StoreError;

/// One entry of the op log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationOp {
    pub id: OpId,
    pub ts: HlcTimestamp,
    pub op: Op,
}

/// What an op does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Op {
    /// A message arrived for one or more mailboxes: `targets` lists each
    /// (mailbox, folder). The op occupies the sequence numbers `seq ..
    /// seq + targets.len()` of its origin (see `seq_span`), and the
    /// message of target `i` has the id of `(origin, seq + i)`, so one
    /// announcement to 30,000 students is one op, not 30,000. Its bytes
    /// are the blob `blob` (which must be stored first).
    Deliver {
        targets: Vec<(String, String)>,
        blob: BlobId,
        size: u64,
        received_at: i64,
        summary: SummaryFields,
        /// The engine's queue id that carried this delivery over LMTP
        /// (`store::queue_refs`): a retry of it is recognised here and on
        /// the peer, and not stored twice.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queue_ref: Option<String>,
    },
    /// The `\Seen` flag of `message` was set or cleared. Last writer (by
    /// HLC timestamp, then op id) wins.
    SetSeen { message: MessageId, seen: bool },
    /// `message` moved to `folder` of its mailbox. Last writer (by HLC
    /// timestamp, then op id) wins; a move of a deleted message is a no-op.
    Move { message: MessageId, folder: String },
    /// `message` was deleted for good. Leaves a tombstone, so a `Deliver`
    /// of it that arrives later (replication) stays deleted; deletion wins
    /// over any concurrent flag change or move.
    Expunge { message: MessageId },
    /// `user` logged in to the webmail at `at` (unix seconds) from `ip`.
    /// The newest login (by HLC timestamp, then op id) ends the user's
    /// sessions elsewhere (R6); every login is kept as history.
    Login { user: String, ip: String, at: i64 },
    /// A record of the directory (`tree` = users, aliases, domains or
    /// admins) was written (`value`, its stored text) or removed (None).
    /// Last writer wins per record.
    Directory {
        tree: String,
        key: String,
        value: Option<String>,
    },
    /// One flag of `message` was set or cleared. Last writer (by HLC
    /// timestamp, then op id) wins, per flag; `SetSeen` is the older
    /// spelling of `SetFlag { flag: Seen }` and is still applied.
    SetFlag {
        message: MessageId,
        flag: Flag,
        value: bool,
    },
    /// A user folder was made in `mailbox`. Its id `folder` is derived
    /// from the op id (`folders::folder_id_of`), so it never changes when
    /// the folder is renamed and two nodes never make the same id.
    CreateFolder {
        mailbox: String,
        folder: String,
        name: String,
        parent: Option<String>,
    },
    /// A user folder's name and place (`parent`) changed together. Last
    /// writer (by HLC timestamp, then op id) wins.
    RenameFolder {
        mailbox: String,
        folder: String,
        name: String,
        parent: Option<String>,
    },
    /// A user folder was deleted: a tombstone that beats every other op on
    /// it. Messages still in it (or moved or delivered into it later, by
    /// a node that had not seen the delete) are in INBOX.
    DeleteFolder { mailbox: String, folder: String },
}

/// The message flags the webmail sets (RFC 9051 §2.3.2 system flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// `\Seen`: the message was read.
    Seen,
    /// `\Flagged`: marked for attention.
    Flagged,
    /// `\Answered`: a reply was sent.
    Answered,
}

/// Header summary stored with each message so listing reads no blobs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryFields {
    pub from: String,
    pub subject: String,
    /// Header `Date` as unix seconds, if present and parseable.
    pub date: Option<i64>,
    /// The Message-ID that starts the message's conversation
    /// (`mime::summarize`); absent in ops written before threads existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<String>,
}

/// The directory's trees that travel in the log.
pub const DIRECTORY_TREES: [&str; 9] = [
    "domains",
    "users",
    "aliases",
    "admins",
    "settings",
    "classes",
    "appliance",
    "contacts",
    "vacation_replies",
];

/// Most mailboxes one `Deliver` op may name (the engine hands mail over
/// in LMTP transactions of at most a few thousand recipients).
pub const MAX_TARGETS: usize = 100_000;

/// Longest mailbox or folder name accepted (bytes).
pub const MAX_NAME: usize = 320;

/// Mailbox and folder names become parts of sled keys separated by 0 bytes.
pub fn check_name(what: &str, name: &str) -> Result<(), StoreError> {
    if name.is_empty() || name.len() > MAX_NAME || name.bytes().any(|b| b == 0) {
        return Err(StoreError::InvalidName(format!(
            "{what} {:?}",
            name.chars().take(80).collect::<String>()
        )));
    }
    Ok(())
}

impl ReplicationOp {
    /// Checks an op (typically from the peer) before it is applied.
    pub fn validate(&self) -> Result<(), StoreError> {
        if !is_valid_node_name(&self.id.origin) || self.id.seq == 0 {
            return Err(StoreError::InvalidOp(format!("bad op id {:?}", self.id)));
        }
        match &self.op {
            Op::Deliver { targets, .. } => {
                if targets.is_empty() || targets.len() > MAX_TARGETS {
                    return Err(StoreError::InvalidOp(format!(
                        "a delivery to {} mailboxes (1 to {MAX_TARGETS} allowed)",
                        targets.len()
                    )));
                }
                if self.id.seq.checked_add(targets.len() as u64).is_none() {
                    return Err(StoreError::InvalidOp(format!("bad op id {:?}", self.id)));
                }
                for (mailbox, folder) in targets {
                    check_name("mailbox", mailbox)?;
                    check_name("folder", folder)?;
                }
                if let Op::Deliver {
                    summary, queue_ref, ..
                } = &self.op
                {
                    if summary.thread.as_ref().is_some_and(|t| t.len() > MAX_NAME) {
                        return Err(StoreError::InvalidOp("thread root too long".into()));
                    }
                    if let Some(r) = queue_ref {
                        check_name("queue id", r)?;
                    }
                }
            }
            Op::Move { folder, .. } => check_name("folder", folder)?,
            Op::SetSeen { .. } | Op::Expunge { .. } | Op::SetFlag { .. } => {}
            Op::CreateFolder {
                mailbox,
                folder,
                name,
                parent,
            } => {
                check_name("mailbox", mailbox)?;
                if *folder != super::folders::folder_id_of(&self.id) {
                    return Err(StoreError::InvalidOp(format!(
                        "folder id {folder:?} does not match op {:?}",
                        self.id
                    )));
                }
                super::folders::check_folder_op(folder, name, parent.as_deref())?;
            }
            Op::RenameFolder {
                mailbox,
                folder,
                name,
                parent,
            } => {
                check_name("mailbox", mailbox)?;
                super::folders::check_folder_op(folder, name, parent.as_deref())?;
            }
            Op::DeleteFolder { mailbox, folder } => {
                check_name("mailbox", mailbox)?;
                if !super::folders::is_user_folder_id(folder) {
                    return Err(StoreError::InvalidOp(format!(
                        "{folder:?} is not a user folder"
                    )));
                }
            }
            Op::Directory { tree, key, .. } => {
                if !DIRECTORY_TREES.contains(&tree.as_str()) {
                    return Err(StoreError::InvalidOp(format!("directory tree {tree:?}")));
                }
                check_name("directory key", key)?;
            }
            Op::Login { user, ip, .. } => {
                check_name("user", user)?;
                if ip.parse::<std::net::IpAddr>().is_err() {
                    return Err(StoreError::InvalidOp(format!("login from {ip:?}")));
                }
            }
        }
        Ok(())
    }

    /// How many sequence numbers of its origin the op occupies: one per
    /// target for a delivery (each message's id), else one. The next op
    /// of the origin has `seq + seq_span()`.
    pub fn seq_span(&self) -> u64 {
        match &self.op {
            Op::Deliver { targets, .. } => (targets.len() as u64).max(1),
            _ => 1,
        }
    }

    /// The ids of the messages a `Deliver` op made, in target order
    /// (empty for other ops).
    pub fn delivered_ids(&self) -> Vec<MessageId> {
        match &self.op {
            Op::Deliver { targets, .. } => (0..targets.len() as u64)
                .map(|i| {
                    MessageId::from_op(&OpId {
                        origin: self.id.origin.clone(),
                        seq: self.id.seq.saturating_add(i),
                    })
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    pub fn encode(&self) -> Result<Vec<u8>, StoreError> {
        serde_json::to_vec(self).map_err(|e| StoreError::Corrupt(format!("encoding op: {e}")))
    }

    pub fn decode(bytes: &[u8]) -> Result<ReplicationOp, StoreError> {
        serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("decoding op: {e}")))
    }
}
