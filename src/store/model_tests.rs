//! Randomised tests: the store against a simple model (a map of messages),
//! through deliveries, deletes, moves, flag changes, compaction, rebalance
//! and reopening; and crash tests that SIGKILL a child process doing the
//! same and then check the store with fsck.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

const USERS: [&str; 3] = ["kim@x", "lee@x", "park@x"];
/// INBOX, a user folder "Archive" (made by `make_folders`), Junk.
type Folders = BTreeMap<&'static str, [String; 3]>;

/// Makes each user's "Archive" folder; returns every user's folders.
fn make_folders(store: &Store) -> Result<Folders, StoreError> {
    let mut out = BTreeMap::new();
    for user in USERS {
        let archive = store.create_folder(user, "Archive", None)?;
        out.insert(user, ["INBOX".to_string(), archive, "Junk".to_string()]);
    }
    Ok(out)
}

/// Few distinct bodies, so single-instance sharing happens often.
fn body(n: u64) -> Vec<u8> {
    format!(
        "Subject: m{n}\r\n\r\n{}\r\n",
        "y".repeat(50 + (n as usize * 97) % 700)
    )
    .into_bytes()
}

/// Three data directories; `era` changes their weights, so a rebalance
/// after reopening in another era has blobs to move.
fn dirs(root: &Path, era: u64) -> Vec<DataDirSpec> {
    (0..3u32)
        .map(|i| DataDirSpec {
            path: root.join(format!("d{i}")),
            weight: 1 + (i + era as u32) % 3 * 2,
        })
        .collect()
}

fn open_small(root: &Path) -> Result<Store, StoreError> {
    open_era(root, 0)
}

fn open_era(root: &Path, era: u64) -> Result<Store, StoreError> {
    let s = Store::open_with(&root.join("meta"), &dirs(root, era), "node-a")?;
    s.blobs.set_segment_limit(4096);
    Ok(s)
}

#[derive(Clone, Debug)]
struct Modeled {
    user: &'static str,
    folder: String,
    body: u64,
    seen: bool,
}

fn check(
    store: &Store,
    folders: &Folders,
    model: &BTreeMap<MessageId, Modeled>,
) -> Result<(), StoreError> {
    for user in USERS {
        let mine: Vec<&Modeled> = model.values().filter(|m| m.user == user).collect();
        let bytes: u64 = mine.iter().map(|m| body(m.body).len() as u64).sum();
        assert_eq!(
            store.usage(user)?,
            Usage {
                bytes,
                messages: mine.len() as u64
            }
        );
        for folder in &folders[user] {
            let folder = folder.as_str();
            let here = mine.iter().filter(|m| m.folder == folder);
            let page = store.list(user, folder, 0, 10_000)?;
            assert_eq!(page.total, here.clone().count(), "{user}/{folder}");
            assert_eq!(page.messages.len(), page.total);
            assert_eq!(
                store.unseen_count(user, folder)?,
                here.filter(|m| !m.seen).count()
            );
        }
    }
    for (id, m) in model {
        let got = store.message(m.user, id)?.map(|s| (s.raw, s.summary.seen));
        assert_eq!(got, Some((body(m.body), m.seen)), "message {id}");
    }
    let report = store.fsck(false)?;
    assert!(report.is_clean(), "fsck: {report}");
    Ok(())
}

fn random_step(
    rng: &mut StdRng,
    store: &Store,
    folders: &Folders,
    model: &mut BTreeMap<MessageId, Modeled>,
) -> Result<(), StoreError> {
    let pick = |rng: &mut StdRng, model: &BTreeMap<MessageId, Modeled>| {
        let n = model.len();
        (n > 0)
            .then(|| model.keys().nth(rng.gen_range(0..n)).cloned())
            .flatten()
    };
    match rng.gen_range(0..100) {
        0..=44 => {
            let user = USERS[rng.gen_range(0..USERS.len())];
            let folder = folders[user][rng.gen_range(0..3)].clone();
            let n = rng.gen_range(0..12);
            let id = store.deliver(user, &folder, &body(n))?;
            model.insert(
                id,
                Modeled {
                    user,
                    folder,
                    body: n,
                    seen: false,
                },
            );
        }
        45..=69 => {
            if let Some(id) = pick(rng, model) {
                let m = model.remove(&id).ok_or(StoreError::NoSuchMessage)?;
                store.expunge(m.user, &id)?;
            }
        }
        70..=79 => {
            if let Some(id) = pick(rng, model) {
                let m = model.get_mut(&id).ok_or(StoreError::NoSuchMessage)?;
                let folder = folders[m.user][rng.gen_range(0..3)].clone();
                store.move_message(m.user, &id, &folder)?;
                m.folder = folder;
            }
        }
        80..=89 => {
            if let Some(id) = pick(rng, model) {
                let seen = rng.gen_bool(0.5);
                let m = model.get_mut(&id).ok_or(StoreError::NoSuchMessage)?;
                store.set_seen(m.user, &id, seen)?;
                m.seen = seen;
            }
        }
        90..=95 => {
            store.compact(rng.gen_range(0..80))?;
        }
        _ => {
            store.rebalance()?;
        }
    }
    Ok(())
}

#[test]
fn random_operations_match_the_model() -> Result<(), StoreError> {
    for seed in 0..6u64 {
        let root = tempfile::tempdir()?;
        let mut rng = StdRng::seed_from_u64(seed);
        let mut model = BTreeMap::new();
        let mut store = open_small(root.path())?;
        let folders = make_folders(&store)?;
        for step in 0..250 {
            random_step(&mut rng, &store, &folders, &mut model)?;
            if step % 60 == 59 {
                check(&store, &folders, &model)?;
                drop(store);
                store = open_era(root.path(), step)?;
            }
        }
        check(&store, &folders, &model)?;
        // Everything deleted and compacted: no segment bytes are left live.
        for (id, m) in std::mem::take(&mut model) {
            store.expunge(m.user, &id)?;
        }
        store.compact(0)?;
        let stats = store.stats()?;
        assert_eq!(stats.blobs, 0, "seed {seed}");
        assert!(stats.disks.iter().all(|d| d.bytes == d.garbage), "{stats}");
        check(&store, &folders, &model)?;
    }
    Ok(())
}

/// Env var naming the folder a crash-test child works in.
const CHILD_DIR: &str = "CAMPUSMAIL_STORE_CRASH_DIR";

/// The child half of `sigkill_at_random_points_loses_nothing`: works on the
/// store until killed, printing each acknowledged change.
#[test]
#[ignore = "run by sigkill_at_random_points_loses_nothing as a child process"]
fn crash_child() -> Result<(), StoreError> {
    let Some(root) = std::env::var_os(CHILD_DIR) else {
        return Ok(());
    };
    let root = Path::new(&root);
    let seed: u64 = std::env::var("CAMPUSMAIL_STORE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut rng = StdRng::seed_from_u64(seed);
    let store = open_era(root, seed)?;
    let mut mine: Vec<(MessageId, u64, &str)> = Vec::new();
    loop {
        match rng.gen_range(0..10) {
            0..=5 => {
                let user = USERS[rng.gen_range(0..USERS.len())];
                let n = rng.gen_range(0..12);
                let id = store.deliver(user, "INBOX", &body(n))?;
                println!("delivered {id} {user} {n}");
                mine.push((id, n, user));
            }
            6..=7 if !mine.is_empty() => {
                let (id, _, user) = mine.swap_remove(rng.gen_range(0..mine.len()));
                // Killed between the two lines, the delete may or may not
                // have happened: the parent stops expecting the message.
                println!("expunging {id}");
                store.expunge(user, &id)?;
                println!("expunged {id}");
            }
            8 => {
                store.compact(rng.gen_range(0..60))?;
            }
            _ => {
                store.rebalance()?;
            }
        }
    }
}

#[test]
fn sigkill_at_random_points_loses_nothing() -> Result<(), Box<dyn std::error::Error>> {
    let root = tempfile::tempdir()?;
    let exe = std::env::current_exe()?;
    let mut rng = StdRng::seed_from_u64(7);
    // message -> (user, body) for every acknowledged, not deleted message.
    let mut acked: BTreeMap<String, (String, u64)> = BTreeMap::new();
    for round in 0..8u64 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "store::model_tests::crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, root.path())
            .env("CAMPUSMAIL_STORE_CRASH_SEED", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(
                root.path().join("child.err"),
            )?))
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no child stdout")?;
        let kill_after = Duration::from_millis(rng.gen_range(150..900));
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<String>>()
        });
        let started = Instant::now();
        while started.elapsed() < kill_after {
            if child.try_wait()?.is_some() {
                let err = std::fs::read_to_string(root.path().join("child.err"))?;
                return Err(format!("the crash-test child stopped by itself: {err}").into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        child.kill()?; // SIGKILL
        child.wait()?;
        let lines = reader.join().map_err(|_| "reader thread panicked")?;
        for line in lines {
            let parts: Vec<&str> = line.split_whitespace().collect();
            match parts.as_slice() {
                ["delivered", id, user, n] => {
                    acked.insert(id.to_string(), (user.to_string(), n.parse()?));
                }
                ["expunging", id] => {
                    acked.remove(*id);
                }
                _ => {}
            }
        }
        let store = open_small(root.path())?;
        let report = store.fsck(false)?;
        assert!(report.is_clean(), "round {round}: {report}");
        for (id, (user, n)) in &acked {
            let id: MessageId = id.parse()?;
            let got = store.message(user, &id)?.map(|m| m.raw);
            assert_eq!(got, Some(body(*n)), "round {round}: acknowledged {id} lost");
        }
    }
    assert!(!acked.is_empty());
    Ok(())
}
