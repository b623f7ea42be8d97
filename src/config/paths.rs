//! Where each role keeps what it owns inside the data folder: one place,
//! so the CLI, the roles and the tests name the same files.

use std::path::PathBuf;

use super::Config;

impl Config {
    /// The engine's spool: accepted messages waiting for delivery.
    pub fn spool_dir(&self) -> PathBuf {
        self.node.data_dir.join("spool")
    }
    /// The mailbox role's message store.
    pub fn store_dir(&self) -> PathBuf {
        self.node.data_dir.join("store")
    }
    /// The mailbox role's own directory database.
    pub fn directory_db(&self) -> PathBuf {
        self.node.data_dir.join("directory.db")
    }
    /// The read-only directory snapshot the engine reads.
    pub fn directory_snapshot(&self) -> PathBuf {
        self.node.data_dir.join("directory.snapshot.json")
    }
    /// The owner-only control socket of the running mailbox role.
    pub fn control_socket(&self) -> PathBuf {
        self.node.data_dir.join("control.sock")
    }
    /// The owner-only store control socket of the running mailbox role.
    pub fn store_socket(&self) -> PathBuf {
        self.node.data_dir.join("store.sock")
    }
    /// The owner-only pair control socket of the running mailbox role.
    pub fn pair_socket(&self) -> PathBuf {
        self.node.data_dir.join("pair.sock")
    }
    /// DKIM keys, one folder per domain.
    pub fn dkim_dir(&self) -> PathBuf {
        self.node.data_dir.join("dkim")
    }
    /// The owner-only control socket of the running engine role.
    pub fn engine_socket(&self) -> PathBuf {
        self.node.data_dir.join("engine.sock")
    }
    /// The owner-only secret with which the mailbox role (webmail) submits
    /// mail to the engine on behalf of logged-in users (`auth::service`).
    pub fn submission_secret(&self) -> PathBuf {
        self.node.data_dir.join("submission-service.secret")
    }
}
