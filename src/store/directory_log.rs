//! The directory (users, aliases, domains, admins) in the op log, so both
//! nodes of a pair end with the same users and settings (R3).
//!
//! The directory keeps its own database; this module only carries its
//! records: `record_directory` logs a local change (unless the log already
//! says the same, which is how a change that came from the peer is not sent
//! back), and `directory_value` tells what the log's winner is, for the
//! directory to apply. Last writer (HLC timestamp, then op id) wins per
//! record: two admins changing the same user at once end with one of the
//! two versions on both nodes.

use super::op::{Op, DIRECTORY_TREES};
use super::records::{self, DirectoryRecord};
use super::state;
use super::{Store, StoreError};

/// The start of every directory record's key (`records::directory_key`).
const DIRECTORY_PREFIX: &[u8] = b"dir\0";

/// One directory record of the log: tree, key, value (None: removed).
pub type DirectoryEntry = (String, String, Option<String>);

impl Store {
    /// Logs `value` (None = removed) for `tree`/`key` unless that is what
    /// the log holds already. Returns whether an op was logged.
    pub fn record_directory(
        &self,
        tree: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<bool, StoreError> {
        if !DIRECTORY_TREES.contains(&tree) {
            return Err(StoreError::InvalidOp(format!("directory tree {tree:?}")));
        }
        if self
            .directory_value(tree, key)?
            .as_ref()
            .map(Option::as_deref)
            == Some(value)
        {
            return Ok(false);
        }
        if value.is_none() && self.directory_value(tree, key)?.is_none() {
            return Ok(false);
        }
        self.log_local(|_| Op::Directory {
            tree: tree.to_string(),
            key: key.to_string(),
            value: value.map(str::to_string),
        })?;
        Ok(true)
    }

    /// Every directory record the log holds, as (tree, key, winner; None
    /// when removed), in key order.
    pub fn directory_log(&self) -> Result<Vec<DirectoryEntry>, StoreError> {
        let mut out = Vec::new();
        for entry in self.trees.records.scan_prefix(DIRECTORY_PREFIX) {
            let (k, v) = entry?;
            let rest = &k[4..];
            let split = rest
                .iter()
                .position(|b| *b == 0)
                .ok_or_else(|| StoreError::Corrupt("directory record key".into()))?;
            let text = |b: &[u8]| {
                String::from_utf8(b.to_vec())
                    .map_err(|_| StoreError::Corrupt("directory record key is not text".into()))
            };
            let record: DirectoryRecord = state::decode(&v)?;
            out.push((
                text(&rest[..split])?,
                text(&rest[split + 1..])?,
                record.value,
            ));
        }
        Ok(out)
    }

    /// What the log says `tree`/`key` is: None if the log never carried
    /// it, Some(None) if it was removed, Some(Some(value)) otherwise.
    pub fn directory_value(
        &self,
        tree: &str,
        key: &str,
    ) -> Result<Option<Option<String>>, StoreError> {
        Ok(self
            .trees
            .records
            .get(records::directory_key(tree, key))?
            .map(|v| state::decode::<DirectoryRecord>(&v))
            .transpose()?
            .map(|r| r.value))
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{Store, StoreError};

    #[test]
    fn directory_records_converge_and_echoes_are_not_logged() -> Result<(), StoreError> {
        let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
        let a = Store::open(da.path(), "node-a")?;
        let b = Store::open(db.path(), "node-b")?;
        assert!(a.record_directory("users", "kim@x", Some("{\"v\":1}"))?);
        assert!(!a.record_directory("users", "kim@x", Some("{\"v\":1}"))?);
        assert!(b.record_directory("users", "kim@x", Some("{\"v\":2}"))?);
        for (from, to) in [(&a, &b), (&b, &a)] {
            for origin in from.origins()? {
                for op in from.ops_since(&origin, to.last_seq(&origin)?, 10)? {
                    to.apply_remote(&op)?;
                }
            }
        }
        let winner = a.directory_value("users", "kim@x")?;
        assert_eq!(
            a.directory_log()?,
            vec![(
                "users".to_string(),
                "kim@x".to_string(),
                Some("{\"v\":2}".to_string())
            )]
        );
        assert_eq!(winner, b.directory_value("users", "kim@x")?);
        assert_eq!(winner, Some(Some("{\"v\":2}".to_string())));
        // The winner's value applied to B's directory is not logged again.
        assert!(!b.record_directory("users", "kim@x", Some("{\"v\":2}"))?);
        assert!(a.record_directory("users", "kim@x", None)?);
        assert_eq!(a.directory_value("users", "kim@x")?, Some(None));
        assert!(a.record_directory("groups", "x", None).is_err());
        Ok(())
    }
}
