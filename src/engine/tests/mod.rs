//! Engine tests over real loopback sockets: a real engine from a real
//! configuration, a raw client, a temporary spool, and (for delivery) the
//! real LMTP server in front of a fake store. This file holds the shared
//! set-up; `smtp_session.rs` drives the SMTP ports, `delivery.rs` the queue.
//!
//! Reads untrusted input: no (tests only).

mod delivery;
mod smtp_session;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::test_support::RawClient;
use super::*;
use crate::directory::password::hash_password;
use crate::directory::snapshot::{DirectorySnapshot, SnapshotUser};

pub(super) fn config(dir: &Path, lmtp_target: SocketAddr) -> Config {
    let text = format!(
        "[node]\nname = \"node-a\"\nhostname = \"mx.campus.test\"\ndata_dir = \"{}\"\n\
         [engine]\nsmtp_listen = \"127.0.0.1:0\"\nsubmission_listen = \"127.0.0.1:0\"\n\
         submissions_listen = \"127.0.0.1:0\"\nlmtp_target = \"{lmtp_target}\"\n\
         max_message_bytes = 100000\n[queue]\nretry_initial = \"1s\"\n\
         [routing]\nnameservers = [\"127.0.0.1:9\"]\n",
        dir.display()
    );
    Config::from_text(&dir.join("appliance.toml"), &text).unwrap()
}

pub(super) fn publish_directory(config: &Config) {
    let mut s = DirectorySnapshot::default();
    s.domains.insert("campus.test".into());
    for (name, enabled) in [("alice", true), ("old", false)] {
        let user = SnapshotUser {
            password_hash: hash_password(&format!("{name}-password")).unwrap(),
            enabled,
        };
        s.users.insert(format!("{name}@campus.test"), user);
    }
    s.publish(&config.directory_snapshot()).unwrap();
}

/// A port with nothing listening: the mailbox role is "down".
pub(super) fn dead_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

pub(super) struct TestEngine {
    _dir: tempfile::TempDir,
    pub(super) config: Arc<Config>,
    pub(super) handle: EngineHandle,
}

impl TestEngine {
    pub(super) fn start(lmtp_target: SocketAddr, tune: impl FnOnce(&mut Config)) -> TestEngine {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dir.path(), lmtp_target);
        tune(&mut config);
        publish_directory(&config);
        crate::tls::ensure_certificate(&config).unwrap();
        let tls = crate::tls::server_config(&config).unwrap();
        let config = Arc::new(config);
        let directory = Arc::new(SnapshotWatcher::new(config.directory_snapshot()));
        let handle = start(EngineContext {
            config: config.clone(),
            directory,
            tls,
        })
        .unwrap();
        TestEngine {
            _dir: dir,
            config,
            handle,
        }
    }

    /// The message bytes of queued message `id`, as the spool keeps them.
    pub(super) fn queued_message(&self, id: &str) -> String {
        let spool = crate::engine::queue::spool::Spool::open(&self.config.spool_dir()).unwrap();
        let id = crate::engine::queue::id::QueueId::parse(id).unwrap();
        String::from_utf8(spool.read_message(&id).unwrap()).unwrap()
    }

    /// The envelope of queued message `id`, as the spool reads it back.
    pub(super) fn queued_envelope(&self, id: &str) -> crate::engine::queue::envelope::Envelope {
        let spool = crate::engine::queue::spool::Spool::open(&self.config.spool_dir()).unwrap();
        spool
            .list()
            .unwrap()
            .into_iter()
            .find(|e| e.id == id)
            .unwrap()
    }

    pub(super) fn queue_dir(&self) -> PathBuf {
        self.config.spool_dir().join("queue")
    }

    /// Queued messages' files and envelope rewrites in `queue/` (outcome
    /// logs come and go during delivery attempts and are not counted).
    pub(super) fn queued_files(&self) -> usize {
        std::fs::read_dir(self.queue_dir())
            .unwrap()
            .flatten()
            .filter(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.ends_with(".msg") || name.ends_with(".json")
            })
            .count()
    }

    pub(super) fn client(&self, addr: SocketAddr) -> RawClient {
        let mut c = RawClient::connect(addr);
        assert_eq!(c.reply().0, 220);
        c
    }
}

pub(super) fn queued_id(reply: &(u16, Vec<String>)) -> String {
    assert_eq!(reply.0, 250, "{reply:?}");
    reply.1[0].rsplit(' ').next().unwrap().to_string()
}

pub(super) fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
