//! How a message's metadata is laid out in sled: what one delivery shares
//! is stored once, what each mailbox's copy owns is a small row.
//!
//! One `Deliver` op can put the same bytes into 30,000 mailboxes (an
//! announcement to every student). The blob is stored once already; this
//! module keeps the metadata from growing by a full record per recipient:
//! - `deliveries`: the log key of the `Deliver` op (`origin \0 seq BE`) ->
//!   [`DeliveryRow`]: blob id, size, arrival time, HLC timestamp, header
//!   summary, and how many of its messages are still live;
//! - `messages`: message id -> [`MessageRow`]: mailbox, folder, which
//!   target of its delivery it is, the last move, the folder it waits for.
//!
//! Rows are written as one version byte (`ROW_V1`) and then postcard (a
//! compact, non-self-describing serde format), so a row is tens of bytes,
//! not hundreds. Everything else sees the assembled [`MessageRecord`].
//!
//! **Invariant:** a message row always has its delivery row; a delivery
//! row's `live` equals the number of message rows naming it, and the row
//! is removed when that reaches 0 (checked by fsck). Both change only
//! inside the op's transaction (`state.rs`).
//!
//! Untrusted input: none directly; rows are only ever written here, but a
//! damaged row is reported as `Corrupt`, never a panic.

use serde::{Deserialize, Serialize};
use sled::transaction::TransactionalTree;

use super::blob::BlobId;
use super::hlc::HlcTimestamp;
use super::id::{MessageId, OpId};
use super::op::SummaryFields;
use super::state::{abort, TxResult};
use super::StoreError;

/// First byte of every row written by this version.
const ROW_V1: u8 = 1;

/// A delivered message as the rest of the store sees it: its own row
/// joined with its delivery's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageRecord {
    pub mailbox: String,
    pub folder: String,
    pub blob: BlobId,
    pub size: u64,
    pub received_at: i64,
    /// HLC timestamp of the delivering op (the folder sort key).
    pub ts: HlcTimestamp,
    pub summary: SummaryFields,
    /// (timestamp, op) of the last `Move`; None = where it was delivered.
    pub moved: Option<(HlcTimestamp, OpId)>,
    /// The user folder the last `Deliver`/`Move` asked for while that
    /// folder is not known here yet (the message is in INBOX meanwhile).
    pub wanted: Option<String>,
    /// Which target of its `Deliver` op the message is (its sequence
    /// number minus the op's).
    pub target: u32,
    /// Listed in its mailbox's conversation index (`threads.rs`).
    pub threaded: bool,
}

/// What every message of one delivery shares.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct DeliveryRow {
    blob: [u8; 32],
    size: u64,
    received_at: i64,
    ts: HlcTimestamp,
    from: String,
    subject: String,
    date: Option<i64>,
    thread: Option<String>,
    /// Its messages are in their mailboxes' conversation index.
    threaded: bool,
    /// Message rows that name this delivery.
    live: u64,
}

/// What one mailbox's copy owns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct MessageRow {
    mailbox: String,
    folder: String,
    target: u32,
    moved: Option<(HlcTimestamp, OpId)>,
    wanted: Option<String>,
}

fn to_row<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![ROW_V1];
    let body = postcard::to_allocvec(value)
        .map_err(|e| StoreError::Corrupt(format!("encoding a row: {e}")))?;
    out.extend_from_slice(&body);
    Ok(out)
}

fn from_row<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &str) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&ROW_V1, body)) => {
            postcard::from_bytes(body).map_err(|e| StoreError::Corrupt(format!("{what} row: {e}")))
        }
        _ => Err(StoreError::Corrupt(format!(
            "{what} row of an unknown version"
        ))),
    }
}

/// The `deliveries` key of the delivery that made message `id`, whose row
/// says it is target `target` of it.
fn delivery_key_of(id: &MessageId, target: u32) -> Result<Vec<u8>, StoreError> {
    let op = id.op_id()?;
    let seq = op
        .seq
        .checked_sub(u64::from(target))
        .ok_or_else(|| StoreError::Corrupt(format!("message {id}: target {target}")))?;
    Ok(OpId {
        origin: op.origin,
        seq,
    }
    .log_key())
}

fn assemble(row: MessageRow, delivery: DeliveryRow) -> MessageRecord {
    MessageRecord {
        mailbox: row.mailbox,
        folder: row.folder,
        blob: BlobId(delivery.blob),
        size: delivery.size,
        received_at: delivery.received_at,
        ts: delivery.ts,
        summary: SummaryFields {
            from: delivery.from,
            subject: delivery.subject,
            date: delivery.date,
            thread: delivery.thread,
        },
        moved: row.moved,
        wanted: row.wanted,
        target: row.target,
        threaded: delivery.threaded,
    }
}

fn row_of(rec: &MessageRecord) -> MessageRow {
    MessageRow {
        mailbox: rec.mailbox.clone(),
        folder: rec.folder.clone(),
        target: rec.target,
        moved: rec.moved.clone(),
        wanted: rec.wanted.clone(),
    }
}

/// The message `id` from the live trees (outside a transaction).
pub fn read(
    messages: &sled::Tree,
    deliveries: &sled::Tree,
    id: &MessageId,
) -> Result<Option<MessageRecord>, StoreError> {
    let Some(row) = messages.get(id.as_bytes())? else {
        return Ok(None);
    };
    let row: MessageRow = from_row(&row, "message")?;
    let key = delivery_key_of(id, row.target)?;
    let delivery = deliveries
        .get(key)?
        .ok_or_else(|| StoreError::Corrupt(format!("message {id} has no delivery record")))?;
    Ok(Some(assemble(row, from_row(&delivery, "delivery")?)))
}

/// The message `id`, inside a transaction.
pub fn tx_read(
    messages: &TransactionalTree,
    deliveries: &TransactionalTree,
    id: &MessageId,
) -> TxResult<Option<MessageRecord>> {
    let Some(row) = messages.get(id.as_bytes())? else {
        return Ok(None);
    };
    let row: MessageRow = from_row(&row, "message").or_else(abort)?;
    let key = delivery_key_of(id, row.target).or_else(abort)?;
    let Some(delivery) = deliveries.get(key)? else {
        return abort(StoreError::Corrupt(format!(
            "message {id} has no delivery record"
        )));
    };
    let delivery = from_row(&delivery, "delivery").or_else(abort)?;
    Ok(Some(assemble(row, delivery)))
}

/// Writes a new message: its row, and its delivery's (made on the first
/// target, counted up on every one).
pub fn tx_insert(
    messages: &TransactionalTree,
    deliveries: &TransactionalTree,
    id: &MessageId,
    rec: &MessageRecord,
) -> TxResult<()> {
    let key = delivery_key_of(id, rec.target).or_else(abort)?;
    let delivery = match deliveries.get(&key)? {
        Some(v) => {
            let mut d: DeliveryRow = from_row(&v, "delivery").or_else(abort)?;
            d.live = d.live.saturating_add(1);
            d
        }
        None => DeliveryRow {
            blob: rec.blob.0,
            size: rec.size,
            received_at: rec.received_at,
            ts: rec.ts,
            from: rec.summary.from.clone(),
            subject: rec.summary.subject.clone(),
            date: rec.summary.date,
            thread: rec.summary.thread.clone(),
            threaded: rec.threaded,
            live: 1,
        },
    };
    deliveries.insert(key, to_row(&delivery).or_else(abort)?)?;
    messages.insert(id.as_bytes(), to_row(&row_of(rec)).or_else(abort)?)?;
    Ok(())
}

/// Rewrites what a message owns (folder, move, waiting folder) after a
/// move; the delivery's shared fields never change.
pub fn tx_update(
    messages: &TransactionalTree,
    id: &MessageId,
    rec: &MessageRecord,
) -> TxResult<()> {
    messages.insert(id.as_bytes(), to_row(&row_of(rec)).or_else(abort)?)?;
    Ok(())
}

/// Removes message `id`; its delivery's row goes with its last message.
/// Returns what was removed.
pub fn tx_remove(
    messages: &TransactionalTree,
    deliveries: &TransactionalTree,
    id: &MessageId,
) -> TxResult<Option<MessageRecord>> {
    let Some(rec) = tx_read(messages, deliveries, id)? else {
        return Ok(None);
    };
    messages.remove(id.as_bytes())?;
    let key = delivery_key_of(id, rec.target).or_else(abort)?;
    if let Some(v) = deliveries.get(&key)? {
        let mut d: DeliveryRow = from_row(&v, "delivery").or_else(abort)?;
        d.live = d.live.saturating_sub(1);
        if d.live == 0 {
            deliveries.remove(key)?;
        } else {
            deliveries.insert(key, to_row(&d).or_else(abort)?)?;
        }
    }
    Ok(Some(rec))
}

/// Every message with its id, in id order (fsck, digest, backfills).
pub fn all<'a>(
    messages: &'a sled::Tree,
    deliveries: &'a sled::Tree,
) -> impl Iterator<Item = Result<(MessageId, MessageRecord), StoreError>> + 'a {
    messages.iter().map(move |entry| {
        let (key, value) = entry?;
        let id: MessageId = std::str::from_utf8(&key)
            .map_err(|_| StoreError::Corrupt("message key".into()))?
            .parse()?;
        let row: MessageRow = from_row(&value, "message")?;
        let dkey = delivery_key_of(&id, row.target)?;
        let delivery = deliveries
            .get(dkey)?
            .ok_or_else(|| StoreError::Corrupt(format!("message {id} has no delivery record")))?;
        Ok((id, assemble(row, from_row(&delivery, "delivery")?)))
    })
}

/// (delivery key, live count) of every delivery row (fsck).
pub fn delivery_counts(
    deliveries: &sled::Tree,
) -> impl Iterator<Item = Result<(Vec<u8>, u64), StoreError>> + '_ {
    deliveries.iter().map(|entry| {
        let (key, value) = entry?;
        let d: DeliveryRow = from_row(&value, "delivery")?;
        Ok((key.to_vec(), d.live))
    })
}

/// How many messages of the delivery with log key `key` are live (0 when
/// it has no row).
pub fn live_count(deliveries: &sled::Tree, key: &[u8]) -> Result<u64, StoreError> {
    match deliveries.get(key)? {
        Some(v) => Ok(from_row::<DeliveryRow>(&v, "delivery")?.live),
        None => Ok(0),
    }
}

/// The delivery key a message's row names (fsck's expected counts).
pub fn delivery_key(id: &MessageId, rec: &MessageRecord) -> Result<Vec<u8>, StoreError> {
    delivery_key_of(id, rec.target)
}

/// Sets a delivery row's live count (fsck `--repair`); removes the row at
/// 0. Outside a transaction: fsck repairs run with the writer lock held.
pub fn set_live(deliveries: &sled::Tree, key: &[u8], live: u64) -> Result<(), StoreError> {
    let Some(v) = deliveries.get(key)? else {
        return Ok(());
    };
    if live == 0 {
        deliveries.remove(key)?;
        return Ok(());
    }
    let mut d: DeliveryRow = from_row(&v, "delivery")?;
    d.live = live;
    deliveries.insert(key, to_row(&d)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery() -> DeliveryRow {
        DeliveryRow {
            blob: [7; 32],
            size: 20_000,
            received_at: 1_700_000_000,
            ts: HlcTimestamp {
                ms: 1_700_000_000_000,
                logical: 3,
            },
            from: "학생지원팀 <office@campus.test>".into(),
            subject: "전체 공지".into(),
            date: Some(1_700_000_000),
            thread: Some("root@campus.test".into()),
            threaded: false,
            live: 30_000,
        }
    }

    #[test]
    fn rows_round_trip_and_stay_small() -> Result<(), StoreError> {
        let row = MessageRow {
            mailbox: "s000001@campus.test".into(),
            folder: "INBOX".into(),
            target: 999,
            moved: None,
            wanted: None,
        };
        let bytes = to_row(&row)?;
        assert_eq!(from_row::<MessageRow>(&bytes, "message")?, row);
        // mailbox + folder + a few bytes of framing.
        assert!(bytes.len() <= row.mailbox.len() + row.folder.len() + 8);
        let d = delivery();
        assert_eq!(from_row::<DeliveryRow>(&to_row(&d)?, "delivery")?, d);
        Ok(())
    }

    #[test]
    fn damaged_rows_are_corrupt_not_panics() {
        for bytes in [&b""[..], &[9, 1, 2][..], &[ROW_V1][..], &[ROW_V1, 200][..]] {
            assert!(matches!(
                from_row::<MessageRow>(bytes, "message"),
                Err(StoreError::Corrupt(_))
            ));
        }
    }

    #[test]
    fn a_message_finds_its_delivery_from_its_target() -> Result<(), StoreError> {
        let id = MessageId::from_op(&OpId {
            origin: "node-a".into(),
            seq: 0x2a + 5,
        });
        let expected = OpId {
            origin: "node-a".into(),
            seq: 0x2a,
        }
        .log_key();
        assert_eq!(delivery_key_of(&id, 5)?, expected);
        assert!(delivery_key_of(&id, 1_000).is_err());
        Ok(())
    }
}
