//! Hybrid logical clock (HLC): the timestamp every store operation carries.
//!
//! A timestamp is wall-clock milliseconds plus a logical counter that breaks
//! ties inside one millisecond and keeps the clock moving forward when the
//! wall clock stalls or steps back. Timestamps from one clock are strictly
//! increasing; observing a peer's timestamp moves the local clock past it, so
//! an op made after seeing another op always orders after it.
//!
//! Owns nothing on disk: the store seeds the clock on open from the newest
//! timestamp in its op log. Reads no untrusted input itself, but `observe`
//! is fed peer timestamps; a peer clock far in the future drags ours with it
//! (a known HLC property; the replication issue may bound the skew it accepts).

use serde::{Deserialize, Serialize};

/// One HLC timestamp. Ordered by (physical ms, logical counter).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct HlcTimestamp {
    /// Wall-clock milliseconds since the Unix epoch (or a later value the
    /// clock has already handed out).
    pub ms: u64,
    /// Counter within `ms`.
    pub logical: u32,
}

impl HlcTimestamp {
    /// 12 bytes, big-endian, so byte order equals timestamp order.
    pub fn to_be_bytes(self) -> [u8; 12] {
        let mut out = [0u8; 12];
        out[..8].copy_from_slice(&self.ms.to_be_bytes());
        out[8..].copy_from_slice(&self.logical.to_be_bytes());
        out
    }
}

/// A monotonic hybrid logical clock. Not thread-safe by itself: the store
/// keeps it behind the same lock that hands out op sequence numbers.
#[derive(Debug)]
pub struct HybridClock {
    last: HlcTimestamp,
    now_ms: fn() -> u64,
}

fn wall_clock_ms() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0)
}

impl HybridClock {
    /// A clock that will never hand out a timestamp at or before `floor`.
    pub fn new(floor: HlcTimestamp) -> HybridClock {
        HybridClock::with_source(floor, wall_clock_ms)
    }

    /// Same, with an injectable wall clock (tests).
    pub fn with_source(floor: HlcTimestamp, now_ms: fn() -> u64) -> HybridClock {
        HybridClock {
            last: floor,
            now_ms,
        }
    }

    /// A fresh timestamp, strictly greater than every one handed out or
    /// observed before.
    pub fn now(&mut self) -> HlcTimestamp {
        let wall = (self.now_ms)();
        self.last = if wall > self.last.ms {
            HlcTimestamp {
                ms: wall,
                logical: 0,
            }
        } else {
            bump(self.last)
        };
        self.last
    }

    /// Moves the clock past a timestamp seen on a peer's op.
    pub fn observe(&mut self, remote: HlcTimestamp) {
        if remote > self.last {
            self.last = remote;
        }
    }
}

fn bump(t: HlcTimestamp) -> HlcTimestamp {
    match t.logical.checked_add(1) {
        Some(logical) => HlcTimestamp { ms: t.ms, logical },
        None => HlcTimestamp {
            ms: t.ms.saturating_add(1),
            logical: 0,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frozen() -> u64 {
        1_000
    }

    #[test]
    fn strictly_increasing_when_wall_clock_stalls() {
        let mut c = HybridClock::with_source(HlcTimestamp::default(), frozen);
        let a = c.now();
        let b = c.now();
        assert!(b > a);
        assert_eq!(
            a,
            HlcTimestamp {
                ms: 1_000,
                logical: 0
            }
        );
        assert_eq!(
            b,
            HlcTimestamp {
                ms: 1_000,
                logical: 1
            }
        );
    }

    #[test]
    fn never_goes_back_below_floor_or_observed() {
        let floor = HlcTimestamp {
            ms: 5_000,
            logical: 7,
        };
        let mut c = HybridClock::with_source(floor, frozen);
        assert!(c.now() > floor);
        let remote = HlcTimestamp {
            ms: 9_000,
            logical: 3,
        };
        c.observe(remote);
        assert!(c.now() > remote);
    }

    #[test]
    fn byte_order_is_timestamp_order() {
        let a = HlcTimestamp {
            ms: 1,
            logical: u32::MAX,
        };
        let b = HlcTimestamp { ms: 2, logical: 0 };
        assert!(a.to_be_bytes() < b.to_be_bytes());
    }
}
