//! Store management commands (`campusmail store ...`): run inside the
//! mailbox role through its `store.sock` control socket while it runs, or
//! directly on the store files when it is stopped. One code path either way.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::stats::human_bytes;
use super::{RebalanceReport, Store, StoreError};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum StoreCommand {
    /// `json`: machine-readable, for scripts and benchmarks.
    Stats {
        json: bool,
    },
    Fsck {
        repair: bool,
    },
    /// Compact sealed segments with at least this share of garbage.
    Compact {
        min_garbage_percent: u64,
    },
    Rebalance,
    Drain {
        dir: PathBuf,
    },
    Undrain {
        dir: PathBuf,
    },
}

/// Runs `command`; the text is what the admin reads. An fsck that finds
/// problems it did not repair is an error (non-zero exit for scripts).
pub fn execute(store: &Store, command: &StoreCommand) -> Result<String, StoreError> {
    match command {
        StoreCommand::Stats { json: false } => Ok(store.stats()?.to_string()),
        StoreCommand::Stats { json: true } => serde_json::to_string_pretty(&store.stats()?)
            .map(|mut s| {
                s.push('\n');
                s
            })
            .map_err(|e| StoreError::Corrupt(format!("encoding stats: {e}"))),
        StoreCommand::Fsck { repair } => {
            let report = store.fsck(*repair)?;
            let text = report.to_string();
            if report.is_clean() || *repair {
                Ok(text)
            } else {
                Err(StoreError::Corrupt(text))
            }
        }
        StoreCommand::Compact {
            min_garbage_percent,
        } => {
            let r = store.compact(*min_garbage_percent)?;
            Ok(format!(
                "compacted {} segment(s): {} blob(s) ({}) copied, {} given back\n",
                r.segments,
                r.moved_blobs,
                human_bytes(r.moved_bytes),
                human_bytes(r.freed_bytes)
            ))
        }
        StoreCommand::Rebalance => Ok(describe(&store.rebalance()?, None)),
        StoreCommand::Drain { dir } => {
            let r = store.drain(dir)?;
            Ok(describe(&r, Some(dir)))
        }
        StoreCommand::Undrain { dir } => {
            store.undrain(dir)?;
            Ok(format!(
                "{} takes new mail again; run `campusmail store rebalance` to give it its share\n",
                dir.display()
            ))
        }
    }
}

fn describe(r: &RebalanceReport, drained: Option<&PathBuf>) -> String {
    let mut s = format!(
        "moved {} blob(s) ({}); compacted {} segment(s), {} given back\n",
        r.moved_blobs,
        human_bytes(r.moved_bytes),
        r.compaction.segments,
        human_bytes(r.compaction.freed_bytes)
    );
    if let (Some(dir), Some(left)) = (drained, r.left_on_drained) {
        if left == 0 {
            s.push_str(&format!(
                "{} is empty: remove it from appliance.toml and restart\n",
                dir.display()
            ));
        } else {
            s.push_str(&format!(
                "{} still holds {left} segment(s); run the drain again\n",
                dir.display()
            ));
        }
    }
    s
}
