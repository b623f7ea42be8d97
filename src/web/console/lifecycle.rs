//! Running the classes' lifecycle rule (`directory::lifecycle`): in the
//! background (a thread of the mailbox role: at start, then hourly) and
//! from the console's "check now" button.
//!
//! Owns: the `lifecycle` thread.
//!
//! Invariants:
//! - Each user the rule disables has their webmail session ended and one
//!   audit line (`user_disable`, outcome `lifecycle_rule`), written by the
//!   admin who pressed the button or by `system` for the background run.
//! - Both nodes of a pair run it; a user disabled on both is the same
//!   record, so the two writes agree.
//!
//! Reads untrusted input: no.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::audit::AuditEntry;
use super::Console;
use crate::directory::DirectoryError;
use crate::web::webmail::Webmail;

/// How often the background run looks again.
pub const INTERVAL: Duration = Duration::from_secs(3600);
/// The admin name of the background run in the audit log.
pub const SYSTEM: &str = "system";

impl Console {
    /// Disables the users past their class's grace period today (UTC);
    /// returns their addresses.
    pub fn lifecycle_check(&self, admin: &str, ip: IpAddr) -> Result<Vec<String>, DirectoryError> {
        let now = chrono::Utc::now();
        let disabled = self.directory.disable_due(now.date_naive())?;
        for address in &disabled {
            let ended = self.mail_sessions.end_all_sessions_of(address);
            let entry = AuditEntry::new(
                now.timestamp(),
                admin,
                ip,
                "user_disable",
                address,
                "lifecycle_rule",
            );
            if let Err(err) = self.audit.record(&entry) {
                tracing::error!(%err, user = %address, "audit log write failed");
            }
            tracing::info!(user = %address, ended, "lifecycle rule disabled a user");
        }
        Ok(disabled)
    }
}

/// Starts the background run.
pub fn start(webmail: Arc<Webmail>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("lifecycle".into())
        .spawn(move || loop {
            let local = IpAddr::from([127, 0, 0, 1]);
            if let Err(err) = webmail.console().lifecycle_check(SYSTEM, local) {
                tracing::error!(%err, "the classes' lifecycle check failed; it runs again in an hour");
            }
            std::thread::sleep(INTERVAL);
        })?;
    Ok(())
}
