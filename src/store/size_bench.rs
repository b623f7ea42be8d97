//! A measurement, not a test of behaviour: how many bytes of metadata the
//! store spends per recipient when one message goes to 30,000 mailboxes
//! (the single-instance case of issue #3), delivered as the engine hands
//! bulk mail over: 1,000 recipients per `deliver_many`. Ignored by
//! default; run with
//! `cargo test --release --lib store::size_bench -- --ignored --nocapture`.
//! Results are recorded in bench/README.md. No size is asserted.

use super::*;

fn dir_bytes(path: &Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(path) {
        for e in entries.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => total += dir_bytes(&e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

#[test]
#[ignore = "a measurement; run by hand"]
fn metadata_bytes_per_recipient_of_one_message_to_30k() -> Result<(), StoreError> {
    const USERS: usize = 30_000;
    const CHUNK: usize = 1_000;
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path(), "node-a")?;
    let mut raw =
        b"From: Office <office@campus.test>\r\nSubject: Announcement to every student\r\n\r\n"
            .to_vec();
    raw.resize(20_000, b'x');
    let users: Vec<String> = (1..=USERS)
        .map(|n| format!("s{n:06}@campus.test"))
        .collect();
    let before = dir_bytes(&dir.path().join("meta"));
    for chunk in users.chunks(CHUNK) {
        let targets: Vec<(&str, &str)> = chunk.iter().map(|u| (u.as_str(), "INBOX")).collect();
        store.deliver_many(&targets, &raw)?;
    }
    for name in store.db.tree_names() {
        let tree = store.db.open_tree(&name)?;
        let (mut n, mut bytes) = (0u64, 0u64);
        for entry in tree.iter() {
            let (k, v) = entry?;
            n += 1;
            bytes += (k.len() + v.len()) as u64;
        }
        println!(
            "tree {}: {n} entries, {bytes} bytes of keys and values",
            String::from_utf8_lossy(&name)
        );
    }
    drop(store);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let after = dir_bytes(&dir.path().join("meta"));
    println!(
        "metadata: {} bytes before, {} after: {} bytes per recipient",
        before,
        after,
        (after - before) / USERS as u64
    );
    Ok(())
}
