//! The list grouped by conversation: per folder, one entry per
//! conversation, keyed by its newest message in that folder. The
//! per-folder side of `threads.rs` (which lists conversations across
//! folders).
//!
//! Owns three derived trees, written by `listing::place`/`unplace` (so in
//! the op's transaction, on both nodes, from local and replicated ops):
//! - `thread_heads`: `mailbox \0 folder \0 !ts id` (the head's `folders`
//!   key, so the same order as the arrival listing) -> the root hash (8
//!   bytes), or empty for a message that is its own conversation (no
//!   root, or a delivery to more than `threads::THREAD_TARGETS_MAX`
//!   mailboxes, which `threads` does not index);
//! - `thread_members`: `mailbox \0 folder \0 root hash !ts id` -> empty,
//!   every threaded message under its folder and conversation, newest
//!   first;
//! - `thread_tips`: `mailbox \0 folder \0 root hash` -> the head's
//!   `thread_heads` key; and `mailbox \0 folder` (one NUL: never a tip
//!   key) -> the folder's number of conversations (8 bytes, big-endian).
//!
//! Sled transactions cannot scan, and a plain read inside one would
//! deadlock on sled's concurrency lock, so when an op may take a head out
//! of its folder, `plan` reads, before the transaction (under the
//! store's writer lock, like `folders::affected`), the first members of
//! each conversation the op touches: if an op takes r messages out of a
//! conversation's folder, its new head is among the first r + 1 members.
//!
//! **Invariant:** each (mailbox, folder, conversation) with a message has
//! exactly one head, its newest member (by the listing's order); the
//! count is the number of heads; fsck checks all three trees and repairs
//! them, and a store made before this index existed builds it at open.

use std::collections::HashMap;

use sled::IVec;

use super::id::MessageId;
use super::listing::{listed_id, page_of_keys};
use super::message_rows::{self, MessageRecord};
use super::op::Op;
use super::state::{folder_entry_key, folder_prefix, stats_key, Trees, Tx, TxResult};
use super::threads;
use super::{MessageSummary, Store, StoreError};

/// `meta` key: the three trees were built from the messages.
const BUILT: &[u8] = b"thread_heads_built";

/// For each conversation prefix the op may take messages out of, its
/// first members (`thread_members` keys), newest first, read before the
/// transaction.
#[derive(Default, Debug)]
pub struct HeadPlan {
    candidates: HashMap<Vec<u8>, Vec<IVec>>,
}

/// The root hash of a threaded message.
fn root_hash(rec: &MessageRecord) -> Option<[u8; 8]> {
    let root = rec.summary.thread.as_deref().filter(|_| rec.threaded)?;
    Some(threads::root_hash(root))
}

/// `mailbox \0 folder \0 root hash`: a conversation's members in a folder
/// (and its `thread_tips` key).
fn group_prefix(mailbox: &str, folder: &str, hash: &[u8; 8]) -> Vec<u8> {
    let mut k = folder_prefix(mailbox, folder);
    k.extend_from_slice(hash);
    k
}

/// The `thread_members` key of a message; `head_key` is its
/// `folder_entry_key`.
fn member_key(rec: &MessageRecord, hash: &[u8; 8], head_key: &[u8]) -> Vec<u8> {
    let mut k = group_prefix(&rec.mailbox, &rec.folder, hash);
    k.extend_from_slice(&head_key[folder_prefix(&rec.mailbox, &rec.folder).len()..]);
    k
}

/// The `thread_heads` key of the member `member` of `group`.
fn head_of_member(folder: &[u8], group: &[u8], member: &[u8]) -> Vec<u8> {
    let mut k = folder.to_vec();
    k.extend_from_slice(&member[group.len()..]);
    k
}

fn bump_count(tx: &Tx, mailbox: &str, folder: &str, by: i64) -> TxResult<()> {
    let key = stats_key(mailbox, folder);
    let now = decode_count(tx.thread_tips.get(&key)?.as_deref());
    // An empty folder has no count (what fsck derives, too).
    match now.saturating_add_signed(by) {
        0 => tx.thread_tips.remove(key)?,
        next => tx.thread_tips.insert(key, &next.to_be_bytes())?,
    };
    Ok(())
}

fn decode_count(v: Option<&[u8]>) -> u64 {
    v.and_then(|v| <[u8; 8]>::try_from(v).ok())
        .map_or(0, u64::from_be_bytes)
}

/// The message entered its folder (`listing::place`).
pub fn tx_place(tx: &Tx, id: &MessageId, rec: &MessageRecord) -> TxResult<()> {
    let head = folder_entry_key(rec, id);
    let Some(hash) = root_hash(rec) else {
        tx.thread_heads.insert(head, &[] as &[u8])?;
        return bump_count(tx, &rec.mailbox, &rec.folder, 1);
    };
    let group = group_prefix(&rec.mailbox, &rec.folder, &hash);
    tx.thread_members
        .insert(member_key(rec, &hash, &head), &[] as &[u8])?;
    match tx.thread_tips.get(&group)? {
        None => {
            bump_count(tx, &rec.mailbox, &rec.folder, 1)?;
        }
        // Keys sort newest first: a smaller key is a newer message.
        Some(current) if head[..] < current[..] => {
            tx.thread_heads.remove(current)?;
        }
        Some(_) => return Ok(()),
    }
    tx.thread_heads.insert(head.as_slice(), &hash)?;
    tx.thread_tips.insert(group, head)?;
    Ok(())
}

/// The message left its folder (`listing::unplace`): if it was its
/// conversation's head there, the next newest member (from `tx.plan`)
/// takes its place.
pub fn tx_unplace(tx: &Tx, id: &MessageId, rec: &MessageRecord) -> TxResult<()> {
    let head = folder_entry_key(rec, id);
    let Some(hash) = root_hash(rec) else {
        tx.thread_heads.remove(head)?;
        return bump_count(tx, &rec.mailbox, &rec.folder, -1);
    };
    let group = group_prefix(&rec.mailbox, &rec.folder, &hash);
    let member = member_key(rec, &hash, &head);
    tx.thread_members.remove(member.as_slice())?;
    if tx.thread_tips.get(&group)?.as_deref() != Some(&head[..]) {
        return Ok(());
    }
    tx.thread_heads.remove(head.as_slice())?;
    let mut next = None;
    for candidate in tx.plan.candidates.get(&group).into_iter().flatten() {
        if candidate[..] != member[..] && tx.thread_members.get(candidate)?.is_some() {
            next = Some(candidate);
            break;
        }
    }
    match next {
        Some(member) => {
            let folder = folder_prefix(&rec.mailbox, &rec.folder);
            let new_head = head_of_member(&folder, &group, member);
            tx.thread_heads.insert(new_head.as_slice(), &hash)?;
            tx.thread_tips.insert(group, new_head)?;
        }
        None => {
            tx.thread_tips.remove(group)?;
            bump_count(tx, &rec.mailbox, &rec.folder, -1)?;
        }
    }
    Ok(())
}

/// Reads, before `op`'s transaction, what `tx_unplace` may need: for
/// every conversation (in its current folder) of the messages the op may
/// take out of a folder, its first r + 1 members, r being how many of
/// them the op names. `affected` are the folder op's messages.
pub fn plan(trees: &Trees, op: &Op, affected: &[MessageId]) -> Result<HeadPlan, StoreError> {
    let single;
    let replaced;
    let ids: &[MessageId] = match op {
        Op::Move { message, .. } | Op::Expunge { message } => {
            single = [message.clone()];
            &single
        }
        // A delivery may replace copies of the same accepted message.
        Op::Deliver {
            targets,
            queue_ref: Some(queue_ref),
            ..
        } => {
            replaced = super::queue_refs::claimed(trees, queue_ref, targets)?;
            &replaced
        }
        _ => affected,
    };
    let mut taken: HashMap<Vec<u8>, usize> = HashMap::new();
    for id in ids {
        let Some(rec) = message_rows::read(&trees.messages, &trees.deliveries, id)? else {
            continue;
        };
        if let Some(hash) = root_hash(&rec) {
            *taken
                .entry(group_prefix(&rec.mailbox, &rec.folder, &hash))
                .or_default() += 1;
        }
    }
    let mut plan = HeadPlan::default();
    for (group, r) in taken {
        let mut members = Vec::with_capacity(r + 1);
        for entry in trees.thread_members.scan_prefix(&group).take(r + 1) {
            members.push(entry?.0);
        }
        plan.candidates.insert(group, members);
    }
    Ok(plan)
}

/// What the messages say the three trees hold (fsck, and the build at
/// open), added to message by message.
#[derive(Default)]
pub struct ExpectedHeads {
    pub heads: HashMap<Vec<u8>, Vec<u8>>,
    pub members: HashMap<Vec<u8>, Vec<u8>>,
    pub tips: HashMap<Vec<u8>, Vec<u8>>,
}

impl ExpectedHeads {
    pub fn add(&mut self, id: &MessageId, rec: &MessageRecord) {
        let head = folder_entry_key(rec, id);
        let count_key = stats_key(&rec.mailbox, &rec.folder);
        let Some(hash) = root_hash(rec) else {
            self.heads.insert(head, Vec::new());
            self.bump(count_key);
            return;
        };
        self.members
            .insert(member_key(rec, &hash, &head), Vec::new());
        let group = group_prefix(&rec.mailbox, &rec.folder, &hash);
        match self.tips.get(&group) {
            None => self.bump(count_key),
            Some(current) if head < *current => {
                self.heads.remove(current);
            }
            Some(_) => return,
        }
        self.heads.insert(head.clone(), hash.to_vec());
        self.tips.insert(group, head);
    }

    fn bump(&mut self, count_key: Vec<u8>) {
        let entry = self
            .tips
            .entry(count_key)
            .or_insert_with(|| 0u64.to_be_bytes().to_vec());
        let n = decode_count(Some(entry)).saturating_add(1);
        *entry = n.to_be_bytes().to_vec();
    }
}

/// Builds the trees from the messages if this store never had them (a
/// store made before the grouped list existed). Run at open, before any
/// op is applied.
pub fn build_if_new(trees: &Trees) -> Result<(), StoreError> {
    if trees.meta.contains_key(BUILT)? {
        return Ok(());
    }
    let mut e = ExpectedHeads::default();
    for entry in message_rows::all(&trees.messages, &trees.deliveries) {
        let (id, rec) = entry?;
        e.add(&id, &rec);
    }
    for (tree, want) in [
        (&trees.thread_heads, &e.heads),
        (&trees.thread_members, &e.members),
        (&trees.thread_tips, &e.tips),
    ] {
        tree.clear()?;
        let mut batch = sled::Batch::default();
        for (k, v) in want {
            batch.insert(k.as_slice(), v.as_slice());
        }
        tree.apply_batch(batch)?;
    }
    trees.meta.insert(BUILT, &[1u8])?;
    Ok(())
}

/// One row of the list grouped by conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConversationRow {
    /// The conversation's newest message in the folder.
    pub newest: MessageSummary,
    /// Its messages in this folder (at most `threads::MAX_LISTED`).
    pub in_folder: usize,
    /// Some message of it in this folder is unread.
    pub unread: bool,
}

/// One page of a folder's conversations, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConversationPage {
    pub rows: Vec<ConversationRow>,
    /// Conversations in the whole folder.
    pub total: usize,
}

impl Store {
    /// One page of `folder`'s conversations, ordered by their newest
    /// message (newest first, or oldest first when not `descending`).
    /// Costs what a page of the arrival listing costs, plus one walk of
    /// at most `threads::MAX_LISTED` member keys and flags per row.
    pub fn list_conversations(
        &self,
        user: &str,
        folder: &str,
        descending: bool,
        offset: usize,
        limit: usize,
    ) -> Result<ConversationPage, StoreError> {
        super::op::check_name("mailbox", user)?;
        super::op::check_name("folder", folder)?;
        let count_key = stats_key(user, folder);
        let total = decode_count(self.trees.thread_tips.get(count_key)?.as_deref());
        let total = usize::try_from(total).unwrap_or(usize::MAX);
        let prefix = folder_prefix(user, folder);
        let keys = page_of_keys(
            &self.trees.thread_heads,
            &prefix,
            !descending,
            total,
            offset,
            limit,
        )?;
        let mut rows = Vec::with_capacity(keys.len());
        for key in keys {
            let newest = listed_id(&prefix, &key)?;
            let Some(rec) = self.record(&newest)? else {
                continue;
            };
            let newest = self.summary(newest, &rec)?;
            let (in_folder, unread) = match self.trees.thread_heads.get(&key)?.as_deref() {
                Some(hash) if hash.len() == 8 => {
                    let mut group = prefix.clone();
                    group.extend_from_slice(hash);
                    let (mut n, mut unread) = (0, false);
                    for entry in self
                        .trees
                        .thread_members
                        .scan_prefix(&group)
                        .take(threads::MAX_LISTED)
                    {
                        let id = listed_id(&group, &entry?.0)?;
                        n += 1;
                        unread = unread || !self.flags(&id)?.is_some_and(|f| f.seen);
                    }
                    (n.max(1), unread)
                }
                _ => (1, !newest.seen),
            };
            rows.push(ConversationRow {
                newest,
                in_folder,
                unread,
            });
        }
        Ok(ConversationPage { rows, total })
    }
}

impl Store {
    /// The messages now in `folder` of the conversation of `member`, a
    /// message of that folder (itself included), newest first, at most
    /// `limit`: what an action on a row of the grouped list applies to.
    /// Empty when `member` is not `user`'s, is unknown, or is not in
    /// `folder` (so a key from another mailbox or folder reaches nothing).
    /// A message outside the index is its own conversation.
    pub fn conversation_members(
        &self,
        user: &str,
        folder: &str,
        member: &MessageId,
        limit: usize,
    ) -> Result<Vec<MessageId>, StoreError> {
        super::op::check_name("mailbox", user)?;
        super::op::check_name("folder", folder)?;
        let here = |r: &MessageRecord| r.mailbox == user && r.folder == folder;
        let Some(rec) = self.record(member)?.filter(here) else {
            return Ok(Vec::new());
        };
        let Some(hash) = root_hash(&rec) else {
            return Ok(vec![member.clone()].into_iter().take(limit).collect());
        };
        let group = group_prefix(user, folder, &hash);
        let mut out = Vec::new();
        for entry in self.trees.thread_members.scan_prefix(&group) {
            if out.len() >= limit {
                break;
            }
            let id = listed_id(&group, &entry?.0)?;
            // Same 8-byte hash, other root: another conversation.
            if let Some(other) = self.record(&id)? {
                if other.summary.thread == rec.summary.thread {
                    out.push(id);
                }
            }
        }
        Ok(out)
    }
}
