//! Which data directory a blob belongs on.
//!
//! Weighted rendezvous hashing (highest random weight): each directory
//! scores every blob with a pseudo-random number drawn from (blob hash,
//! directory id), scaled by the directory's weight; the highest score wins.
//! Why this scheme:
//! - it needs no table: any node computes the same answer from the blob id
//!   and the list of directories;
//! - a directory's expected share of blobs (and so of bytes and of reads
//!   and writes) is its weight over the total weight;
//! - adding a directory moves only the blobs it now wins, which is its share
//!   and nothing else; removing one moves only its own blobs.
//!
//! The score `weight / -ln(u)` with `u` uniform in (0, 1) gives each
//! directory a win probability proportional to its weight (the minimum of
//! exponential variables with rates w_i is the i-th with probability
//! w_i / sum w).

use super::record::BlobId;

/// A directory taking part in placement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub disk: u16,
    pub weight: u32,
}

/// The directory `blob` belongs on; None if there are no candidates or all
/// weights are 0.
pub fn choose(blob: &BlobId, candidates: &[Candidate]) -> Option<u16> {
    let mut best: Option<(f64, u16)> = None;
    for c in candidates.iter().filter(|c| c.weight > 0) {
        let score = f64::from(c.weight) / -unit(blob, c.disk).ln();
        if best.is_none_or(|(b, _)| score > b) {
            best = Some((score, c.disk));
        }
    }
    best.map(|(_, disk)| disk)
}

/// A number in (0, 1) drawn from (blob, disk).
fn unit(blob: &BlobId, disk: u16) -> f64 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&blob.0);
    hasher.update(&disk.to_be_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hasher.finalize().as_bytes()[..8]);
    // 53 random bits, offset by half a step so 0 and 1 never occur.
    let bits = u64::from_be_bytes(first) >> 11;
    (bits as f64 + 0.5) / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs(n: usize) -> Vec<BlobId> {
        (0..n).map(|i| BlobId::of(&i.to_be_bytes())).collect()
    }

    fn shares(candidates: &[Candidate], ids: &[BlobId]) -> Vec<usize> {
        let mut counts = vec![0usize; candidates.len()];
        for id in ids {
            let disk = choose(id, candidates);
            let i = candidates.iter().position(|c| Some(c.disk) == disk);
            if let Some(i) = i {
                counts[i] += 1;
            }
        }
        counts
    }

    #[test]
    fn equal_and_unequal_weights_get_their_share_within_ten_percent() {
        let ids = blobs(5000);
        for weights in [[1, 1, 1, 1], [1, 2, 3, 4], [10, 10, 5, 1]] {
            let c: Vec<Candidate> = weights
                .iter()
                .enumerate()
                .map(|(i, w)| Candidate {
                    disk: i as u16 + 1,
                    weight: *w,
                })
                .collect();
            let total: u32 = weights.iter().sum();
            for (i, got) in shares(&c, &ids).into_iter().enumerate() {
                let want = ids.len() as f64 * f64::from(weights[i]) / f64::from(total);
                assert!(
                    (got as f64 - want).abs() <= want * 0.10,
                    "weights {weights:?}: directory {i} got {got}, share {want}"
                );
            }
        }
    }

    #[test]
    fn adding_a_directory_moves_only_its_share() {
        let ids = blobs(4000);
        let three: Vec<Candidate> = (1..=3).map(|d| Candidate { disk: d, weight: 1 }).collect();
        let mut four = three.clone();
        four.push(Candidate { disk: 9, weight: 1 });
        let mut moved = 0;
        for id in &ids {
            let before = choose(id, &three);
            let after = choose(id, &four);
            if before != after {
                assert_eq!(after, Some(9), "a blob moved between old directories");
                moved += 1;
            }
        }
        let want = ids.len() as f64 / 4.0;
        assert!((moved as f64 - want).abs() <= want * 0.10, "moved {moved}");
    }

    #[test]
    fn no_candidates_means_no_answer() {
        let id = BlobId::of(b"x");
        assert_eq!(choose(&id, &[]), None);
        assert_eq!(choose(&id, &[Candidate { disk: 1, weight: 0 }]), None);
    }
}
