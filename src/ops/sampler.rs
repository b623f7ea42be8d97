//! The thread that takes a sample of this node every `[metrics]
//! sample_every` (one a minute by default) and keeps it (`samples`).
//!
//! Invariant: a failed measurement or write is logged and the loop goes
//! on; the sampler never stops mail or the web.

use std::sync::Arc;
use std::time::Duration;

use super::node_report::Monitor;

pub fn start(monitor: Arc<Monitor>) -> std::io::Result<()> {
    let every = Duration::from_secs(monitor.config().metrics.sample_every.as_secs().max(1));
    std::thread::Builder::new()
        .name("ops-sampler".into())
        .spawn(move || loop {
            std::thread::sleep(every);
            let report = monitor.report(super::unix_now());
            if let Err(err) = monitor.samples().record(report.sample()) {
                tracing::warn!(%err, "cannot keep a monitoring sample");
            }
        })
        .map(|_| ())
}
