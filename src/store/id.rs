//! Identifiers: node names, op ids and the message ids derived from them.
//!
//! A message id is the id of the op that delivered the message, written as
//! `<origin>.<seq in lowercase hex>` (e.g. `node-a.2a`). It is unique across
//! the pair because each node only numbers its own ops, and it is URL-safe.
//!
//! Untrusted input: `MessageId::from_str` reads ids from URLs, and op ids
//! arrive from the peer. **Invariant:** `from_str` accepts exactly the
//! strings `Display` produces (no leading zeros, no upper case, no empty
//! parts), so every id has one spelling and sled keys are canonical.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::StoreError;

/// Longest node name we accept; keeps keys and URLs short.
pub const MAX_NODE_NAME: usize = 63;

/// Is `name` usable as a node name (origin of ops)? Lower-case ASCII
/// letters, digits, `-` and `.`, starting with a letter or digit.
pub fn is_valid_node_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_NODE_NAME
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'.')
}

/// Identity of one op: the node that made it and that node's sequence
/// number for it (1, 2, 3, ... with no gaps).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OpId {
    pub origin: String,
    pub seq: u64,
}

impl OpId {
    /// Key in the `oplog` tree: origin, a 0 byte (never in a node name, so
    /// one origin's keys are never a prefix-match for another's), seq BE.
    pub fn log_key(&self) -> Vec<u8> {
        let mut k = origin_prefix(&self.origin);
        k.extend_from_slice(&self.seq.to_be_bytes());
        k
    }
}

/// Prefix of every `oplog` key of `origin`.
pub fn origin_prefix(origin: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(origin.len() + 9);
    k.extend_from_slice(origin.as_bytes());
    k.push(0);
    k
}

/// Opaque, URL-safe id of a stored message.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MessageId(String);

impl MessageId {
    /// The id of the message delivered by op `op`.
    pub(crate) fn from_op(op: &OpId) -> MessageId {
        MessageId(format!("{}.{:x}", op.origin, op.seq))
    }

    /// The op id the message's id was made from: its origin and the
    /// sequence number its delivery gave it.
    pub(crate) fn op_id(&self) -> Result<OpId, StoreError> {
        let bad = || StoreError::Corrupt(format!("message id {:?}", self.0));
        let (origin, seq) = self.0.rsplit_once('.').ok_or_else(bad)?;
        let seq = u64::from_str_radix(seq, 16).map_err(|_| bad())?;
        Ok(OpId {
            origin: origin.to_string(),
            seq,
        })
    }

    /// The canonical bytes, used as sled key.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for MessageId {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || StoreError::BadMessageId(s.chars().take(80).collect());
        let (origin, seq) = s.rsplit_once('.').ok_or_else(bad)?;
        if !is_valid_node_name(origin)
            || seq.is_empty()
            || seq.len() > 16
            || seq.starts_with('0')
            || !seq
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        {
            return Err(bad());
        }
        let seq = u64::from_str_radix(seq, 16).map_err(|_| bad())?;
        Ok(MessageId::from_op(&OpId {
            origin: origin.to_string(),
            seq,
        }))
    }
}

impl TryFrom<String> for MessageId {
    type Error = StoreError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<MessageId> for String {
    fn from(id: MessageId) -> String {
        id.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_round_trips() {
        for (origin, seq) in [
            ("node-a", 1u64),
            ("b", 0x2a),
            ("mail1.campus.ac.kr", u64::MAX),
        ] {
            let id = MessageId::from_op(&OpId {
                origin: origin.into(),
                seq,
            });
            let text = id.to_string();
            assert_eq!(text.parse::<MessageId>().ok(), Some(id));
        }
        assert_eq!(
            MessageId::from_op(&OpId {
                origin: "node-a".into(),
                seq: 42
            })
            .to_string(),
            "node-a.2a"
        );
    }

    #[test]
    fn from_str_rejects_non_canonical() {
        for s in [
            "",
            ".",
            "node-a.",
            ".1",
            "node-a.02a",
            "node-a.2A",
            "Node-a.2a",
            "node-a.0",
            "node a.1",
            "node-a.1/..",
            "-a.1",
            "a.10000000000000000",
            "a.+1",
            "a.g",
            "a\u{0}.1",
            "노드.1",
            "../etc.1",
        ] {
            assert!(s.parse::<MessageId>().is_err(), "{s:?} should be rejected");
        }
    }
}
