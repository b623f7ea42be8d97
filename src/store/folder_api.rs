//! The store's folder and message-action API for the webmail: list,
//! create, rename and delete folders; move, flag and delete many messages
//! with one flush.
//!
//! Owns nothing on disk itself: every change is an op (`folders.rs` and
//! `state.rs` apply them). The rules here are the local ones a user can be
//! told about (names, duplicates among siblings, cycles, depth); the merge
//! rules that hold whatever the peer did are in `folders.rs`.
//!
//! Invariant: checks and the ops they allow happen under the writer lock,
//! so two requests on this node cannot both pass a duplicate-name check.
//! Two *nodes* can (both folders then exist; see `folders.rs`).

use std::collections::HashMap;

use super::folders::{
    self, check_folder_name, def_key, FolderProblem, FolderRecord, SYSTEM_FOLDERS, TRASH,
};
use super::id::MessageId;
use super::op::{check_name, Flag, Op};
use super::state::{self, folder_prefix};
use super::{OpWriter, Store, StoreError};

/// Deepest nesting of user folders (a top-level folder is depth 1).
pub const MAX_DEPTH: usize = 8;
/// Most live user folders in one mailbox.
pub const MAX_FOLDERS: usize = 1000;

/// A user folder as the webmail shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserFolder {
    pub id: String,
    pub name: String,
    /// None = top level (also when the parent died or a concurrent rename
    /// made a cycle: `FolderTree` puts those at the top).
    pub parent: Option<String>,
}

/// A folder with its counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderCounts {
    pub total: u64,
    pub unseen: u64,
}

impl Store {
    /// `user`'s live folders (not the system ones), by name.
    pub fn user_folders(&self, user: &str) -> Result<Vec<UserFolder>, StoreError> {
        check_name("mailbox", user)?;
        // `mailbox \0`: every folder of this mailbox (names hold no 0 byte).
        let prefix = &state::stats_key(user, "")[..];
        let mut out = Vec::new();
        for entry in self.trees.folder_defs.scan_prefix(prefix) {
            let (key, value) = entry?;
            let rec: FolderRecord = state::decode(&value)?;
            if !rec.is_alive() {
                continue;
            }
            let id = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
            out.push(UserFolder {
                id,
                name: rec.name,
                parent: rec.parent,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Messages and unseen messages in a folder.
    pub fn folder_counts(&self, user: &str, folder: &str) -> Result<FolderCounts, StoreError> {
        check_name("mailbox", user)?;
        check_name("folder", folder)?;
        let (total, unseen) = state::decode_stats(
            self.trees
                .folder_stats
                .get(state::stats_key(user, folder))?
                .as_deref(),
        );
        Ok(FolderCounts { total, unseen })
    }

    /// Is `folder` one `user` can put messages in (a system folder or one
    /// of their live folders)?
    pub fn folder_exists(&self, user: &str, folder: &str) -> Result<bool, StoreError> {
        if folders::is_system(folder) {
            return Ok(true);
        }
        if !folders::is_user_folder_id(folder) {
            return Ok(false);
        }
        Ok(match self.trees.folder_defs.get(def_key(user, folder))? {
            Some(v) => state::decode::<FolderRecord>(&v)?.is_alive(),
            None => false,
        })
    }

    /// Makes a folder named `name` (trimmed) under `parent` (None = top
    /// level); returns its id.
    pub fn create_folder(
        &self,
        user: &str,
        name: &str,
        parent: Option<&str>,
    ) -> Result<String, StoreError> {
        check_name("mailbox", user)?;
        let name = name.trim();
        check_folder_name(name)?;
        let mut w = self.writer.lock().map_err(|_| StoreError::Poisoned)?;
        let live = self.user_folders(user)?;
        if live.len() >= MAX_FOLDERS {
            return Err(FolderProblem::TooMany.into());
        }
        let by_id: HashMap<&str, &UserFolder> = live.iter().map(|f| (f.id.as_str(), f)).collect();
        if let Some(p) = parent {
            if !by_id.contains_key(p) {
                return Err(FolderProblem::NoSuchFolder.into());
            }
            if depth(&by_id, p) >= MAX_DEPTH {
                return Err(FolderProblem::TooDeep.into());
            }
        }
        if sibling_named(&live, parent, name, None) {
            return Err(FolderProblem::NameTaken.into());
        }
        let mut made = String::new();
        self.apply_local(&mut w, |op| {
            made = folders::folder_id_of(op);
            Op::CreateFolder {
                mailbox: user.to_string(),
                folder: made.clone(),
                name: name.to_string(),
                parent: parent.map(str::to_string),
            }
        })?;
        // The folder becomes durable here.
        self.db.flush()?;
        Ok(made)
    }

    /// Renames `folder` and/or puts it under `parent`.
    pub fn rename_folder(
        &self,
        user: &str,
        folder: &str,
        name: &str,
        parent: Option<&str>,
    ) -> Result<(), StoreError> {
        check_name("mailbox", user)?;
        if folders::is_system(folder) {
            return Err(FolderProblem::System.into());
        }
        let name = name.trim();
        check_folder_name(name)?;
        let mut w = self.writer.lock().map_err(|_| StoreError::Poisoned)?;
        let live = self.user_folders(user)?;
        let by_id: HashMap<&str, &UserFolder> = live.iter().map(|f| (f.id.as_str(), f)).collect();
        let Some(current) = by_id.get(folder) else {
            return Err(FolderProblem::NoSuchFolder.into());
        };
        if let Some(p) = parent {
            if !by_id.contains_key(p) {
                return Err(FolderProblem::NoSuchFolder.into());
            }
            if p == folder || ancestors(&by_id, p).any(|a| a == folder) {
                return Err(FolderProblem::Cycle.into());
            }
            if depth(&by_id, p) + subtree_height(&live, folder) > MAX_DEPTH {
                return Err(FolderProblem::TooDeep.into());
            }
        }
        if current.name == name && current.parent.as_deref() == parent {
            return Ok(());
        }
        if sibling_named(&live, parent, name, Some(folder)) {
            return Err(FolderProblem::NameTaken.into());
        }
        self.apply_local(&mut w, |_| Op::RenameFolder {
            mailbox: user.to_string(),
            folder: folder.to_string(),
            name: name.to_string(),
            parent: parent.map(str::to_string),
        })?;
        self.db.flush()?;
        Ok(())
    }

    /// Deletes `folder` and its subfolders; their messages go to Trash
    /// first. Returns how many messages were moved.
    pub fn delete_folder(&self, user: &str, folder: &str) -> Result<usize, StoreError> {
        check_name("mailbox", user)?;
        if folders::is_system(folder) {
            return Err(FolderProblem::System.into());
        }
        let mut w = self.writer.lock().map_err(|_| StoreError::Poisoned)?;
        let live = self.user_folders(user)?;
        if !live.iter().any(|f| f.id == folder) {
            return Err(FolderProblem::NoSuchFolder.into());
        }
        let by_id: HashMap<&str, &UserFolder> = live.iter().map(|f| (f.id.as_str(), f)).collect();
        let doomed: Vec<&str> = live
            .iter()
            .map(|f| f.id.as_str())
            .filter(|id| *id == folder || ancestors(&by_id, id).any(|a| a == folder))
            .collect();
        let mut moved = 0;
        for f in &doomed {
            for id in self.folder_message_ids(user, f)? {
                self.apply_local(&mut w, |_| Op::Move {
                    message: id,
                    folder: TRASH.to_string(),
                })?;
                moved += 1;
            }
        }
        for f in doomed {
            self.apply_local(&mut w, |_| Op::DeleteFolder {
                mailbox: user.to_string(),
                folder: f.to_string(),
            })?;
        }
        // The moves and deletes become durable here, together.
        self.db.flush()?;
        Ok(moved)
    }

    /// Every message id listed in a folder.
    pub(crate) fn folder_message_ids(
        &self,
        user: &str,
        folder: &str,
    ) -> Result<Vec<MessageId>, StoreError> {
        let mut ids = Vec::new();
        let prefix = folder_prefix(user, folder);
        for entry in self.trees.folders.scan_prefix(&prefix) {
            let (key, _) = entry?;
            ids.push(super::listing::listed_id(&prefix, &key)?);
        }
        Ok(ids)
    }

    /// Moves `user`'s messages `ids` to `folder`; ids that are not theirs
    /// (or gone) are skipped. Returns how many moved.
    pub fn move_messages(
        &self,
        user: &str,
        ids: &[MessageId],
        folder: &str,
    ) -> Result<usize, StoreError> {
        if !self.folder_exists(user, folder)? {
            return Err(FolderProblem::NoSuchFolder.into());
        }
        self.batch(user, ids, |w, id, rec| {
            if rec.folder == folder {
                return Ok(false);
            }
            self.apply_local(w, |_| Op::Move {
                message: id.clone(),
                folder: folder.to_string(),
            })?;
            Ok(true)
        })
    }

    /// Sets or clears `flag` on `user`'s messages `ids`; logs nothing for a
    /// message whose flag already has that value.
    pub fn set_flags(
        &self,
        user: &str,
        ids: &[MessageId],
        flag: Flag,
        value: bool,
    ) -> Result<usize, StoreError> {
        self.batch(user, ids, |w, id, _| {
            let now = self.flags(id)?.is_some_and(|f| f.get(flag));
            if now == value {
                return Ok(false);
            }
            self.apply_local(w, |_| Op::SetFlag {
                message: id.clone(),
                flag,
                value,
            })?;
            Ok(true)
        })
    }

    /// Sets or clears one flag of one message.
    pub fn set_flag(
        &self,
        user: &str,
        id: &MessageId,
        flag: Flag,
        value: bool,
    ) -> Result<(), StoreError> {
        self.owned(user, id)?;
        self.set_flags(user, std::slice::from_ref(id), flag, value)
            .map(|_| ())
    }

    /// Deletes `user`'s messages `ids` for good.
    pub fn expunge_messages(&self, user: &str, ids: &[MessageId]) -> Result<usize, StoreError> {
        self.batch(user, ids, |w, id, _| {
            self.apply_local(w, |_| Op::Expunge {
                message: id.clone(),
            })?;
            Ok(true)
        })
    }

    /// "Delete" as the webmail means it: a message goes to Trash, or, when
    /// it is in Trash already, is deleted for good. Returns (moved to
    /// Trash, deleted for good).
    pub fn delete_messages(
        &self,
        user: &str,
        ids: &[MessageId],
    ) -> Result<(usize, usize), StoreError> {
        let (mut trashed, mut gone) = (0, 0);
        self.batch(user, ids, |w, id, rec| {
            if rec.folder == TRASH {
                self.apply_local(w, |_| Op::Expunge {
                    message: id.clone(),
                })?;
                gone += 1;
            } else {
                self.apply_local(w, |_| Op::Move {
                    message: id.clone(),
                    folder: TRASH.to_string(),
                })?;
                trashed += 1;
            }
            Ok(true)
        })?;
        Ok((trashed, gone))
    }

    /// Runs `each` for every id that is `user`'s, under one writer lock,
    /// then flushes once. `each` says whether it changed something.
    fn batch(
        &self,
        user: &str,
        ids: &[MessageId],
        mut each: impl FnMut(
            &mut OpWriter,
            &MessageId,
            &state::MessageRecord,
        ) -> Result<bool, StoreError>,
    ) -> Result<usize, StoreError> {
        check_name("mailbox", user)?;
        let mut w = self.writer.lock().map_err(|_| StoreError::Poisoned)?;
        let mut changed = 0;
        for id in ids {
            let Some(rec) = self.record(id)?.filter(|r| r.mailbox == user) else {
                continue;
            };
            if each(&mut w, id, &rec)? {
                changed += 1;
            }
        }
        // Every change of the batch becomes durable here.
        self.db.flush()?;
        Ok(changed)
    }
}

/// The ids above `id`, nearest first; stops at a cycle or a missing parent.
fn ancestors<'a>(
    by_id: &'a HashMap<&'a str, &'a UserFolder>,
    id: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    let mut seen = vec![id];
    let mut at = by_id.get(id).and_then(|f| f.parent.as_deref());
    std::iter::from_fn(move || {
        let here = at?;
        if seen.contains(&here) || !by_id.contains_key(here) {
            return None;
        }
        seen.push(here);
        at = by_id.get(here).and_then(|f| f.parent.as_deref());
        Some(here)
    })
}

/// Depth of `id` (a top-level folder is 1).
fn depth(by_id: &HashMap<&str, &UserFolder>, id: &str) -> usize {
    1 + ancestors(by_id, id).count()
}

/// Levels in the subtree under (and including) `id`.
fn subtree_height(live: &[UserFolder], id: &str) -> usize {
    let by_id: HashMap<&str, &UserFolder> = live.iter().map(|f| (f.id.as_str(), f)).collect();
    live.iter()
        .filter_map(|f| {
            if f.id == id {
                return Some(1);
            }
            ancestors(&by_id, &f.id)
                .position(|a| a == id)
                .map(|n| n + 2)
        })
        .max()
        .unwrap_or(1)
}

/// Is there a folder under `parent` named `name` (case-insensitively),
/// other than `except`? System folder names are taken at the top level.
fn sibling_named(
    live: &[UserFolder],
    parent: Option<&str>,
    name: &str,
    except: Option<&str>,
) -> bool {
    let lower = name.to_lowercase();
    if parent.is_none() && SYSTEM_FOLDERS.iter().any(|s| s.to_lowercase() == lower) {
        return true;
    }
    live.iter().any(|f| {
        f.parent.as_deref() == parent
            && Some(f.id.as_str()) != except
            && f.name.to_lowercase() == lower
    })
}
