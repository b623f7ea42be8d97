//! A measurement, not a test of behaviour: bytes of search index per
//! message, and how long delivery and a few queries take, on a folder of
//! `BENCH_SEARCH_MESSAGES` (default 20,000) made-up Korean messages
//! (`sample_mail.rs`). Ignored by default; run with
//! `cargo test --release --lib store::search::bench -- --ignored --nocapture`.
//! Results are recorded in bench/README.md. Nothing is asserted beyond
//! the planted words being found.

#[path = "sample_mail.rs"]
mod sample_mail;

use std::time::Instant;

use super::*;

fn dir_bytes(path: &std::path::Path) -> u64 {
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

fn tree_bytes(tree: &sled::Tree) -> Result<(u64, u64), StoreError> {
    let (mut n, mut bytes) = (0u64, 0u64);
    for entry in tree.iter() {
        let (k, v) = entry?;
        n += 1;
        bytes += (k.len() + v.len()) as u64;
    }
    Ok((n, bytes))
}

#[test]
#[ignore = "a measurement; run by hand"]
fn search_index_bytes_per_message() -> Result<(), StoreError> {
    let count: u64 = std::env::var("BENCH_SEARCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let dir = tempfile::tempdir()?;
    let store = std::sync::Arc::new(Store::open(dir.path(), "node-a")?);
    let user = "kim@campus.test";
    let started = Instant::now();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The mailbox role's indexer loop, beside the deliveries.
    let indexer = {
        let (store, done) = (store.clone(), done.clone());
        std::thread::spawn(move || -> Result<(), StoreError> {
            loop {
                let n = store.index_pending(1_000)?;
                if n == 0 && done.load(std::sync::atomic::Ordering::Relaxed) {
                    return Ok(());
                }
                if n < 1_000 {
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
            }
        })
    };
    let mut raw_bytes = 0u64;
    for n in 0..count {
        let raw = sample_mail::message(n, user);
        raw_bytes += raw.len() as u64;
        store.deliver(user, "INBOX", &raw)?;
    }
    println!(
        "delivered {count} messages ({} bytes each on average) in {:?}, {} waiting for the indexer",
        raw_bytes / count.max(1),
        started.elapsed(),
        store.search_backlog()
    );
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    match indexer.join() {
        Ok(result) => result?,
        Err(_) => return Err(StoreError::Corrupt("indexer thread panicked".into())),
    }
    println!("all indexed after {:?}", started.elapsed());
    let mut index = 0u64;
    for (name, tree) in [
        ("search_postings", &store.trees.search_postings),
        ("search_pending", &store.trees.search_pending),
        ("search_docs", &store.trees.search_docs),
        ("search_shared", &store.trees.search_shared),
        ("messages", &store.trees.messages),
        ("deliveries", &store.trees.deliveries),
    ] {
        let (n, bytes) = tree_bytes(tree)?;
        if name.starts_with("search") {
            index += bytes;
        }
        println!(
            "tree {name}: {n} entries, {bytes} bytes of keys and values, {} per message",
            bytes / count.max(1)
        );
    }
    println!(
        "search index: {} bytes of keys and values per message (before sled's page compression)",
        index / count.max(1)
    );
    store.db.flush()?;
    println!(
        "metadata folder on disk: {} bytes per message (sled's log, all trees)",
        dir_bytes(&dir.path().join("meta")) / count.max(1)
    );
    for (what, query) in [
        ("rare word", "특별장학생선발"),
        ("common word", "공지"),
        ("two words", "장학금 신청"),
        ("one character", "숲"),
        ("sender name", "김민준"),
        ("English", "seminar"),
    ] {
        let q = SearchQuery {
            anywhere: query.into(),
            ..SearchQuery::default()
        };
        let t = Instant::now();
        let r = store.search(user, &q, 0, 50)?;
        println!(
            "search {what} ({query}): {} matches{} in {:?}",
            r.total,
            if r.capped { "+" } else { "" },
            t.elapsed()
        );
    }
    let planted = store.search(
        user,
        &SearchQuery {
            anywhere: "특별장학생선발".into(),
            ..SearchQuery::default()
        },
        0,
        50,
    )?;
    assert_eq!(planted.total as u64, count.div_ceil(10_000).min(count));
    Ok(())
}
