//! Delivery out of the queue over the real LMTP server, and recovery of
//! mail left in the spool.
//!
//! Reads untrusted input: no (tests only).

use std::sync::Arc;

use super::{config, publish_directory, queued_id, wait_for, TestEngine};
use crate::directory::snapshot::SnapshotWatcher;
use crate::engine::queue::{self, Envelope, QueueId, QueueLane, Recipient, RecipientState, Spool};
use crate::engine::test_support::FakeStore;
use crate::mailbox::lmtp;

#[test]
fn accepted_mail_is_delivered_over_lmtp_and_leaves_the_queue() {
    let store = Arc::new(FakeStore::default());
    let lmtp = lmtp::start(
        "127.0.0.1:0".parse().unwrap(),
        "mbox.campus.test".into(),
        store.clone(),
    )
    .unwrap();
    let engine = TestEngine::start(lmtp.local_addr(), |_| {});
    let mut c = engine.client(engine.handle.smtp_addr());
    c.command("EHLO client.example.org");
    c.command("MAIL FROM:<bob@example.org>");
    assert_eq!(c.command("RCPT TO:<alice@campus.test>").0, 250);
    c.command("DATA");
    c.send_raw(b"Subject: to the store\r\n\r\nhi\r\n.\r\n");
    queued_id(&c.reply());
    wait_for("delivery", || !store.stored.lock().unwrap().is_empty());
    let stored = store.stored.lock().unwrap()[0].clone();
    assert_eq!(stored.0, "alice@campus.test");
    let text = String::from_utf8(stored.1).unwrap();
    // Return-Path from the LMTP server, then the engine's verdict and trace.
    assert!(
        text.starts_with(
            "Return-Path: <bob@example.org>\r\nAuthentication-Results: mx.campus.test;"
        ),
        "{text}"
    );
    assert!(
        text.contains("\r\nReceived: from client.example.org"),
        "{text}"
    );
    assert!(
        text.ends_with("Subject: to the store\r\n\r\nhi\r\n"),
        "{text}"
    );
    wait_for("the queue to empty", || engine.queued_files() == 0);
}

#[test]
fn recovered_mail_is_delivered_failed_recipients_bounce_and_remote_ones_wait() {
    // Mail left in the spool by an engine that died (e.g. SIGKILL).
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FakeStore::default());
    let lmtp = lmtp::start(
        "127.0.0.1:0".parse().unwrap(),
        "mbox.campus.test".into(),
        store.clone(),
    )
    .unwrap();
    let config = Arc::new(config(dir.path(), lmtp.local_addr()));
    publish_directory(&config);
    let spool = Spool::open(&config.spool_dir()).unwrap();
    let id = QueueId::generate();
    let now = queue::unix_now();
    let recipients = [
        "alice@campus.test",
        "nobody@campus.test",
        "friend@elsewhere.test",
    ];
    let envelope = Envelope {
        id: id.to_string(),
        sender: "bob@example.org".into(),
        recipients: recipients
            .iter()
            .map(|r| Recipient::new(r.to_string(), now))
            .collect(),
        arrived_at: now,
        size: 4,
        body_8bit: false,
        smtputf8: false,
        authenticated: Some("bob@example.org".into()),
        lane: QueueLane::Normal,
        held: false,
        delay_notified: false,
    };
    spool
        .accept(&id, &envelope, b"Subject: hi\r\n\r\nhi\r\n")
        .unwrap();

    crate::tls::ensure_certificate(&config).unwrap();
    let engine = crate::engine::start(crate::engine::EngineContext {
        config: config.clone(),
        directory: Arc::new(SnapshotWatcher::new(config.directory_snapshot())),
        tls: crate::tls::server_config(&config).unwrap(),
    })
    .unwrap();

    wait_for("local delivery", || {
        !store.stored.lock().unwrap().is_empty()
    });
    let scheduler = engine.scheduler().clone();
    let find = |id: &str| scheduler.snapshot().into_iter().find(|e| e.id == id);
    wait_for("the attempt to be recorded", || {
        find(id.as_str()).is_some_and(|e| e.recipients[2].attempts > 0)
    });
    let envelope = find(id.as_str()).unwrap();
    assert_eq!(envelope.recipients[0].state, RecipientState::Delivered);
    assert_eq!(envelope.recipients[1].state, RecipientState::Failed);
    let remote = &envelope.recipients[2];
    assert_eq!(
        remote.state,
        RecipientState::Pending,
        "remote mail is kept, not dropped"
    );
    assert!(
        remote.last_error.as_deref().unwrap_or("").contains("DNS"),
        "{remote:?}"
    );
    assert!(spool.message_path(&id).exists());

    // The sender is told about the unknown recipient, from the null sender.
    let bounce = scheduler
        .snapshot()
        .into_iter()
        .find(|e| e.sender.is_empty())
        .expect("a DSN in the queue");
    assert_eq!(bounce.recipients[0].address, "bob@example.org");
    let dsn = String::from_utf8_lossy(
        &spool
            .read_message(&QueueId::parse(&bounce.id).unwrap())
            .unwrap(),
    )
    .into_owned();
    assert!(dsn.contains("nobody@campus.test"), "{dsn}");
    assert!(dsn.contains("multipart/report"), "{dsn}");
}
