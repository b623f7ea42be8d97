//! A measurement, not a test of behaviour: how long a snapshot of a
//! 100,000-message store holds the writer lock (the copy of the metadata),
//! and how long installing it takes, blobs included. Ignored by default;
//! run with `cargo test --lib store::snapshot_bench -- --ignored --nocapture`.
//! Results are recorded in bench/README.md. No timing is asserted.

use std::time::Instant;

use super::snapshot::{read_record, SnapshotRecord};
use super::*;

#[test]
#[ignore = "a measurement; run by hand"]
fn snapshot_of_a_100k_message_store() -> Result<(), StoreError> {
    const N: u64 = 100_000;
    const BLOBS: u64 = 10_000;
    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let a = Store::open(da.path(), "node-a")?;
    let mut blobs = Vec::new();
    for n in 0..BLOBS {
        let raw = format!("Subject: m{n}\r\n\r\n{}\r\n", "x".repeat(2000)).into_bytes();
        blobs.push((a.put_blob(&raw)?, raw.len() as u64));
    }
    {
        // One flush for all: this measures the snapshot, not delivery.
        let mut w = a.writer.lock().map_err(|_| StoreError::Poisoned)?;
        for n in 0..N {
            let (blob, size) = blobs[(n % BLOBS) as usize];
            a.apply_local(&mut w, |_| Op::Deliver {
                targets: vec![(format!("user{}@x", n % 500), "INBOX".into())],
                blob,
                size,
                received_at: 1_700_000_000 + n as i64,
                summary: SummaryFields {
                    from: format!("Sender {} <s{n}@x>", n % 1000),
                    subject: format!("Subject {n}"),
                    date: None,
                    thread: None,
                },
                queue_ref: None,
            })?;
        }
    }
    a.db.flush()?;

    let started = Instant::now();
    let mut file = Vec::new();
    let taken = a.take_snapshot(&mut file)?;
    println!(
        "copied the metadata of {} messages ({} bytes) under the writer lock in {:?}",
        taken.messages,
        file.len(),
        started.elapsed()
    );

    let b = Store::open(db.path(), "node-b")?;
    let started = Instant::now();
    let mut install = b.begin_snapshot_install("node-a")?;
    let mut r = &file[..];
    let (mut tree, mut payload, mut group) = (String::new(), Vec::new(), Vec::new());
    while let Some(record) = read_record(&mut r)? {
        match record {
            SnapshotRecord::Tree(name) => {
                if !payload.is_empty() {
                    install.entries(&tree, &payload)?;
                }
                payload.clear();
                tree = name;
            }
            SnapshotRecord::Entry(k, v) => {
                encode_entry(&mut payload, &k, &v)?;
                if payload.len() >= 1 << 20 {
                    if !payload.is_empty() {
                        install.entries(&tree, &payload)?;
                    }
                    payload.clear();
                }
            }
            SnapshotRecord::Blob(id, loc) => {
                if !payload.is_empty() {
                    install.entries(&tree, &payload)?;
                }
                payload.clear();
                group.push((taken.blob(&id, &loc)?, loc.refcount));
                if group.len() == 256 {
                    install.blobs(&group)?;
                    group.clear();
                }
            }
        }
    }
    install.blobs(&group)?;
    install.finish(&taken.base, taken.hlc_high)?;
    println!("installed it with {BLOBS} blobs in {:?}", started.elapsed());
    assert_eq!(a.digest()?, b.digest()?);
    Ok(())
}
