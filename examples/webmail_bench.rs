//! The webmail benchmark's helper (bench/webmail-latency.sh): fills one
//! user's INBOX with made-up Korean mail through the store API, and times
//! the store's side of a list page and of searches (the server-side
//! latency, without HTTP and TLS). Run with the appliance stopped: it
//! opens the store the configuration names, as the mailbox role would.
//!
//! ```text
//! webmail_bench fill    <appliance.toml> <user> <count> [threads]
//! webmail_bench measure <appliance.toml> <user> [rounds]
//! webmail_bench maildir <folder> <user> <count>
//! ```
//!
//! `maildir` writes the same messages as files into `<folder>/cur` (a
//! Maildir for Dovecot, the peer the benchmark compares search with).
//!
//! `fill` delivers through `Store::deliver` (blob fsynced, op applied and
//! queued for the search indexer, sled flushed: the same work as an LMTP
//! delivery minus the protocol), from several threads so fsyncs overlap as
//! they do with concurrent LMTP sessions, while an indexer thread posts
//! the queue in batches as the mailbox role's does; it reports when the
//! deliveries ended and when the indexer caught up. Message `n` is
//! `sample_mail::message(n)`.

#[path = "../src/store/search/sample_mail.rs"]
mod sample_mail;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use campusmail::config::Config;
use campusmail::store::{ListOrder, SearchQuery, SortKey, Store};

fn usage() -> ! {
    eprintln!(
        "usage: webmail_bench fill <appliance.toml> <user> <count> [threads]\n       webmail_bench measure <appliance.toml> <user> [rounds]\n       webmail_bench maildir <folder> <user> <count>"
    );
    std::process::exit(2)
}

fn open(config: &str) -> Store {
    let config = Config::load(Path::new(config)).unwrap_or_else(|e| {
        eprintln!("{config}: {e}");
        std::process::exit(1)
    });
    config.open_store().unwrap_or_else(|e| {
        eprintln!("opening the store: {e} (is the appliance stopped?)");
        std::process::exit(1)
    })
}

fn fill(store: Store, user: &str, count: u64, threads: u64) {
    let store = Arc::new(store);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let (store, next, user) = (Arc::clone(&store), Arc::clone(&next), user.to_string());
            std::thread::spawn(move || loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count {
                    return;
                }
                if let Err(e) = store.deliver(&user, "INBOX", &sample_mail::message(n, &user)) {
                    eprintln!("delivery {n}: {e}");
                    std::process::exit(1);
                }
                if n % 10_000 == 9_999 {
                    eprintln!("{} delivered, {:?}", n + 1, started.elapsed());
                }
            })
        })
        .collect();
    let indexer = {
        let (store, next) = (Arc::clone(&store), Arc::clone(&next));
        // The mailbox role's loop (mailbox::search_indexer), until the
        // deliveries are over and the queue is empty.
        std::thread::spawn(move || loop {
            match store.index_pending(1_000) {
                Ok(0) if next.load(Ordering::Relaxed) >= count => return,
                Ok(n) if n >= 1_000 => {}
                Ok(_) => std::thread::sleep(Duration::from_millis(200)),
                Err(e) => {
                    eprintln!("indexing: {e}");
                    std::process::exit(1);
                }
            }
        })
    };
    for w in workers {
        let _ = w.join();
    }
    let secs = started.elapsed().as_secs_f64();
    let behind = store.search_backlog();
    let _ = indexer.join();
    println!(
        "fill: {count} messages in {secs:.1} s ({:.0} deliveries/s, {threads} threads); \
         {behind} waited for the indexer then, all indexed after {:.1} s",
        count as f64 / secs,
        started.elapsed().as_secs_f64()
    );
}

/// (p50, p99, max) of the samples.
fn percentiles(samples: &mut [Duration]) -> (Duration, Duration, Duration) {
    samples.sort();
    let at = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
    (at(0.50), at(0.99), at(1.0))
}

fn report(what: &str, samples: &mut [Duration], extra: &str) {
    let (p50, p99, max) = percentiles(samples);
    println!(
        "{what}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} runs){extra}",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3,
        samples.len()
    );
}

fn measure(store: Store, user: &str, rounds: usize) {
    let total = store
        .list(user, "INBOX", 0, 1)
        .map(|p| p.total)
        .unwrap_or(0);
    println!("folder: {total} messages in {user}'s INBOX");
    let pages = total.div_ceil(50).max(1);
    for (what, order) in [
        ("list newest first", ListOrder::default()),
        (
            "list by sender",
            ListOrder {
                key: SortKey::From,
                descending: false,
            },
        ),
    ] {
        let mut samples = Vec::new();
        for round in 0..rounds {
            // First page, last page and pages spread between them.
            let page = match round % 4 {
                0 => 0,
                1 => pages - 1,
                _ => (round * 7919) % pages,
            };
            let t = Instant::now();
            let listed = store.list_sorted(user, "INBOX", order, page * 50, 50);
            samples.push(t.elapsed());
            if let Err(e) = listed {
                eprintln!("list: {e}");
                std::process::exit(1);
            }
        }
        report(what, &mut samples, "");
    }
    let mut all = Vec::new();
    for (what, words) in [
        ("search rare word", "특별장학생선발"),
        ("search common word", "공지"),
        ("search two words", "장학금 신청"),
        ("search sender", "김민준"),
        ("search one character", "숲"),
        ("search English", "seminar"),
        ("search no match", "양자컴퓨터"),
    ] {
        let query = SearchQuery {
            anywhere: words.into(),
            ..SearchQuery::default()
        };
        let mut samples = Vec::new();
        let mut found = String::new();
        for _ in 0..rounds.div_ceil(4).max(5) {
            let t = Instant::now();
            let result = store.search(user, &query, 0, 50);
            samples.push(t.elapsed());
            match result {
                Ok(r) => {
                    found = format!(", {} matches{}", r.total, if r.capped { "+" } else { "" })
                }
                Err(e) => {
                    eprintln!("search: {e}");
                    std::process::exit(1);
                }
            }
        }
        all.extend_from_slice(&samples);
        report(&format!("{what} ({words})"), &mut samples, &found);
    }
    report("search, all queries together", &mut all, "");
}

/// The same messages as Maildir files, for Dovecot.
fn maildir(folder: &str, user: &str, count: u64) {
    let root = Path::new(folder);
    for sub in ["cur", "new", "tmp"] {
        if let Err(e) = std::fs::create_dir_all(root.join(sub)) {
            eprintln!("{folder}: {e}");
            std::process::exit(1);
        }
    }
    for n in 0..count {
        let raw = sample_mail::message(n, user);
        let name = format!("{}.M{n}.bench,S={}:2,", 1_700_000_000 + n, raw.len());
        if let Err(e) = std::fs::write(root.join("cur").join(name), raw) {
            eprintln!("message {n}: {e}");
            std::process::exit(1);
        }
    }
    println!("maildir: {count} messages in {folder}/cur");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    match (arg(1), arg(2), arg(3)) {
        (Some("fill"), Some(config), Some(user)) => {
            let count = arg(4)
                .and_then(|c| c.parse().ok())
                .unwrap_or_else(|| usage());
            let threads = arg(5).and_then(|c| c.parse().ok()).unwrap_or(4);
            fill(open(config), user, count, threads)
        }
        (Some("measure"), Some(config), Some(user)) => {
            let rounds = arg(4).and_then(|c| c.parse().ok()).unwrap_or(200);
            measure(open(config), user, rounds)
        }
        (Some("maildir"), Some(folder), Some(user)) => {
            let count = arg(4)
                .and_then(|c| c.parse().ok())
                .unwrap_or_else(|| usage());
            maildir(folder, user, count)
        }
        _ => usage(),
    }
}
