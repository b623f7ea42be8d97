//! The directory's side of the pair: its records (domains, users, aliases,
//! users' settings and address books, classes, the console's appliance settings) as (tree, key, value)
//! text, a watch on every change, and applying a record that won in the
//! store's log (see `store::directory_log` and `mailbox::directory_sync`).
//!
//! Invariant: `apply_replicated` writes exactly the log's winner and does
//! not publish the engine snapshot itself (a burst of replicated changes,
//! e.g. 30,000 imported students, would publish it 30,000 times); the
//! caller publishes once the burst is over.

use super::{Directory, DirectoryError};

/// The trees that travel between the nodes. Console admin accounts stay
/// per node for now: each node makes its own on first start, and letting
/// the later one overwrite the other would silently change the first
/// node's admin password when the second one starts.
pub const TREES: [&str; 8] = [
    "domains",
    "users",
    "aliases",
    "settings",
    "classes",
    "appliance",
    "contacts",
    "vacation_replies",
];

impl Directory {
    fn tree(&self, name: &str) -> Option<&sled::Tree> {
        match name {
            "domains" => Some(&self.domains),
            "users" => Some(&self.users),
            "aliases" => Some(&self.aliases),
            "classes" => Some(&self.classes),
            "admins" => Some(&self.admins),
            "settings" => Some(&self.settings),
            "appliance" => Some(&self.appliance),
            "contacts" => Some(&self.contacts),
            "vacation_replies" => Some(&self.vacation_replies),
            _ => None,
        }
    }

    /// Every record as (tree, key, value) text.
    pub fn records(&self) -> Result<Vec<(&'static str, String, String)>, DirectoryError> {
        let mut out = Vec::new();
        for name in TREES {
            let Some(tree) = self.tree(name) else {
                continue;
            };
            for item in tree.iter() {
                let (k, v) = item?;
                out.push((
                    name,
                    String::from_utf8_lossy(&k).into_owned(),
                    String::from_utf8_lossy(&v).into_owned(),
                ));
            }
        }
        Ok(out)
    }

    /// A subscriber per tree, yielding every insert and removal.
    pub fn watch(&self) -> Vec<(&'static str, sled::Subscriber)> {
        TREES
            .iter()
            .filter_map(|name| self.tree(name).map(|t| (*name, t.watch_prefix(Vec::new()))))
            .collect()
    }

    /// Writes (or, with None, removes) a record that won in the log.
    /// Flushed; the snapshot is published by the caller (`publish`).
    pub fn apply_replicated(
        &self,
        tree: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), DirectoryError> {
        let t = self
            .tree(tree)
            .ok_or_else(|| DirectoryError::BadValue(format!("unknown directory tree {tree}")))?;
        let _one = self.writes.lock().map_err(|_| DirectoryError::Poisoned)?;
        match value {
            Some(v) => t.insert(key.as_bytes(), v.as_bytes())?,
            None => t.remove(key.as_bytes())?,
        };
        self.db.flush()?;
        Ok(())
    }
}
