//! Message flags other than `\Seen`: `\Flagged` and `\Answered` (RFC 9051
//! §2.3.2), each a last-writer-wins register of its own.
//!
//! Owns: the `flagged`/`answered` stamps inside a message's `FlagsRecord`
//! (the `flags` tree). `\Seen` keeps its original fields in that record
//! (`state::apply_set_seen`), since the unseen counts follow it.
//!
//! Invariant: a flag changes only when the op's (HLC timestamp, op id) is
//! greater than the one that last wrote that same flag, so concurrent
//! changes converge whatever order they arrive in, and a change to one
//! flag never undoes another flag's.

use serde::{Deserialize, Serialize};

use super::hlc::HlcTimestamp;
use super::id::{MessageId, OpId};
use super::op::{Flag, ReplicationOp};
use super::state::{abort, encode, tx_decode, FlagsRecord, Tx, TxResult};

/// One flag's value and the (timestamp, op) that wrote it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagStamp {
    pub value: bool,
    pub ts: HlcTimestamp,
    pub op: OpId,
}

impl FlagsRecord {
    /// No flag set, and every flag older than any op.
    pub fn unset() -> FlagsRecord {
        FlagsRecord {
            seen: false,
            seen_ts: HlcTimestamp::default(),
            seen_op: OpId {
                origin: String::new(),
                seq: 0,
            },
            flagged: None,
            answered: None,
        }
    }

    /// The current value of `flag`.
    pub fn get(&self, flag: Flag) -> bool {
        match flag {
            Flag::Seen => self.seen,
            Flag::Flagged => self.flagged.as_ref().is_some_and(|s| s.value),
            Flag::Answered => self.answered.as_ref().is_some_and(|s| s.value),
        }
    }
}

/// Applies a `SetFlag` for `\Flagged` or `\Answered` (seen goes through
/// `state::apply_set_seen`). A flag op for a message not delivered here
/// yet is kept and takes effect when the message arrives, as for `\Seen`.
pub fn apply_other(
    tx: &Tx,
    op: &ReplicationOp,
    id: &MessageId,
    flag: Flag,
    value: bool,
) -> TxResult<()> {
    let mut rec = match tx.flags.get(id.as_bytes())? {
        Some(v) => tx_decode::<FlagsRecord>(&v)?,
        None => FlagsRecord::unset(),
    };
    let slot = match flag {
        Flag::Flagged => &mut rec.flagged,
        Flag::Answered => &mut rec.answered,
        Flag::Seen => return Ok(()),
    };
    if let Some(old) = slot {
        if (old.ts, &old.op) >= (op.ts, &op.id) {
            return Ok(());
        }
    }
    *slot = Some(FlagStamp {
        value,
        ts: op.ts,
        op: op.id.clone(),
    });
    tx.flags
        .insert(id.as_bytes(), encode(&rec).or_else(abort)?)?;
    Ok(())
}
