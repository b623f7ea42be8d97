//! Server-side webmail sessions, one live session per user (R6, R8).
//!
//! Owns: the in-memory session table of this node. The browser holds only a
//! random 256-bit token in the `cm_session` cookie; the table is keyed by the
//! token's BLAKE3 hash, so the table itself never holds a usable token.
//!
//! Invariants:
//! - At most one live session per user: `login` ends the user's other
//!   session and leaves an "ended elsewhere" notice with the new login's
//!   time and IP, shown once when the ended cookie comes back.
//! - A session idle longer than the configured time is ended on its next use
//!   or by the periodic sweep, and reported once as `Expired`.
//! - Notices are kept at most `NOTICE_KEEP_SECS`, so the table stays bounded
//!   by the logins of about a day.
//!
//! Across the pair: every login is also an op in the store's log; when the
//! peer's login arrives, `end_sessions_before` ends the session here exactly
//! as a local login would (unless the session here is newer).
//!
//! Reads untrusted input: the cookie token (checked for shape, then hashed).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};

use super::csrf;
use crate::store::LoginStamp;

/// Name of the session cookie.
pub const COOKIE: &str = "cm_session";
/// How long an ended or expired session's notice is kept.
pub const NOTICE_KEEP_SECS: i64 = 24 * 60 * 60;
/// Least seconds between two sweeps of the table.
const SWEEP_EVERY_SECS: i64 = 60;

type TokenHash = [u8; 32];

/// A live session, as handlers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Normalized mail address of the user.
    pub user: String,
    /// The login's place among all logins of the pair (None if the store
    /// could not record it); a replicated login ends this session only if
    /// it is later.
    pub stamp: Option<LoginStamp>,
    /// Token every form of this session must carry.
    pub csrf_token: String,
    pub created_at: i64,
    pub ip: IpAddr,
}

/// A login, as the event that ends a user's other sessions (and, later, the
/// record replicated to the peer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginEvent {
    pub user: String,
    pub at: i64,
    pub ip: IpAddr,
    /// Set for a login replicated from the peer.
    pub stamp: Option<LoginStamp>,
}

/// What a cookie's token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionLookup {
    Active(Session),
    /// Ended because the same user logged in at `at` from `ip`.
    EndedElsewhere {
        at: i64,
        ip: IpAddr,
    },
    /// Ended after too long without use.
    Expired,
    /// Never issued, logged out, or forgotten.
    Unknown,
}

#[derive(Debug, Clone, Copy)]
enum EndReason {
    Elsewhere { at: i64, ip: IpAddr },
    Expired,
}

#[derive(Debug)]
struct LiveSession {
    session: Session,
    last_seen: i64,
}

#[derive(Debug, Default)]
struct Table {
    live: HashMap<TokenHash, LiveSession>,
    by_user: HashMap<String, TokenHash>,
    ended: HashMap<TokenHash, (EndReason, i64)>,
    last_sweep: i64,
}

/// The session table of this node.
#[derive(Debug)]
pub struct SessionStore {
    table: Mutex<Table>,
    idle_secs: i64,
}

impl SessionStore {
    pub fn new(idle_minutes: u64) -> SessionStore {
        SessionStore {
            table: Mutex::new(Table::default()),
            idle_secs: i64::try_from(idle_minutes.saturating_mul(60)).unwrap_or(i64::MAX),
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        // A panic while holding the lock cannot leave the maps half-updated
        // in a way that matters more than losing sessions; carry on.
        self.table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts a session for `user`, ending their other sessions. Returns the
    /// cookie token and the session.
    pub fn login(&self, user: &str, ip: IpAddr, now: i64) -> (String, Session) {
        self.login_stamped(user, ip, now, None)
    }

    /// `login`, with the login's stamp from the store's log.
    pub fn login_stamped(
        &self,
        user: &str,
        ip: IpAddr,
        now: i64,
        stamp: Option<LoginStamp>,
    ) -> (String, Session) {
        let event = LoginEvent {
            user: user.to_string(),
            at: now,
            ip,
            stamp: None,
        };
        self.end_sessions_of(&event);
        let token = csrf::new_token();
        let session = Session {
            user: user.to_string(),
            stamp,
            csrf_token: csrf::new_token(),
            created_at: now,
            ip,
        };
        let hash = hash_token(&token);
        let mut table = self.table();
        table.live.insert(
            hash,
            LiveSession {
                session: session.clone(),
                last_seen: now,
            },
        );
        table.by_user.insert(user.to_string(), hash);
        self.sweep(&mut table, now);
        (token, session)
    }

    /// Ends every live session of `event.user`, leaving a notice that names
    /// the login's time and IP. Local logins call this; so will replication.
    pub fn end_sessions_of(&self, event: &LoginEvent) {
        let mut table = self.table();
        if let Some(hash) = table.by_user.remove(&event.user) {
            if table.live.remove(&hash).is_some() {
                let reason = EndReason::Elsewhere {
                    at: event.at,
                    ip: event.ip,
                };
                table.ended.insert(hash, (reason, event.at));
            }
        }
    }

    /// Like `end_sessions_of`, for a login made on the peer node: the live
    /// session is ended only if it started no later than that login, so a
    /// login replicated late never ends a newer session made here.
    pub fn end_sessions_before(&self, event: &LoginEvent) {
        let older = {
            let table = self.table();
            table
                .by_user
                .get(&event.user)
                .and_then(|h| table.live.get(h))
                .map(|l| match (&l.session.stamp, &event.stamp) {
                    (Some(mine), Some(theirs)) => mine < theirs,
                    _ => l.session.created_at <= event.at,
                })
        };
        if older == Some(true) {
            self.end_sessions_of(event);
        }
    }

    /// Looks up a cookie token and marks the session as used now. A notice
    /// (ended or expired) is reported once, then forgotten.
    pub fn lookup(&self, token: &str, now: i64) -> SessionLookup {
        if !well_formed(token) {
            return SessionLookup::Unknown;
        }
        let hash = hash_token(token);
        let mut table = self.table();
        self.sweep(&mut table, now);
        if let Some(live) = table.live.get_mut(&hash) {
            if now - live.last_seen <= self.idle_secs {
                live.last_seen = now;
                return SessionLookup::Active(live.session.clone());
            }
            let user = live.session.user.clone();
            table.live.remove(&hash);
            table.by_user.remove(&user);
            return SessionLookup::Expired;
        }
        match table.ended.remove(&hash) {
            Some((EndReason::Elsewhere { at, ip }, _)) => SessionLookup::EndedElsewhere { at, ip },
            Some((EndReason::Expired, _)) => SessionLookup::Expired,
            None => SessionLookup::Unknown,
        }
    }

    /// True when `token` names a live session; changes nothing, so a notice
    /// waiting for this cookie is still shown by the next `lookup`.
    pub fn is_live(&self, token: &str, now: i64) -> bool {
        if !well_formed(token) {
            return false;
        }
        let table = self.table();
        table
            .live
            .get(&hash_token(token))
            .is_some_and(|live| now - live.last_seen <= self.idle_secs)
    }

    /// Ends the session of `token` (logout); no notice is left.
    pub fn logout(&self, token: &str) {
        if !well_formed(token) {
            return;
        }
        let hash = hash_token(token);
        let mut table = self.table();
        if let Some(live) = table.live.remove(&hash) {
            if table.by_user.get(&live.session.user) == Some(&hash) {
                table.by_user.remove(&live.session.user);
            }
        }
    }

    /// Ends the live session of `user` without leaving a notice (an admin
    /// disabled the account or forced a logout); true when one was live.
    pub fn end_all_sessions_of(&self, user: &str) -> bool {
        let mut table = self.table();
        match table.by_user.remove(user) {
            Some(hash) => table.live.remove(&hash).is_some(),
            None => false,
        }
    }

    /// Number of live sessions (for metrics and tests).
    pub fn live_count(&self) -> usize {
        self.table().live.len()
    }

    /// Moves idle sessions to notices and drops old notices, at most once a
    /// minute so lookups stay cheap.
    fn sweep(&self, table: &mut Table, now: i64) {
        if now - table.last_sweep < SWEEP_EVERY_SECS {
            return;
        }
        table.last_sweep = now;
        let idle: Vec<(TokenHash, String)> = table
            .live
            .iter()
            .filter(|(_, live)| now - live.last_seen > self.idle_secs)
            .map(|(hash, live)| (*hash, live.session.user.clone()))
            .collect();
        for (hash, user) in idle {
            table.live.remove(&hash);
            table.by_user.remove(&user);
            table.ended.insert(hash, (EndReason::Expired, now));
        }
        table
            .ended
            .retain(|_, (_, since)| now - *since <= NOTICE_KEEP_SECS);
    }
}

/// Our tokens are exactly 43 base64url characters; anything else is not one.
fn well_formed(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

fn hash_token(token: &str) -> TokenHash {
    *blake3::hash(token.as_bytes()).as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn login_then_lookup() {
        let store = SessionStore::new(60);
        let (token, session) = store.login("hong@example.ac.kr", ip(1), 1000);
        assert_eq!(
            store.lookup(&token, 1010),
            SessionLookup::Active(session.clone())
        );
        assert_eq!(session.user, "hong@example.ac.kr");
        assert_ne!(session.csrf_token, token);
        assert_eq!(
            store.lookup(&csrf::new_token(), 1010),
            SessionLookup::Unknown
        );
        assert_eq!(store.lookup("short", 1010), SessionLookup::Unknown);
    }

    #[test]
    fn one_live_session_per_user_and_a_notice_with_time_and_ip() {
        let store = SessionStore::new(60);
        let (first, _) = store.login("hong@example.ac.kr", ip(1), 1000);
        let (other_user, _) = store.login("kim@example.ac.kr", ip(3), 1001);
        let (second, _) = store.login("hong@example.ac.kr", ip(2), 2000);
        assert_eq!(store.live_count(), 2);
        // Peeking does not use up the notice.
        assert!(!store.is_live(&first, 2001));
        assert!(store.is_live(&second, 2001));
        assert_eq!(
            store.lookup(&first, 2001),
            SessionLookup::EndedElsewhere {
                at: 2000,
                ip: ip(2)
            }
        );
        // The notice is shown once.
        assert_eq!(store.lookup(&first, 2002), SessionLookup::Unknown);
        assert!(matches!(
            store.lookup(&second, 2003),
            SessionLookup::Active(_)
        ));
        assert!(matches!(
            store.lookup(&other_user, 2003),
            SessionLookup::Active(_)
        ));
    }

    #[test]
    fn a_replicated_login_ends_only_older_sessions() {
        use crate::store::{HlcTimestamp, OpId};
        let stamp = |ms, origin: &str| LoginStamp {
            ts: HlcTimestamp { ms, logical: 0 },
            op: OpId {
                origin: origin.into(),
                seq: 1,
            },
        };
        let store = SessionStore::new(60);
        let user = "hong@example.ac.kr";
        let (token, _) = store.login_stamped(user, ip(1), 1000, Some(stamp(5_000, "node-a")));
        // An older login from the peer, arriving late, in the same second.
        let late = LoginEvent {
            user: user.into(),
            at: 1000,
            ip: ip(9),
            stamp: Some(stamp(4_000, "node-b")),
        };
        store.end_sessions_before(&late);
        assert!(matches!(
            store.lookup(&token, 1001),
            SessionLookup::Active(_)
        ));
        // A newer one ends it.
        let newer = LoginEvent {
            stamp: Some(stamp(6_000, "node-b")),
            ..late
        };
        store.end_sessions_before(&newer);
        assert!(matches!(
            store.lookup(&token, 1002),
            SessionLookup::EndedElsewhere { .. }
        ));
    }

    #[test]
    fn a_replicated_login_ends_local_sessions() {
        let store = SessionStore::new(60);
        let (token, _) = store.login("hong@example.ac.kr", ip(1), 1000);
        store.end_sessions_of(&LoginEvent {
            user: "hong@example.ac.kr".into(),
            at: 1500,
            ip: ip(9),
            stamp: None,
        });
        assert_eq!(
            store.lookup(&token, 1501),
            SessionLookup::EndedElsewhere {
                at: 1500,
                ip: ip(9)
            }
        );
        assert_eq!(store.live_count(), 0);
    }

    #[test]
    fn idle_sessions_expire_and_use_keeps_them_alive() {
        let store = SessionStore::new(10); // 600 seconds
        let (busy, _) = store.login("hong@example.ac.kr", ip(1), 1000);
        let (idle, _) = store.login("kim@example.ac.kr", ip(2), 1000);
        assert!(matches!(
            store.lookup(&busy, 1500),
            SessionLookup::Active(_)
        ));
        assert!(matches!(
            store.lookup(&busy, 2000),
            SessionLookup::Active(_)
        ));
        assert_eq!(store.lookup(&idle, 1601), SessionLookup::Expired);
        assert_eq!(store.lookup(&idle, 1602), SessionLookup::Unknown);
    }

    #[test]
    fn the_sweep_turns_idle_sessions_into_notices_and_forgets_old_ones() {
        let store = SessionStore::new(1);
        let (token, _) = store.login("hong@example.ac.kr", ip(1), 1000);
        // Another user's activity sweeps the table.
        store.login("kim@example.ac.kr", ip(2), 1100);
        assert_eq!(store.live_count(), 1);
        assert_eq!(store.lookup(&token, 1200), SessionLookup::Expired);

        let (old, _) = store.login("park@example.ac.kr", ip(3), 2000);
        store.login("lee@example.ac.kr", ip(4), 2000 + 120);
        store.login("choi@example.ac.kr", ip(5), 2000 + NOTICE_KEEP_SECS + 500);
        assert_eq!(
            store.lookup(&old, 2000 + NOTICE_KEEP_SECS + 501),
            SessionLookup::Unknown
        );
    }

    #[test]
    fn an_admin_can_end_a_users_session() {
        let store = SessionStore::new(60);
        let (token, _) = store.login("hong@example.ac.kr", ip(1), 1000);
        let (other, _) = store.login("kim@example.ac.kr", ip(2), 1000);
        assert!(store.end_all_sessions_of("hong@example.ac.kr"));
        assert!(!store.end_all_sessions_of("hong@example.ac.kr"));
        assert_eq!(store.lookup(&token, 1001), SessionLookup::Unknown);
        assert!(matches!(
            store.lookup(&other, 1001),
            SessionLookup::Active(_)
        ));
    }

    #[test]
    fn logout_leaves_no_notice() {
        let store = SessionStore::new(60);
        let (token, _) = store.login("hong@example.ac.kr", ip(1), 1000);
        store.logout(&token);
        assert_eq!(store.lookup(&token, 1001), SessionLookup::Unknown);
        assert_eq!(store.live_count(), 0);
        // Logging in again after logout works and ends nothing.
        let (again, _) = store.login("hong@example.ac.kr", ip(1), 1002);
        assert!(matches!(
            store.lookup(&again, 1003),
            SessionLookup::Active(_)
        ));
    }
}
