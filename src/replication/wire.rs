//! The replication link's frames: a 4-byte big-endian length, a JSON
//! header, and for a frame that carries bytes (a blob) those bytes right
//! after, their length in the header.
//!
//! Invariant: lengths are checked against hard limits before anything is
//! allocated, so a peer (or anyone who got a TLS connection up) cannot make
//! us allocate more than one message's worth.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

use crate::store::{HlcTimestamp, ReplicationOp, VersionVector};

/// Largest JSON header (an op with a long summary is a few KB).
const MAX_HEADER: u32 = 4 * 1024 * 1024;
/// Largest blob carried (above the largest message the engine accepts).
pub const MAX_PAYLOAD: u64 = 512 * 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Frame {
    // Client to server.
    /// First frame of a paired node: who it is.
    Hello {
        node: String,
    },
    /// Stream every op of every origin past these positions, then follow.
    Pull {
        after: BTreeMap<String, u64>,
    },
    /// Instead of `Pull`, from a new or wiped node: send a snapshot of
    /// your state, then every op after it, then follow (`seeding`).
    Snapshot,
    /// What is your state's digest?
    Digest,
    /// A node without a certificate asking to join with a one-time secret.
    Join {
        secret: String,
        node: String,
        listen: String,
    },

    // Server to client.
    Welcome {
        node: String,
    },
    /// One op; `blob` = length of the blob bytes that follow, when sent;
    /// `deleted`: a delivery whose message the sender deleted already (its
    /// bytes are gone there; the receiver records a tombstone).
    Op {
        op: ReplicationOp,
        blob: Option<u64>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        deleted: bool,
    },
    /// A snapshot follows, reflecting the log up to `base`: entries, then
    /// blobs, then `SnapshotEnd`, then the ops after `base`.
    SnapshotBegin {
        base: VersionVector,
        hlc_high: HlcTimestamp,
        /// The trees it carries.
        trees: Vec<String>,
        messages: u64,
        blobs: u64,
        blob_bytes: u64,
    },
    /// `len` bytes of `tree`'s entries follow (`store::encode_entry`).
    SnapshotEntries {
        tree: String,
        len: u64,
    },
    /// A blob of `len` bytes follows; `refcount` messages name it.
    SnapshotBlob {
        refcount: u64,
        len: u64,
    },
    SnapshotEnd,
    /// Sent when idle: the server's log heads, so the client knows its lag.
    Heartbeat {
        heads: BTreeMap<String, u64>,
    },
    DigestIs {
        digest: String,
        messages: u64,
    },
    Joined {
        ca_pem: String,
        cert_pem: String,
        key_pem: String,
        node: String,
        fingerprint: String,
    },
    Refused {
        reason: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("link I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("bad frame from the peer: {0}")]
    Bad(String),
}

/// Writes `frame` and, if given, its payload. Generic over the frame type:
/// the engines' shadow link (`engine::shadow`) uses the same framing.
pub fn write<F: Serialize>(
    w: &mut impl Write,
    frame: &F,
    payload: Option<&[u8]>,
) -> Result<(), WireError> {
    let json = serde_json::to_vec(frame).map_err(|e| WireError::Bad(e.to_string()))?;
    let len = u32::try_from(json.len()).map_err(|_| WireError::Bad("frame too large".into()))?;
    w.write_all(&len.to_be_bytes())?;
    w.write_all(&json)?;
    if let Some(p) = payload {
        w.write_all(p)?;
    }
    Ok(())
}

/// Reads one frame (without its payload).
pub fn read<F: serde::de::DeserializeOwned>(r: &mut impl Read) -> Result<F, WireError> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len);
    if len > MAX_HEADER {
        return Err(WireError::Bad(format!("header of {len} bytes")));
    }
    let mut json = vec![0u8; len as usize];
    r.read_exact(&mut json)?;
    serde_json::from_slice(&json).map_err(|e| WireError::Bad(e.to_string()))
}

/// Reads a payload of `len` bytes announced by the frame before it.
pub fn read_payload(r: &mut impl Read, len: u64) -> Result<Vec<u8>, WireError> {
    if len > MAX_PAYLOAD {
        return Err(WireError::Bad(format!("payload of {len} bytes")));
    }
    let mut bytes = vec![0u8; len as usize];
    r.read_exact(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_oversized_ones_are_refused() {
        let mut buf = Vec::new();
        let frame = Frame::Hello {
            node: "node-b".into(),
        };
        write(&mut buf, &frame, Some(b"abc")).unwrap();
        let mut r = &buf[..];
        assert_eq!(read::<Frame>(&mut r).unwrap(), frame);
        assert_eq!(read_payload(&mut r, 3).unwrap(), b"abc");
        let mut huge = &(u32::MAX.to_be_bytes())[..];
        assert!(matches!(read::<Frame>(&mut huge), Err(WireError::Bad(_))));
        assert!(read_payload(&mut &b""[..], MAX_PAYLOAD + 1).is_err());
    }
}
