//! The small last-writer-wins records that travel in the op log beside the
//! mail: webmail logins (R6, login history) and directory records (users,
//! aliases, domains). Both live in the `records` tree; see `state.rs` for
//! the key layout. Applied inside the op's transaction by `state::apply`.

use serde::{Deserialize, Serialize};

use super::hlc::HlcTimestamp;
use super::id::OpId;
use super::op::ReplicationOp;
use super::state::{abort, encode, tx_decode, Tx, TxResult};

/// A webmail login, as the newest-login record and the history keep it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginRecord {
    pub user: String,
    pub ip: String,
    pub at: i64,
    pub ts: HlcTimestamp,
    pub op: OpId,
}

pub fn login_latest_key(user: &str) -> Vec<u8> {
    let mut k = b"login\0".to_vec();
    k.extend_from_slice(user.as_bytes());
    k.extend_from_slice(b"\0L");
    k
}

pub fn login_history_prefix(user: &str) -> Vec<u8> {
    let mut k = b"login\0".to_vec();
    k.extend_from_slice(user.as_bytes());
    k.extend_from_slice(b"\0H");
    k
}

pub(super) fn apply_login(
    tx: &Tx,
    op: &ReplicationOp,
    user: &str,
    ip: &str,
    at: i64,
) -> TxResult<()> {
    let rec = LoginRecord {
        user: user.to_string(),
        ip: ip.to_string(),
        at,
        ts: op.ts,
        op: op.id.clone(),
    };
    let value = encode(&rec).or_else(abort)?;
    let mut history = login_history_prefix(user);
    history.extend(op.ts.to_be_bytes().iter().map(|b| !b));
    history.extend_from_slice(&op.id.log_key());
    tx.records.insert(history, value.as_slice())?;
    let latest = login_latest_key(user);
    let newer = match tx.records.get(&latest)? {
        Some(v) => {
            let old: LoginRecord = tx_decode(&v)?;
            (old.ts, &old.op) < (op.ts, &op.id)
        }
        None => true,
    };
    if newer {
        tx.records.insert(latest, value)?;
    }
    Ok(())
}

/// One record of the directory (users, aliases, domains, admins) as the
/// log carries it: its value (None = removed), and who wrote it last.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryRecord {
    pub value: Option<String>,
    pub ts: HlcTimestamp,
    pub op: OpId,
}

pub fn directory_key(tree: &str, key: &str) -> Vec<u8> {
    let mut k = b"dir\0".to_vec();
    k.extend_from_slice(tree.as_bytes());
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k
}

/// Last writer (HLC timestamp, then op id) wins, per record.
pub(super) fn apply_directory(
    tx: &Tx,
    op: &ReplicationOp,
    tree: &str,
    key: &str,
    value: Option<&str>,
) -> TxResult<()> {
    let k = directory_key(tree, key);
    if let Some(v) = tx.records.get(&k)? {
        let old: DirectoryRecord = tx_decode(&v)?;
        if (old.ts, &old.op) >= (op.ts, &op.id) {
            return Ok(());
        }
    }
    let rec = DirectoryRecord {
        value: value.map(str::to_string),
        ts: op.ts,
        op: op.id.clone(),
    };
    tx.records.insert(k, encode(&rec).or_else(abort)?)?;
    Ok(())
}
