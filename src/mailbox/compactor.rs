//! The background compactor: every `[store] compact_every` it compacts the
//! sealed segments whose garbage passed `compact_garbage_percent`, so
//! deleted mail gives its space back without an admin.
//!
//! Runs on its own thread; compaction never blocks reads and holds up a
//! delivery only while it appends one batch to the same disk (see
//! store/blob/relocate.rs). A failed pass is logged and retried next time.

use std::sync::Arc;

use crate::config::StoreConfig;
use crate::store::Store;

pub fn start(store: Arc<Store>, config: &StoreConfig) -> std::io::Result<()> {
    let every = config.compact_every.0;
    let percent = config.compact_garbage_percent;
    std::thread::Builder::new()
        .name("compactor".into())
        .spawn(move || loop {
            std::thread::sleep(every);
            if let Err(e) = store.compact(percent) {
                tracing::error!(error = %e, "background compaction failed; retrying next time");
            }
        })?;
    Ok(())
}
