//! A measurement, not a test of behaviour: how long pages of a 100,000-
//! message folder take in every sort order (first, middle and last page).
//! Ignored by default; run with
//! `cargo test --lib store::listing_bench -- --ignored --nocapture`.
//! Results are recorded in bench/README.md. No timing is asserted.

use std::time::Instant;

use super::*;

#[test]
#[ignore = "a measurement; run by hand"]
fn list_pages_of_a_100k_folder() -> Result<(), StoreError> {
    const N: u64 = 100_000;
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path(), "node-a")?;
    let raw = b"Subject: x\r\n\r\nbody\r\n";
    let blob = store.put_blob(raw)?;
    let started = Instant::now();
    {
        // One flush for all: this measures listing, not delivery.
        let mut w = store.writer.lock().map_err(|_| StoreError::Poisoned)?;
        for n in 0..N {
            store.apply_local(&mut w, |_| Op::Deliver {
                targets: vec![("kim@x".into(), "INBOX".into())],
                blob,
                size: raw.len() as u64,
                received_at: 1_700_000_000 + n as i64,
                summary: SummaryFields {
                    from: format!("Sender {} <s{n}@x>", (n * 7919) % 1000),
                    subject: format!("Subject {}", (n * 104_729) % N),
                    date: None,
                    thread: None,
                },
                queue_ref: None,
            })?;
        }
    }
    store.db.flush()?;
    println!("stored {N} messages in {:?}", started.elapsed());
    for key in [
        SortKey::Date,
        SortKey::From,
        SortKey::Subject,
        SortKey::Size,
    ] {
        for descending in [true, false] {
            let order = ListOrder { key, descending };
            for (what, offset) in [
                ("first", 0),
                ("middle", N as usize / 2),
                ("last", N as usize - 50),
            ] {
                let t = Instant::now();
                let page = store.list_sorted("kim@x", "INBOX", order, offset, 50)?;
                assert_eq!(page.messages.len(), 50);
                println!("{key:?} desc={descending} {what} page: {:?}", t.elapsed());
            }
        }
    }
    Ok(())
}

/// The list grouped by conversation on a 100,000-message folder of 20,000
/// conversations (five messages each, interleaved): first, middle and
/// last pages of 50 rows. Run like the one above.
#[test]
#[ignore = "a measurement; run by hand"]
fn grouped_pages_of_a_100k_folder() -> Result<(), StoreError> {
    const N: u64 = 100_000;
    const CONVERSATIONS: u64 = 20_000;
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path(), "node-a")?;
    let raw = b"Subject: x\r\n\r\nbody\r\n";
    let blob = store.put_blob(raw)?;
    let started = Instant::now();
    {
        let mut w = store.writer.lock().map_err(|_| StoreError::Poisoned)?;
        for n in 0..N {
            store.apply_local(&mut w, |_| Op::Deliver {
                targets: vec![("kim@x".into(), "INBOX".into())],
                blob,
                size: raw.len() as u64,
                received_at: 1_700_000_000 + n as i64,
                summary: SummaryFields {
                    from: format!("Sender {} <s{n}@x>", (n * 7919) % 1000),
                    subject: format!("Subject {}", n % CONVERSATIONS),
                    date: None,
                    thread: Some(format!("<c{}@x>", n % CONVERSATIONS)),
                },
                queue_ref: None,
            })?;
        }
    }
    store.db.flush()?;
    println!("stored {N} messages in {:?}", started.elapsed());
    for descending in [true, false] {
        for (what, offset) in [
            ("first", 0),
            ("middle", CONVERSATIONS as usize / 2),
            ("last", CONVERSATIONS as usize - 50),
        ] {
            let t = Instant::now();
            let page = store.list_conversations("kim@x", "INBOX", descending, offset, 50)?;
            assert_eq!(page.rows.len(), 50);
            assert_eq!(page.total, CONVERSATIONS as usize);
            assert!(page.rows.iter().all(|r| r.in_folder == 5));
            println!("grouped desc={descending} {what} page: {:?}", t.elapsed());
        }
    }
    Ok(())
}
