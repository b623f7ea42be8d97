//! Randomised convergence: two stores take random changes on both sides
//! (deliveries, flags, moves, deletes) while the link between them goes up
//! and down at random; after a final exchange both must hold the same state
//! (equal digests), every message delivered and not deleted must be there,
//! and nothing deleted anywhere may survive. The exchange follows the link
//! protocol's rules: per origin, the ops after what the receiver has, blobs
//! before the ops that name them.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::store::{MessageId, Op, Store, StoreError};

const USERS: [&str; 2] = ["kim@x", "lee@x"];
const FOLDERS: [&str; 3] = ["INBOX", "Trash", "Junk"];

fn body(n: u64) -> Vec<u8> {
    format!(
        "Subject: m{n}\r\n\r\n{}\r\n",
        "z".repeat(40 + n as usize % 300)
    )
    .into_bytes()
}

/// Sends `to` every op of `from` it lacks (what the puller does).
fn exchange(from: &Store, to: &Store) -> Result<(), StoreError> {
    for origin in from.origins()? {
        for op in from.ops_since(&origin, to.last_seq(&origin)?, usize::MAX)? {
            if let Op::Deliver { blob, .. } = &op.op {
                match from.blob(blob)? {
                    Some(bytes) => {
                        to.put_blob(&bytes)?;
                    }
                    // Deleted at the sender before it was sent: its bytes
                    // are gone there, and so is the message.
                    None if op
                        .delivered_ids()
                        .iter()
                        .all(|m| from.is_deleted(m).unwrap_or(false)) =>
                    {
                        to.apply_remote_deleted(&op)?;
                        continue;
                    }
                    None => return Err(StoreError::MissingBlob(String::from(*blob))),
                }
            }
            to.apply_remote(&op)?;
        }
    }
    Ok(())
}

/// What one side believes exists: message -> (user, body).
type Seen = BTreeMap<MessageId, (&'static str, u64)>;

fn step(
    rng: &mut StdRng,
    store: &Store,
    mine: &mut Seen,
    deleted: &mut Vec<MessageId>,
) -> Result<(), StoreError> {
    let pick = |rng: &mut StdRng, s: &Seen| {
        (!s.is_empty())
            .then(|| s.keys().nth(rng.gen_range(0..s.len())).cloned())
            .flatten()
    };
    match rng.gen_range(0..10) {
        0..=3 => {
            let user = USERS[rng.gen_range(0..USERS.len())];
            let n = rng.gen_range(0..20);
            let id = store.deliver(user, "INBOX", &body(n))?;
            mine.insert(id, (user, n));
        }
        4..=5 => {
            if let Some(id) = pick(rng, mine) {
                let (user, _) = mine[&id];
                match store.set_seen(user, &id, rng.gen_bool(0.5)) {
                    Ok(()) | Err(StoreError::NoSuchMessage) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        6..=7 => {
            if let Some(id) = pick(rng, mine) {
                let (user, _) = mine[&id];
                let folder = FOLDERS[rng.gen_range(0..FOLDERS.len())];
                match store.move_message(user, &id, folder) {
                    Ok(()) | Err(StoreError::NoSuchMessage) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        _ => {
            if let Some(id) = pick(rng, mine) {
                let (user, _) = mine[&id];
                match store.expunge(user, &id) {
                    Ok(()) => deleted.push(id.clone()),
                    Err(StoreError::NoSuchMessage) => {}
                    Err(e) => return Err(e),
                }
                mine.remove(&id);
            }
        }
    }
    Ok(())
}

#[test]
fn random_changes_with_random_partitions_converge() -> Result<(), StoreError> {
    for seed in 0..5u64 {
        let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
        let a = Store::open(da.path(), "node-a")?;
        let b = Store::open(db.path(), "node-b")?;
        let mut rng = StdRng::seed_from_u64(seed);
        let (mut seen_a, mut seen_b) = (Seen::new(), Seen::new());
        let mut deleted = Vec::new();
        let mut linked = true;
        for _ in 0..300 {
            if rng.gen_bool(0.05) {
                linked = !linked; // the link drops or heals
            }
            let on_a = rng.gen_bool(0.5);
            if on_a {
                step(&mut rng, &a, &mut seen_a, &mut deleted)?;
            } else {
                step(&mut rng, &b, &mut seen_b, &mut deleted)?;
            }
            if linked && rng.gen_bool(0.3) {
                exchange(&a, &b)?;
                exchange(&b, &a)?;
                // What one side has, the other now knows about.
                for (id, v) in seen_a.clone() {
                    seen_b.entry(id).or_insert(v);
                }
                for (id, v) in seen_b.clone() {
                    seen_a.entry(id).or_insert(v);
                }
            }
        }
        exchange(&a, &b)?;
        exchange(&b, &a)?;
        assert_eq!(a.digest()?, b.digest()?, "seed {seed}: the nodes differ");
        let mut all = seen_a.clone();
        all.extend(seen_b.clone());
        for (id, (user, n)) in &all {
            let gone = deleted.contains(id);
            for s in [&a, &b] {
                let got = s.message(user, id)?.map(|m| m.raw);
                if gone {
                    assert_eq!(got, None, "seed {seed}: deleted {id} came back");
                } else {
                    assert_eq!(got, Some(body(*n)), "seed {seed}: {id} lost");
                }
            }
        }
        for s in [&a, &b] {
            let report = s.fsck(false)?;
            assert!(report.is_clean(), "seed {seed}: {report}");
        }
    }
    Ok(())
}
