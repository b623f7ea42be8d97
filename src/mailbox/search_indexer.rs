//! The background search indexer: posts the deliveries the store queued
//! (`store::search::indexer`), a batch at a time, so a delivery's own
//! transaction stays small.
//!
//! Runs on its own thread. When the queue is empty it looks again after
//! [`IDLE_PAUSE`]; under load each round takes everything queued since
//! the last one (up to [`BATCH`]), so the busier the server, the bigger
//! and cheaper the batches. Searches never wait for it: they read the
//! queue themselves. A failed round is logged and retried.

use std::sync::Arc;
use std::time::Duration;

use crate::store::Store;

/// Most deliveries one round indexes.
const BATCH: usize = 1_000;
/// How long the indexer waits when it found nothing, or less than a full
/// batch (so deliveries arriving meanwhile join the next one).
const IDLE_PAUSE: Duration = Duration::from_millis(200);
/// How long it waits after a failed round.
const ERROR_PAUSE: Duration = Duration::from_secs(10);

pub fn start(store: Arc<Store>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("search-indexer".into())
        .spawn(move || loop {
            match store.index_pending(BATCH) {
                Ok(n) if n >= BATCH => {}
                Ok(_) => std::thread::sleep(IDLE_PAUSE),
                Err(e) => {
                    tracing::error!(error = %e, "search indexing failed; retrying (searches still find the waiting mail)");
                    std::thread::sleep(ERROR_PAUSE);
                }
            }
        })?;
    Ok(())
}
