//! `[store]`: the data directories message bytes are spread over (R5) and
//! background compaction, and how the configuration opens the store.

use std::path::PathBuf;

use serde::Deserialize;

use super::{Config, ConfigDuration, ConfigError};

/// Where message bytes live (R5) and how their space is reclaimed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// One entry per disk; empty = `<data_dir>/store` alone.
    pub data_dirs: Vec<DataDirConfig>,
    /// Sealed segments with at least this percentage of garbage are compacted.
    pub compact_garbage_percent: u64,
    /// How often the background compactor looks for such segments.
    pub compact_every: ConfigDuration,
}

/// One data directory (one disk).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataDirConfig {
    /// Absolute, or relative to the data folder.
    pub path: PathBuf,
    /// Share of new mail relative to the other directories (e.g. its size in TB).
    #[serde(default = "default_weight")]
    pub weight: u32,
}

fn default_weight() -> u32 {
    1
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            data_dirs: Vec::new(),
            compact_garbage_percent: 30,
            compact_every: ConfigDuration::secs(600),
        }
    }
}

impl Config {
    pub(super) fn validate_store(&self) -> Result<(), ConfigError> {
        let s = &self.store;
        for d in &s.data_dirs {
            if d.path.as_os_str().is_empty() {
                return Err(self.invalid("store.data_dirs", "every entry needs a path"));
            }
            if d.weight == 0 || d.weight > 10_000 {
                return Err(self.invalid(
                    "store.data_dirs",
                    format!("{}: weight must be between 1 and 10000", d.path.display()),
                ));
            }
        }
        let mut paths: Vec<&PathBuf> = s.data_dirs.iter().map(|d| &d.path).collect();
        paths.sort();
        if paths.windows(2).any(|w| w[0] == w[1]) {
            return Err(self.invalid("store.data_dirs", "a directory is listed twice"));
        }
        if s.compact_garbage_percent > 100 {
            return Err(self.invalid("store.compact_garbage_percent", "must be between 0 and 100"));
        }
        if s.compact_every.as_secs() < 10 {
            return Err(self.invalid("store.compact_every", "must be at least \"10s\""));
        }
        Ok(())
    }

    /// The store's data directories (the default: `<data_dir>/store`).
    pub fn store_data_dirs(&self) -> Vec<crate::store::DataDirSpec> {
        if self.store.data_dirs.is_empty() {
            return vec![crate::store::DataDirSpec {
                path: self.store_dir(),
                weight: 1,
            }];
        }
        self.store
            .data_dirs
            .iter()
            .map(|d| crate::store::DataDirSpec {
                path: d.path.clone(),
                weight: d.weight,
            })
            .collect()
    }

    /// Opens the message store as this configuration describes it.
    pub fn open_store(&self) -> Result<crate::store::Store, crate::store::StoreError> {
        crate::store::Store::open_with(&self.store_dir(), &self.store_data_dirs(), &self.node.name)
    }
}
