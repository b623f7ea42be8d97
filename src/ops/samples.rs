//! The appliance's own samples for the console's charts: one a minute
//! (`[metrics] sample_every`), kept for a week, surviving restarts.
//!
//! Owns: `<data_dir>/ops/samples.jsonl` (owner-only), one JSON `Sample`
//! per line, oldest first, and the in-memory copy of the last week.
//!
//! A sample holds cumulative values (counters since the engine process
//! started, CPU seconds since each process started) with the process ids,
//! so rates are worked out between two samples of the same process and a
//! restart is seen, not drawn as a dip below zero.
//!
//! Invariants:
//! - A sample is appended whole and fsynced; a torn last line (crash
//!   mid-write) or any damaged line is skipped on load.
//! - The file is rewritten (write temp, fsync, rename: `fsutil`) to the
//!   last week when it holds more than `REWRITE_AT` lines, so it never
//!   grows without bound.
//! - At most `MAX_SAMPLES` samples are kept in memory.
//!
//! Reads untrusted input: the samples file (ours; damaged lines skipped).

use std::collections::VecDeque;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// How far back samples are kept.
pub const KEEP_SECS: i64 = 7 * 24 * 3600;
/// A week of one-a-minute samples.
pub const MAX_SAMPLES: usize = 7 * 24 * 60;
/// Lines in the file past which it is rewritten to the last week.
const REWRITE_AT: usize = MAX_SAMPLES + MAX_SAMPLES / 10;

/// One data directory in a sample.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DiskSample {
    pub path: String,
    /// Bytes in segment files.
    pub bytes: u64,
    pub free: Option<u64>,
}

/// Everything measured at one moment (see the module comment).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Unix seconds.
    pub at: i64,
    /// `None` when the engine did not answer.
    #[serde(default)]
    pub engine_pid: Option<u32>,
    #[serde(default)]
    pub accepted: Option<u64>,
    #[serde(default)]
    pub delivered: Option<u64>,
    #[serde(default)]
    pub deferred: Option<u64>,
    #[serde(default)]
    pub bounced: Option<u64>,
    #[serde(default)]
    pub queue_normal: Option<u64>,
    #[serde(default)]
    pub queue_bulk: Option<u64>,
    #[serde(default)]
    pub disks: Vec<DiskSample>,
    #[serde(default)]
    pub mailbox_pid: u32,
    #[serde(default)]
    pub mailbox_cpu: Option<f64>,
    /// The engine's CPU seconds when it is another process.
    #[serde(default)]
    pub engine_cpu: Option<f64>,
    /// Resident memory of the mailbox role plus, when apart, the engine.
    #[serde(default)]
    pub memory: Option<u64>,
    #[serde(default)]
    pub smtp_connections: Option<u64>,
    #[serde(default)]
    pub web_connections: Option<u64>,
    #[serde(default)]
    pub sessions: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot write the samples file {path}: {source}")]
pub struct SamplesError {
    path: PathBuf,
    source: std::io::Error,
}

/// The samples of this node.
#[derive(Debug)]
pub struct Samples {
    path: PathBuf,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    kept: VecDeque<Sample>,
    lines_in_file: usize,
}

impl Samples {
    /// Loads `<data_dir>/ops/samples.jsonl` (missing: none yet).
    pub fn open(data_dir: &Path) -> Samples {
        let path = data_dir.join("ops").join("samples.jsonl");
        let mut inner = Inner::default();
        if let Ok(file) = std::fs::File::open(&path) {
            for line in BufReader::new(file).lines() {
                let Ok(line) = line else { break };
                inner.lines_in_file += 1;
                if let Ok(sample) = serde_json::from_str::<Sample>(&line) {
                    inner.kept.push_back(sample);
                }
            }
        }
        let newest = inner.kept.back().map_or(0, |s| s.at);
        trim(&mut inner.kept, newest);
        Samples {
            path,
            inner: Mutex::new(inner),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `sample` and appends it to the file (fsynced).
    pub fn record(&self, sample: Sample) -> Result<(), SamplesError> {
        let fail = |source| SamplesError {
            path: self.path.clone(),
            source,
        };
        let mut line = serde_json::to_vec(&sample).map_err(|e| fail(e.into()))?;
        line.push(b'\n');
        let mut inner = self.lock();
        inner.kept.push_back(sample);
        let newest = inner.kept.back().map_or(0, |s| s.at);
        trim(&mut inner.kept, newest);
        if let Some(folder) = self.path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(folder)
                .map_err(fail)?;
        }
        if inner.lines_in_file >= REWRITE_AT {
            let mut all = Vec::new();
            for s in &inner.kept {
                all.extend(serde_json::to_vec(s).map_err(|e| fail(e.into()))?);
                all.push(b'\n');
            }
            crate::fsutil::write_atomically(&self.path, &all, 0o600).map_err(fail)?;
            inner.lines_in_file = inner.kept.len();
            return Ok(());
        }
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&self.path)
            .map_err(fail)?;
        file.write_all(&line).map_err(fail)?;
        // Durable from here.
        file.sync_data().map_err(fail)?;
        inner.lines_in_file += 1;
        Ok(())
    }

    /// The kept samples taken at or after `since`, oldest first.
    pub fn since(&self, since: i64) -> Vec<Sample> {
        self.lock()
            .kept
            .iter()
            .filter(|s| s.at >= since)
            .cloned()
            .collect()
    }

    /// The newest sample, if any.
    pub fn latest(&self) -> Option<Sample> {
        self.lock().kept.back().cloned()
    }
}

fn trim(kept: &mut VecDeque<Sample>, newest: i64) {
    while kept.front().is_some_and(|s| s.at < newest - KEEP_SECS) || kept.len() > MAX_SAMPLES {
        kept.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: i64) -> Sample {
        Sample {
            at,
            accepted: Some(at as u64),
            ..Sample::default()
        }
    }

    #[test]
    fn samples_survive_a_reopen_and_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let samples = Samples::open(dir.path());
        samples.record(sample(1000)).unwrap();
        samples.record(sample(1060)).unwrap();
        let path = dir.path().join("ops/samples.jsonl");
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"at\":11").unwrap();
        drop(file);
        let again = Samples::open(dir.path());
        assert_eq!(again.since(0), vec![sample(1000), sample(1060)]);
        assert_eq!(again.since(1001), vec![sample(1060)]);
        assert_eq!(again.latest(), Some(sample(1060)));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn only_a_week_is_kept_and_the_file_is_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let start = 1_000_000;
        // A file as a long run leaves it (written directly: one fsync per
        // line would make this test slow).
        let mut text = String::new();
        for i in 0..REWRITE_AT as i64 {
            text.push_str(&serde_json::to_string(&sample(start + i * 60)).unwrap());
            text.push('\n');
        }
        std::fs::create_dir_all(dir.path().join("ops")).unwrap();
        std::fs::write(dir.path().join("ops/samples.jsonl"), text).unwrap();
        let samples = Samples::open(dir.path());
        samples
            .record(sample(start + REWRITE_AT as i64 * 60))
            .unwrap();
        let kept = samples.since(0);
        assert_eq!(kept.len(), MAX_SAMPLES);
        let newest = kept.last().unwrap().at;
        assert!(kept[0].at >= newest - KEEP_SECS);
        let text = std::fs::read_to_string(dir.path().join("ops/samples.jsonl")).unwrap();
        assert!(text.lines().count() < REWRITE_AT, "rewritten");
        assert_eq!(Samples::open(dir.path()).since(0).last(), kept.last());
    }
}
