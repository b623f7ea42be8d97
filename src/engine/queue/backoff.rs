//! Retry backoff for temporarily failed deliveries.
//!
//! Owns: the retry schedule. The first retry waits `retry_initial_secs`; each
//! later one waits twice as long as the one before, up to one hour (or the
//! initial delay, if an admin set that above an hour).
//!
//! Reads untrusted input: no.

/// Longest wait between two attempts.
pub const MAX_RETRY_SECS: u64 = 3600;

/// Seconds to wait before the next attempt after `attempts` failed ones (≥ 1).
pub fn retry_delay(retry_initial_secs: u64, attempts: u32) -> u64 {
    let cap = MAX_RETRY_SECS.max(retry_initial_secs);
    let doublings = attempts.saturating_sub(1).min(32);
    retry_initial_secs
        .saturating_mul(1u64 << doublings)
        .min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_an_hour() {
        let delays: Vec<u64> = (1..=9).map(|n| retry_delay(60, n)).collect();
        assert_eq!(delays, [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
        assert_eq!(retry_delay(60, 0), 60);
        assert_eq!(retry_delay(60, u32::MAX), 3600);
        assert_eq!(
            retry_delay(7200, 3),
            7200,
            "an initial delay above the cap stays"
        );
        assert_eq!(retry_delay(u64::MAX, 5), u64::MAX);
    }
}
