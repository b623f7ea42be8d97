//! The background purger: every hour it deletes for good the mail that has
//! been in Trash longer than `[mailbox] purge_trash_after` and in Junk
//! longer than `purge_junk_after` (R16: "Junk and Trash with auto-purge"),
//! or the periods set in the console's settings instead (read each pass,
//! so a change applies from the next pass on).
//!
//! Runs on its own thread in the mailbox role; a purge is ordinary
//! `Expunge` ops (`Store::purge_folder`), so it replicates like a user's
//! delete and both nodes purging the same message is harmless. A failed
//! pass is logged and retried next time. A duration of 0 turns a folder's
//! purge off. Each pass also forgets engine queue ids older than
//! `store::queue_refs`' keep time (they only guard retries).

use std::sync::Arc;
use std::time::Duration;

use crate::config::MailboxConfig;
use crate::directory::Directory;
use crate::store::folders::{JUNK, TRASH};
use crate::store::Store;

/// How often the purger looks.
const EVERY: Duration = Duration::from_secs(3600);

pub fn start(
    store: Arc<Store>,
    directory: Arc<Directory>,
    config: &MailboxConfig,
) -> std::io::Result<()> {
    let config = config.clone();
    std::thread::Builder::new()
        .name("purger".into())
        .spawn(move || loop {
            // A first pass soon after start, then hourly.
            std::thread::sleep(Duration::from_secs(60).min(EVERY));
            let now = directory.effective_settings(&config);
            purge_once(&store, &[(TRASH, now.purge_trash), (JUNK, now.purge_junk)]);
            let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
            match store.prune_queue_refs(now_ms) {
                Ok(0) => {}
                Ok(n) => tracing::info!(queue_ids = n, "forgot old engine queue ids"),
                Err(e) => tracing::warn!(error = %e, "cannot forget old engine queue ids"),
            }
            std::thread::sleep(EVERY.saturating_sub(Duration::from_secs(60)));
        })?;
    Ok(())
}

/// One pass over every folder with a rule.
pub fn purge_once(store: &Store, rules: &[(&str, Duration)]) {
    let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
    for (folder, after) in rules {
        if after.is_zero() {
            continue;
        }
        let after_ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
        let cutoff = now_ms.saturating_sub(after_ms);
        match store.purge_folder(folder, cutoff) {
            Ok(0) => {}
            Ok(n) => tracing::info!(folder, messages = n, "purged old mail"),
            Err(e) => {
                tracing::error!(folder, error = %e, "purging old mail failed; retrying next time")
            }
        }
    }
}
