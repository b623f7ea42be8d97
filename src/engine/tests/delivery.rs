//! Delivery out of the queue over the real LMTP server, and recovery of
//! mail left in the spool.
//!
//! Reads untrusted input: no (tests only).

use std::sync::Arc;

use super::{config, publish_directory, queued_id, wait_for, TestEngine};
use crate::directory::snapshot::SnapshotWatcher;
use crate::engine::queue::{
    self, Envelope, QueueId, QueueWorker, Recipient, RecipientState, Spool,
};
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
    assert!(
        text.starts_with("Return-Path: <bob@example.org>\r\nReceived: from client.example.org"),
        "{text}"
    );
    assert!(
        text.ends_with("Subject: to the store\r\n\r\nhi\r\n"),
        "{text}"
    );
    wait_for("the queue to empty", || engine.queued_files() == 0);
}

#[test]
fn worker_recovers_spooled_mail_and_keeps_what_it_cannot_deliver() {
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
    let spool = Arc::new(Spool::open(&config.spool_dir()).unwrap());
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
    };
    spool.accept(&id, &envelope, b"hi\r\n").unwrap();

    let recovered = Spool::open(&config.spool_dir()).unwrap().recover().unwrap();
    assert_eq!(recovered.len(), 1);
    let (_keep_sender, rx) = smol::channel::unbounded();
    let directory = Arc::new(SnapshotWatcher::new(config.directory_snapshot()));
    let worker = QueueWorker::new(config.clone(), directory, spool.clone(), rx, recovered);
    std::thread::spawn(move || smol::block_on(worker.run()));

    wait_for("local delivery", || {
        !store.stored.lock().unwrap().is_empty()
    });
    let json_path = config.spool_dir().join("queue").join(format!("{id}.json"));
    let read =
        || -> Envelope { serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap() };
    wait_for("the envelope update", || {
        read().recipients[0].state == RecipientState::Delivered
    });
    let envelope = read();
    assert_eq!(envelope.recipients[1].state, RecipientState::Failed);
    let remote = &envelope.recipients[2];
    assert_eq!(
        remote.state,
        RecipientState::Pending,
        "remote mail is kept, not dropped"
    );
    assert!(remote
        .last_error
        .as_deref()
        .unwrap_or("")
        .contains("not implemented yet"));
    assert!(spool.message_path(&id).exists());
}
