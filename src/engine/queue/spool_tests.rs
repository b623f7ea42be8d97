//! The spool's tests (`spool.rs`): accepting, recovery and its clean-up,
//! the outcome log's replay, envelope rewrites, and reused files.

use super::super::envelope::RecipientState;
use super::*;

#[test]
fn outcome_log_is_replayed_until_a_torn_line_and_folded_into_the_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let id = QueueId::generate();
    let mut env = envelope(&id);
    env.recipients
        .push(Recipient::new("c@campus.test".into(), 5));
    spool.accept(&id, &env, b"hi\r\n").unwrap();

    let mut first = env.recipients[0].clone();
    first.delivered();
    spool.append_outcomes(&id, &[(0, first.clone())]).unwrap();
    // A crash in the middle of the next line leaves half of it.
    let mut second = env.recipients[1].clone();
    second.failed("550 5.1.1 gone".into());
    let line = serde_json::to_string(&LogLine::from(&(1, second))).unwrap();
    let mut log = OpenOptions::new()
        .append(true)
        .open(spool.log_path(&id))
        .unwrap();
    log.write_all(&line.as_bytes()[..line.len() / 2]).unwrap();

    let recovered = Spool::open(dir.path()).unwrap().recover().unwrap();
    assert_eq!(recovered[0].recipients[0], first, "logged outcome replayed");
    assert_eq!(
        recovered[0].recipients[1].state,
        RecipientState::Pending,
        "torn line ignored"
    );

    // Rewriting the envelope folds the log in and drops it.
    env.recipients[0] = first;
    spool.save_envelope(&id, &env).unwrap();
    assert!(!spool.log_path(&id).exists());
    assert_eq!(spool.list().unwrap(), vec![env]);
}

fn envelope(id: &QueueId) -> Envelope {
    Envelope {
        id: id.to_string(),
        sender: "a@x.test".into(),
        recipients: vec![Recipient::new("b@campus.test".into(), 5)],
        arrived_at: 5,
        size: 4,
        body_8bit: false,
        smtputf8: false,
        authenticated: None,
        lane: Default::default(),
        held: false,
        delay_notified: false,
    }
}

#[test]
fn accept_then_recover_then_remove() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let id = QueueId::generate();
    let mut env = envelope(&id);
    spool.accept(&id, &env, b"hi\r\n").unwrap();
    assert!(
        spool.accept(&id, &env, b"again").is_err(),
        "ids are never overwritten"
    );
    assert_eq!(fs::read_dir(&spool.incoming).unwrap().count(), 0);

    let reopened = Spool::open(dir.path()).unwrap();
    assert_eq!(reopened.recover().unwrap(), vec![env.clone()]);
    assert_eq!(reopened.read_message(&id).unwrap(), b"hi\r\n");

    env.recipients[0].state = RecipientState::Delivered;
    reopened.save_envelope(&id, &env).unwrap();
    assert_eq!(reopened.recover().unwrap(), vec![env]);
    reopened.remove(&id).unwrap();
    assert!(reopened.recover().unwrap().is_empty());
    assert!(!reopened.message_path(&id).exists());
}

#[test]
fn a_finished_file_carries_the_next_message_whole() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let first = QueueId::generate();
    let long = vec![b'x'; 10_000];
    spool.accept(&first, &envelope(&first), &long).unwrap();
    let inode = fs::metadata(spool.message_path(&first)).unwrap().ino();
    spool.remove(&first).unwrap();
    assert!(spool.read_message(&first).is_err());

    // The next message is written over the finished file (same inode),
    // cut to its own length, and nothing is left in free/ or incoming/.
    let second = QueueId::generate();
    spool
        .accept(&second, &envelope(&second), b"short\r\n")
        .unwrap();
    let meta = fs::metadata(spool.message_path(&second)).unwrap();
    assert_eq!(meta.ino(), inode);
    assert_eq!(meta.nlink(), 1);
    assert_eq!(spool.read_message(&second).unwrap(), b"short\r\n");
    assert_eq!(fs::read_dir(dir.path().join("free")).unwrap().count(), 0);
    assert_eq!(fs::read_dir(&spool.incoming).unwrap().count(), 0);
    let reopened = Spool::open(dir.path()).unwrap();
    assert_eq!(reopened.recover().unwrap(), vec![envelope(&second)]);

    // A queue file that holds another id is refused, never delivered
    // as the wrong message.
    let third = QueueId::generate();
    fs::copy(spool.message_path(&second), spool.message_path(&third)).unwrap();
    assert!(matches!(
        spool.read_message(&third),
        Err(SpoolError::Corrupt { .. })
    ));
}

#[test]
fn recovery_cleans_up_and_sets_damage_aside() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let good = QueueId::generate();
    spool.accept(&good, &envelope(&good), b"ok\r\n").unwrap();
    // A crash mid-accept: a file only in incoming/.
    fs::write(spool.incoming.join("half.msg"), b"x").unwrap();
    // What a removal interrupted after the .msg went leaves behind.
    let finished = QueueId::generate();
    fs::write(spool.envelope_path(&finished), b"{}").unwrap();
    fs::write(spool.log_path(&finished), b"").unwrap();
    // A damaged queue file, and one whose envelope override is damaged.
    let broken = QueueId::generate();
    fs::write(spool.message_path(&broken), b"not a queue file").unwrap();
    let bad_json = QueueId::generate();
    spool
        .accept(&bad_json, &envelope(&bad_json), b"x\r\n")
        .unwrap();
    fs::write(spool.envelope_path(&bad_json), b"{ not json").unwrap();

    let recovered = spool.recover().unwrap();
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0].id, good.as_str());
    assert_eq!(fs::read_dir(&spool.incoming).unwrap().count(), 0);
    assert!(!spool.envelope_path(&finished).exists());
    assert!(!spool.log_path(&finished).exists());
    assert!(spool.corrupt.join(format!("{broken}.msg")).exists());
    assert!(spool.corrupt.join(format!("{bad_json}.msg")).exists());
    assert!(spool.corrupt.join(format!("{bad_json}.json")).exists());
}

#[test]
fn one_file_per_accepted_message() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let id = QueueId::generate();
    spool.accept(&id, &envelope(&id), b"body\r\n").unwrap();
    let names: Vec<String> = fs::read_dir(&spool.queue)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec![format!("{id}.msg")]);
    assert_eq!(spool.read_message(&id).unwrap(), b"body\r\n");
}
