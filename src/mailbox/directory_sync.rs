//! Keeps the directory and the store's log in step on a paired node, so
//! users, aliases and domains created on either node exist on both.
//!
//! - At start, on a node just seeded from the peer's snapshot over its own
//!   earlier history (its disk was replaced): the directory first takes
//!   every record where the log differs, since the log is what the pair
//!   agreed on and a kept copy of `directory.db` may be older (the peer
//!   changed users while this node was down; those changes came in the
//!   snapshot, not as ops this module sees).
//! - At start: every directory record the log does not already say is
//!   logged (changes made with the CLI while the appliance was stopped, or
//!   made before the node was paired); records only the log knows (won on
//!   the peer, not yet written here) are written to the directory.
//! - While running: a watch on the directory logs each change; a record
//!   that came from the peer is what the log says already, so it is not
//!   logged again (no echo).
//! - A directory op from the peer: the log's winner for that record is
//!   written to the directory; the engine's snapshot is published once the
//!   burst of changes is over (checked every 300 ms). A user disabled or
//!   deleted on the peer also loses their webmail session here.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::directory::{Directory, UserRecord};
use crate::replication::Replication;
use crate::store::{Op, Store};
use crate::web::session::SessionStore;

pub fn start(
    directory: Arc<Directory>,
    store: Arc<Store>,
    rep: &Replication,
    sessions: Arc<SessionStore>,
) -> std::io::Result<()> {
    // Watch first, so nothing changed during the first pass is missed.
    let watches = directory.watch();
    if rep.seeded_over_own_history() {
        adopt_log(&directory, &store);
    }
    first_pass(&directory, &store);
    for (tree, subscriber) in watches {
        let store = store.clone();
        std::thread::Builder::new()
            .name(format!("dir-watch-{tree}"))
            .spawn(move || {
                for event in subscriber {
                    let (key, value) = match &event {
                        sled::Event::Insert { key, value } => {
                            (String::from_utf8_lossy(key).into_owned(), Some(String::from_utf8_lossy(value).into_owned()))
                        }
                        sled::Event::Remove { key } => (String::from_utf8_lossy(key).into_owned(), None),
                    };
                    if let Err(e) = store.record_directory(tree, &key, value.as_deref()) {
                        tracing::error!(error = %e, %tree, %key, "directory change not logged for the peer");
                    }
                }
            })?;
    }
    let dirty = Arc::new(AtomicBool::new(false));
    let (d, s, flag) = (directory.clone(), store.clone(), dirty.clone());
    rep.on_remote_op(Box::new(move |op| {
        if let Op::Directory { tree, key, .. } = &op.op {
            match s.directory_value(tree, key) {
                Ok(Some(winner)) => match d.apply_replicated(tree, key, winner.as_deref()) {
                    Ok(()) => {
                        flag.store(true, Ordering::Relaxed);
                        // Disabled or deleted on the peer: no session here
                        // may go on reading the mail either.
                        if ends_sessions(tree, winner.as_deref()) {
                            sessions.end_all_sessions_of(key);
                        }
                    }
                    Err(e) => tracing::error!(error = %e, %tree, %key, "replicated directory change not applied"),
                },
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "reading the directory log failed"),
            }
        }
    }));
    std::thread::Builder::new()
        .name("dir-publish".into())
        .spawn(move || loop {
            std::thread::sleep(Duration::from_millis(300));
            if dirty.swap(false, Ordering::Relaxed) {
                if let Err(e) = directory.publish() {
                    tracing::error!(error = %e, "directory snapshot not published");
                }
            }
        })?;
    Ok(())
}

/// True when a user record that won in the log (None: removed) means the
/// user's webmail sessions on this node must end: deleted or disabled.
fn ends_sessions(tree: &str, winner: Option<&str>) -> bool {
    tree == "users"
        && match winner {
            None => true,
            Some(value) => serde_json::from_str::<UserRecord>(value).is_ok_and(|u| !u.enabled),
        }
}

/// Writes every record of the log into the directory where they differ
/// (see the module comment), then publishes the engine's snapshot.
fn adopt_log(directory: &Directory, store: &Store) {
    let (log, local) = match (store.directory_log(), directory.records()) {
        (Ok(log), Ok(local)) => (log, local),
        (Err(e), _) => {
            tracing::error!(error = %e, "cannot read the directory log after seeding");
            return;
        }
        (_, Err(e)) => {
            tracing::error!(error = %e, "cannot read the directory after seeding");
            return;
        }
    };
    let local: std::collections::HashMap<(&str, String), String> = local
        .into_iter()
        .map(|(tree, key, value)| ((tree, key), value))
        .collect();
    let mut written = 0;
    for (tree, key, winner) in log {
        let here = local.get(&(tree.as_str(), key.clone())).map(String::as_str);
        if here == winner.as_deref() {
            continue;
        }
        match directory.apply_replicated(&tree, &key, winner.as_deref()) {
            Ok(()) => written += 1,
            Err(e) => {
                tracing::error!(error = %e, %tree, %key, "directory record from the snapshot not applied")
            }
        }
    }
    if written > 0 {
        tracing::info!(
            records = written,
            "directory records taken from the peer's snapshot"
        );
        if let Err(e) = directory.publish() {
            tracing::error!(error = %e, "directory snapshot not published");
        }
    }
}

fn first_pass(directory: &Directory, store: &Store) {
    let records = match directory.records() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the directory for the pair");
            return;
        }
    };
    let mut logged = 0;
    for (tree, key, value) in records {
        match store.record_directory(tree, &key, Some(&value)) {
            Ok(true) => logged += 1,
            Ok(false) => {}
            Err(e) => tracing::error!(error = %e, %tree, %key, "directory record not logged"),
        }
    }
    if logged > 0 {
        tracing::info!(records = logged, "directory records logged for the peer");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_disabled_or_deleted_on_the_peer_ends_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let d = Directory::open(&dir.path().join("db"), &dir.path().join("s.json")).unwrap();
        d.add_domain("campus.test").unwrap();
        d.add_user("kim@campus.test", "long-password").unwrap();
        let value = |d: &Directory| {
            serde_json::to_string(&d.user("kim@campus.test").unwrap().unwrap()).unwrap()
        };
        assert!(!ends_sessions("users", Some(&value(&d))));
        d.set_enabled("kim@campus.test", false).unwrap();
        assert!(ends_sessions("users", Some(&value(&d))));
        assert!(ends_sessions("users", None));
        assert!(!ends_sessions("aliases", None));
        assert!(!ends_sessions("classes", None));
    }

    /// A tree the directory replicates must be one the log accepts, or its
    /// changes would fail to log (and never reach the peer).
    #[test]
    fn the_log_accepts_every_replicated_directory_tree() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store"), "node-a").unwrap();
        for tree in crate::directory::replicated::TREES {
            assert!(
                store.record_directory(tree, "key", Some("{}")).unwrap(),
                "{tree}"
            );
        }
    }
}
