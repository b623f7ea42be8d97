//! How dates and sizes read on the pages.
//!
//! Owns: nothing; pure functions.
//!
//! Invariants:
//! - Times are shown in Korea Standard Time (UTC+09:00, no daylight saving),
//!   the campus's clock, whatever the server's time zone is.
//! - Out-of-range timestamps give an empty string, never a panic.
//!
//! Reads untrusted input: message dates (any i64) from mail headers.

use chrono::{DateTime, FixedOffset};

const KST_SECONDS: i32 = 9 * 60 * 60;

fn kst(unix: i64) -> Option<DateTime<FixedOffset>> {
    let offset = FixedOffset::east_opt(KST_SECONDS)?;
    Some(DateTime::from_timestamp(unix, 0)?.with_timezone(&offset))
}

/// Full date and time: "2024-03-05 14:07 (+09:00)".
pub fn date_time(unix: i64) -> String {
    kst(unix)
        .map(|t| t.format("%Y-%m-%d %H:%M (%:z)").to_string())
        .unwrap_or_default()
}

/// Short form for the message list: the time for today's mail, the date
/// otherwise (both in KST).
pub fn list_date(unix: i64, now: i64) -> String {
    match (kst(unix), kst(now)) {
        (Some(t), Some(today)) if t.date_naive() == today.date_naive() => {
            t.format("%H:%M").to_string()
        }
        (Some(t), _) => t.format("%Y-%m-%d").to_string(),
        _ => String::new(),
    }
}

/// Machine-readable form for `<time datetime>`.
pub fn iso(unix: i64) -> String {
    kst(unix).map(|t| t.to_rfc3339()).unwrap_or_default()
}

/// A size the way people read it: "812 B", "4.1 KB", "12 MB".
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if value < 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2024-03-05 05:07:00 UTC = 14:07 KST.
    const T: i64 = 1_709_615_220;

    #[test]
    fn dates_are_in_korea_time() {
        assert_eq!(date_time(T), "2024-03-05 14:07 (+09:00)");
        assert_eq!(iso(T), "2024-03-05T14:07:00+09:00");
        assert_eq!(list_date(T, T + 3600), "14:07");
        assert_eq!(list_date(T, T + 86_400), "2024-03-05");
        // 23:30 UTC on the 4th is already the 5th in Korea.
        assert_eq!(list_date(T - 5 * 3600 - 37 * 60, T), "08:30");
    }

    #[test]
    fn absurd_timestamps_do_not_panic() {
        assert_eq!(date_time(i64::MAX), "");
        assert_eq!(list_date(i64::MIN, 0), "");
        assert_eq!(iso(i64::MAX), "");
    }

    #[test]
    fn sizes() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1024), "1.0 KB");
        assert_eq!(size(4200), "4.1 KB");
        assert_eq!(size(12 * 1024 * 1024), "12 MB");
        assert_eq!(size(u64::MAX), "16777216 TB");
    }
}
