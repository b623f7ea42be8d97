//! Folders as entities: what `CreateFolder`, `RenameFolder` and
//! `DeleteFolder` do, and which folder a message is really in.
//!
//! Owns: the `folder_defs` tree (`mailbox \0 folder id` -> JSON
//! [`FolderRecord`]) and the `orphans` tree (`mailbox \0 folder id \0
//! message id` -> empty).
//!
//! Folder ids: the system folders every mailbox has are named by fixed ids
//! equal to their names (`SYSTEM_FOLDERS`). A user folder's id is derived
//! from the op that created it (`folder_id_of`, the same shape as a message
//! id: `node-a.2a`), so a rename never changes where messages are, and two
//! nodes never make the same id. No system name has that shape.
//!
//! Merge rules (see also `state.rs`):
//! - name and parent: one last-writer-wins register, by (HLC timestamp, op
//!   id), started by the `CreateFolder`;
//! - `DeleteFolder`: a tombstone (kept forever) that beats everything;
//! - a message's folder is the folder its last `Deliver`/`Move` named when
//!   that folder is alive here; a deleted folder means INBOX; a folder not
//!   known here yet means INBOX *for now*, with an `orphans` entry so the
//!   `CreateFolder`, when it arrives, moves the message in. Every node thus
//!   computes the same folder for every message whatever order the ops
//!   came in, and no message is ever in a folder nobody can see.
//!
//! Untrusted input: folder ops from the peer, checked by
//! `ReplicationOp::validate` (`check_folder_op`) before they are applied.

use serde::{Deserialize, Serialize};

use super::hlc::HlcTimestamp;
use super::id::{MessageId, OpId};
use super::listing;
use super::op::{Op, ReplicationOp};
use super::state::{
    abort, encode, folder_prefix, stats_key, tx_decode, MessageRecord, Trees, Tx, TxResult,
};
use super::StoreError;

pub const INBOX: &str = "INBOX";
pub const SENT: &str = "Sent";
pub const DRAFTS: &str = "Drafts";
pub const JUNK: &str = "Junk";
pub const TRASH: &str = "Trash";
/// The folders every mailbox has, in the order they are shown.
pub const SYSTEM_FOLDERS: [&str; 5] = [INBOX, SENT, DRAFTS, JUNK, TRASH];

/// Longest user folder name, in characters.
pub const MAX_FOLDER_NAME: usize = 100;

/// Why a folder request was refused (to be worded by the caller).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FolderProblem {
    #[error("the folder name is empty")]
    NameEmpty,
    #[error("the folder name is longer than {MAX_FOLDER_NAME} characters")]
    NameTooLong,
    #[error("the folder name contains '/' or a control character")]
    NameBadCharacter,
    #[error("a folder with that name is already there")]
    NameTaken,
    #[error("no such folder")]
    NoSuchFolder,
    #[error("a folder cannot be put inside itself or its own subfolder")]
    Cycle,
    #[error("folders are nested too deeply")]
    TooDeep,
    #[error("too many folders")]
    TooMany,
    #[error("system folders cannot be renamed or deleted")]
    System,
}

/// One user folder's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderRecord {
    pub name: String,
    pub parent: Option<String>,
    /// (timestamp, op) that last wrote `name` and `parent`.
    pub stamp: (HlcTimestamp, OpId),
    /// The `CreateFolder` was applied here (a rename or delete can arrive
    /// first from a third node or a restore).
    pub created: bool,
    /// The earliest `DeleteFolder` applied here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<(HlcTimestamp, OpId)>,
}

impl FolderRecord {
    pub fn is_alive(&self) -> bool {
        self.created && self.deleted.is_none()
    }
}

pub fn is_system(folder: &str) -> bool {
    SYSTEM_FOLDERS.contains(&folder)
}

/// The id of the folder made by op `op`.
pub fn folder_id_of(op: &OpId) -> String {
    MessageId::from_op(op).to_string()
}

/// Has `folder` the shape of a user folder id?
pub fn is_user_folder_id(folder: &str) -> bool {
    folder.parse::<MessageId>().is_ok()
}

/// A folder name as typed, checked (the caller trims it first).
pub fn check_folder_name(name: &str) -> Result<(), FolderProblem> {
    if name.trim().is_empty() {
        return Err(FolderProblem::NameEmpty);
    }
    if name.chars().count() > MAX_FOLDER_NAME {
        return Err(FolderProblem::NameTooLong);
    }
    if name.trim() != name || name.chars().any(|c| c == '/' || c.is_control()) {
        return Err(FolderProblem::NameBadCharacter);
    }
    Ok(())
}

/// Checks the fields of a folder op (typically from the peer).
pub fn check_folder_op(folder: &str, name: &str, parent: Option<&str>) -> Result<(), StoreError> {
    let bad = |what: String| Err(StoreError::InvalidOp(what));
    if !is_user_folder_id(folder) {
        return bad(format!("{folder:?} is not a user folder id"));
    }
    if let Err(p) = check_folder_name(name) {
        return bad(format!("folder name: {p}"));
    }
    match parent {
        Some(p) if !is_user_folder_id(p) || p == folder => bad(format!("bad parent {p:?}")),
        _ => Ok(()),
    }
}

/// Key of a folder in `folder_defs`.
pub fn def_key(mailbox: &str, folder: &str) -> Vec<u8> {
    stats_key(mailbox, folder)
}

/// Key of a message waiting in INBOX for `folder`.
pub fn orphan_key(mailbox: &str, folder: &str, id: &MessageId) -> Vec<u8> {
    let mut k = folder_prefix(mailbox, folder);
    k.extend_from_slice(id.as_bytes());
    k
}

/// Where a message that asks for `folder` is: (its folder, the folder it
/// waits for).
pub fn resolve(tx: &Tx, mailbox: &str, folder: &str) -> TxResult<(String, Option<String>)> {
    if is_system(folder) {
        return Ok((folder.to_string(), None));
    }
    if !is_user_folder_id(folder) {
        // A name that can never become a folder (older callers): INBOX.
        return Ok((INBOX.to_string(), None));
    }
    let def = match tx.folder_defs.get(def_key(mailbox, folder))? {
        Some(v) => Some(tx_decode::<FolderRecord>(&v)?),
        None => None,
    };
    Ok(match def {
        Some(d) if d.is_alive() => (folder.to_string(), None),
        Some(d) if d.deleted.is_some() => (INBOX.to_string(), None),
        _ => (INBOX.to_string(), Some(folder.to_string())),
    })
}

/// Messages a folder op may move, read before its transaction (sled
/// transactions cannot scan): those in the folder and those waiting for it.
pub fn affected(trees: &Trees, op: &Op) -> Result<Vec<MessageId>, StoreError> {
    let (mailbox, folder, listed) = match op {
        Op::CreateFolder {
            mailbox, folder, ..
        } => (mailbox, folder, false),
        Op::DeleteFolder { mailbox, folder } => (mailbox, folder, true),
        _ => return Ok(Vec::new()),
    };
    let prefix = folder_prefix(mailbox, folder);
    let mut ids = Vec::new();
    let parse = |bytes: &[u8]| -> Result<MessageId, StoreError> {
        std::str::from_utf8(bytes)
            .map_err(|_| StoreError::Corrupt("message id in a listing".into()))?
            .parse()
    };
    for entry in trees.orphans.scan_prefix(&prefix) {
        let (key, _) = entry?;
        ids.push(parse(&key[prefix.len()..])?);
    }
    if listed {
        for entry in trees.folders.scan_prefix(&prefix) {
            let (key, _) = entry?;
            ids.push(super::listing::listed_id(&prefix, &key)?);
        }
    }
    Ok(ids)
}

fn get_def(tx: &Tx, key: &[u8]) -> TxResult<Option<FolderRecord>> {
    match tx.folder_defs.get(key)? {
        Some(v) => Ok(Some(tx_decode(&v)?)),
        None => Ok(None),
    }
}

/// Applies a folder op; `affected` from [`affected`].
pub fn apply(tx: &Tx, op: &ReplicationOp, affected: &[MessageId]) -> TxResult<()> {
    let stamp = (op.ts, op.id.clone());
    match &op.op {
        Op::CreateFolder {
            mailbox,
            folder,
            name,
            parent,
        } => {
            let key = def_key(mailbox, folder);
            let def = match get_def(tx, &key)? {
                None => FolderRecord {
                    name: name.clone(),
                    parent: parent.clone(),
                    stamp,
                    created: true,
                    deleted: None,
                },
                Some(mut d) => {
                    d.created = true;
                    if d.stamp < stamp {
                        (d.name, d.parent, d.stamp) = (name.clone(), parent.clone(), stamp);
                    }
                    d
                }
            };
            tx.folder_defs.insert(key, encode(&def).or_else(abort)?)?;
            if def.is_alive() {
                rehome(tx, mailbox, folder, affected, folder)?;
            }
            Ok(())
        }
        Op::RenameFolder {
            mailbox,
            folder,
            name,
            parent,
        } => {
            let key = def_key(mailbox, folder);
            let def = match get_def(tx, &key)? {
                None => FolderRecord {
                    name: name.clone(),
                    parent: parent.clone(),
                    stamp,
                    created: false,
                    deleted: None,
                },
                Some(mut d) if d.stamp < stamp => {
                    (d.name, d.parent, d.stamp) = (name.clone(), parent.clone(), stamp);
                    d
                }
                Some(_) => return Ok(()),
            };
            tx.folder_defs.insert(key, encode(&def).or_else(abort)?)?;
            Ok(())
        }
        Op::DeleteFolder { mailbox, folder } => {
            let key = def_key(mailbox, folder);
            let mut def = get_def(tx, &key)?.unwrap_or_else(|| FolderRecord {
                name: String::new(),
                parent: None,
                stamp: (
                    HlcTimestamp::default(),
                    OpId {
                        origin: String::new(),
                        seq: 0,
                    },
                ),
                created: false,
                deleted: None,
            });
            if def.deleted.as_ref().is_none_or(|d| stamp < *d) {
                def.deleted = Some(stamp);
            }
            tx.folder_defs.insert(key, encode(&def).or_else(abort)?)?;
            rehome(tx, mailbox, folder, affected, INBOX)
        }
        _ => Ok(()),
    }
}

/// Moves the messages of `affected` that are in `folder`, or wait for it,
/// to `to` (INBOX when the folder died, the folder when it came to life).
/// Their `moved` stamps stay: which move won is unchanged, only where
/// that move's folder is has been settled.
fn rehome(tx: &Tx, mailbox: &str, folder: &str, affected: &[MessageId], to: &str) -> TxResult<()> {
    for id in affected {
        let Some(rec) = super::message_rows::tx_read(tx.messages, tx.deliveries, id)? else {
            continue;
        };
        let here = rec.folder == folder || rec.wanted.as_deref() == Some(folder);
        if rec.mailbox != mailbox || !here {
            continue;
        }
        let next = MessageRecord {
            folder: to.to_string(),
            wanted: None,
            ..rec.clone()
        };
        listing::relocate(tx, id, &rec, &next)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_are_checked() {
        assert_eq!(check_folder_name("수업 자료"), Ok(()));
        assert_eq!(check_folder_name(""), Err(FolderProblem::NameEmpty));
        assert_eq!(check_folder_name("  "), Err(FolderProblem::NameEmpty));
        assert_eq!(
            check_folder_name("a/b"),
            Err(FolderProblem::NameBadCharacter)
        );
        assert_eq!(
            check_folder_name("a\tb"),
            Err(FolderProblem::NameBadCharacter)
        );
        assert_eq!(
            check_folder_name(" a"),
            Err(FolderProblem::NameBadCharacter)
        );
        assert_eq!(
            check_folder_name(&"가".repeat(101)),
            Err(FolderProblem::NameTooLong)
        );
        assert_eq!(check_folder_name(&"가".repeat(100)), Ok(()));
    }

    #[test]
    fn system_names_are_never_user_ids() {
        for name in SYSTEM_FOLDERS {
            assert!(!is_user_folder_id(name), "{name}");
        }
        let id = folder_id_of(&OpId {
            origin: "node-a".into(),
            seq: 42,
        });
        assert!(is_user_folder_id(&id));
        assert!(!is_system(&id));
    }
}
