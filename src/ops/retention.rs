//! Retention of the daily log files (O3): `PREFIX-YYYY-MM-DD.log` files
//! whose day is more than `[logs] keep_days` days before today are
//! deleted, checked at start and then every hour by each role for its own
//! logs (the engine: `logs/mail-*`; the mailbox role: `audit/audit-*`).
//!
//! Invariants:
//! - Only names of exactly that shape are ever deleted; anything else in
//!   the folder is left alone.
//! - A file is deleted only when its whole day is older than the limit.
//!
//! Reads untrusted input: no (file names in our own folders).

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::NaiveDate;

const EVERY: Duration = Duration::from_secs(3600);

/// The day in a daily log file name `PREFIX-YYYY-MM-DD.log`.
pub fn day_of(name: &str, prefix: &str) -> Option<NaiveDate> {
    let day = name
        .strip_prefix(prefix)?
        .strip_prefix('-')?
        .strip_suffix(".log")?;
    if day.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()
}

/// Deletes the expired files of `dir`; returns how many.
pub fn sweep(dir: &Path, prefix: &str, keep_days: u32, today: NaiveDate) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let Some(oldest_kept) = today.checked_sub_days(chrono::Days::new(u64::from(keep_days))) else {
        return 0;
    };
    let mut deleted = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        match day_of(&name, prefix) {
            Some(day) if day < oldest_kept => match std::fs::remove_file(entry.path()) {
                Ok(()) => {
                    tracing::info!(file = %entry.path().display(), keep_days, "deleted an expired log file");
                    deleted += 1;
                }
                Err(err) => {
                    tracing::warn!(file = %entry.path().display(), %err, "cannot delete an expired log file")
                }
            },
            _ => {}
        }
    }
    deleted
}

/// Sweeps `dir` now and every hour on a thread of its own.
pub fn start(dir: PathBuf, prefix: &'static str, keep_days: u32) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(format!("retention-{prefix}"))
        .spawn(move || loop {
            sweep(&dir, prefix, keep_days, chrono::Utc::now().date_naive());
            std::thread::sleep(EVERY);
        })
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletes_only_expired_daily_files() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "audit-2025-10-01.log",
            "audit-2025-10-02.log",
            "audit-2026-11-25.log",
            "audit-notes.log",
            "mail-2020-01-01.log",
            "audit-2020-01-01.log.bak",
        ] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        let today = NaiveDate::from_ymd_opt(2026, 11, 6).unwrap();
        // 400 days before 2026-11-06 is 2025-10-02: that day is kept.
        assert_eq!(sweep(dir.path(), "audit", 400, today), 1);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "audit-2020-01-01.log.bak",
                "audit-2025-10-02.log",
                "audit-2026-11-25.log",
                "audit-notes.log",
                "mail-2020-01-01.log"
            ]
        );
        assert_eq!(sweep(&dir.path().join("none"), "audit", 1, today), 0);
    }
}
