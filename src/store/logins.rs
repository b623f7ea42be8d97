//! Webmail logins in the op log: each login is an op, so it reaches the
//! peer like any change, and the newest one (last writer wins by HLC
//! timestamp, then op id) says which session may live (R6). The history
//! feeds the user's "login history" page.

use super::op::{check_name, Op};
use super::records::{self, LoginRecord};
use super::state;
use super::{HlcTimestamp, OpId, ReplicationOp, Store, StoreError};

/// Where a login stands among all logins: later stamps win.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LoginStamp {
    pub ts: HlcTimestamp,
    pub op: OpId,
}

impl LoginStamp {
    pub fn of(op: &ReplicationOp) -> LoginStamp {
        LoginStamp {
            ts: op.ts,
            op: op.id.clone(),
        }
    }
}

impl Store {
    /// Records a login of `user` from `ip` at `at` (unix seconds). Returns
    /// the login's place in the order of all logins (HLC timestamp, op id),
    /// which a replicated login is compared with.
    pub fn record_login(&self, user: &str, ip: &str, at: i64) -> Result<LoginStamp, StoreError> {
        check_name("user", user)?;
        if ip.parse::<std::net::IpAddr>().is_err() {
            return Err(StoreError::InvalidOp(format!("login from {ip:?}")));
        }
        let mut w = self.writer.lock().map_err(|_| StoreError::Poisoned)?;
        let id = OpId {
            origin: self.node.clone(),
            seq: w.next_seq,
        };
        self.apply_local(&mut w, |_| Op::Login {
            user: user.to_string(),
            ip: ip.to_string(),
            at,
        })?;
        self.db.flush()?;
        let logged = self
            .trees
            .oplog
            .get(id.log_key())?
            .ok_or_else(|| StoreError::Corrupt("a login op vanished".into()))?;
        let op = ReplicationOp::decode(&logged)?;
        Ok(LoginStamp {
            ts: op.ts,
            op: op.id,
        })
    }

    /// The newest login of `user` on either node.
    pub fn last_login(&self, user: &str) -> Result<Option<LoginRecord>, StoreError> {
        self.trees
            .records
            .get(records::login_latest_key(user))?
            .map(|v| state::decode(&v))
            .transpose()
    }

    /// Up to `limit` logins of `user`, newest first.
    pub fn login_history(&self, user: &str, limit: usize) -> Result<Vec<LoginRecord>, StoreError> {
        self.trees
            .records
            .scan_prefix(records::login_history_prefix(user))
            .take(limit)
            .map(|entry| state::decode(&entry?.1))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{Store, StoreError};

    #[test]
    fn the_newest_login_wins_whatever_order_they_arrive_in() -> Result<(), StoreError> {
        let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
        let a = Store::open(da.path(), "node-a")?;
        let b = Store::open(db.path(), "node-b")?;
        a.record_login("kim@x", "192.0.2.1", 100)?;
        // B logs in after it has seen A's login: its login orders later
        // (HLC), whatever the two wall clocks say.
        for op in a.ops_since("node-a", 0, 10)? {
            b.apply_remote(&op)?;
        }
        b.record_login("kim@x", "198.51.100.7", 105)?;
        for (from, to) in [(&a, &b), (&b, &a)] {
            for origin in from.origins()? {
                for op in from.ops_since(&origin, to.last_seq(&origin)?, 10)? {
                    to.apply_remote(&op)?;
                }
            }
        }
        for s in [&a, &b] {
            let last = s.last_login("kim@x")?.ok_or(StoreError::NoSuchMessage)?;
            assert_eq!(last.ip, "198.51.100.7");
            let history = s.login_history("kim@x", 10)?;
            assert_eq!(history.len(), 2);
            assert_eq!(history[0].ip, "198.51.100.7");
        }
        assert!(a.record_login("kim@x", "not an ip", 1).is_err());
        Ok(())
    }
}
