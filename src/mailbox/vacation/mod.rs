//! The auto-reply (vacation) of the mailbox role: after a message is
//! delivered to a user whose auto-reply is on, an answer goes back to the
//! sender through the engine, like any webmail mail (`mailbox::submission`).
//!
//! Owns: one worker thread and its bounded job queue. Local delivery only
//! looks at the user's settings and hands over the message's header
//! section; the rules, the once-per-period memory and the SMTP submission
//! run on the worker, so LMTP replies never wait for an auto-reply.
//!
//! Invariants:
//! - A reply is sent only after the message was stored, only when
//!   `rules::may_answer` allows it (RFC 3834 §2), and only once per sender
//!   per period: the claim (`Directory::claim_vacation_reply`) is made
//!   durable before the reply is submitted, so a crash means one reply too
//!   few, never one too many.
//! - The reply leaves from the null reverse path (RFC 3834 §3.3), so no
//!   bounce or other auto-reply ever answers it.
//! - A full job queue drops the job (logged): delivery is never slowed or
//!   failed by the auto-reply.
//!
//! Reads untrusted input: yes, delivered messages (see `rules`).

pub mod rules;

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use crate::config::Config;
use crate::directory::Directory;
use crate::mailbox::folders::is_bulk_lane;
use crate::mailbox::submission::{Submission, Submitter};
use crate::mime::header_section::field_value;
use rules::{build_reply, header_section, may_answer, Incoming, Skip};

/// Jobs waiting for the worker; more are dropped.
const QUEUE: usize = 1000;
/// Most of a message's header section the rules read.
const MAX_HEADER: usize = 64 * 1024;

struct Job {
    user: String,
    sender: String,
    header: Vec<u8>,
    bulk_lane: bool,
}

/// Hands delivered messages to the auto-reply worker.
pub struct Responder {
    directory: Arc<Directory>,
    jobs: SyncSender<Job>,
}

impl Responder {
    pub fn start(config: Arc<Config>, directory: Arc<Directory>) -> std::io::Result<Responder> {
        let (jobs, queue) = sync_channel(QUEUE);
        let worker = Worker {
            config,
            directory: directory.clone(),
        };
        std::thread::Builder::new()
            .name("vacation".into())
            .spawn(move || worker.run(queue))?;
        Ok(Responder { directory, jobs })
    }

    /// Called once `message` (prefixed with Return-Path) is stored for
    /// `mailbox`: queues an auto-reply check when the user's is on today.
    pub fn delivered(&self, mailbox: &str, message: &[u8]) {
        let sender = field_value(message, "Return-Path")
            .map(|v| {
                v.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
            .unwrap_or_default();
        if sender.is_empty() {
            return; // RFC 3834 §2: never to the null reverse path.
        }
        let active = match self.directory.user_settings(mailbox) {
            Ok(settings) => settings
                .vacation
                .is_active(chrono::Local::now().date_naive()),
            Err(e) => {
                tracing::warn!(error = %e, %mailbox, "auto-reply settings unreadable");
                false
            }
        };
        if !active {
            return;
        }
        let job = Job {
            user: mailbox.to_string(),
            sender,
            header: header_section(message, MAX_HEADER).to_vec(),
            bulk_lane: is_bulk_lane(message),
        };
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(job)) => {
                tracing::warn!(user = %job.user, "auto-reply queue full; this message gets no auto-reply")
            }
            Err(TrySendError::Disconnected(_)) => {
                tracing::error!("auto-reply worker is gone; no auto-replies until restart")
            }
        }
    }
}

struct Worker {
    config: Arc<Config>,
    directory: Arc<Directory>,
}

impl Worker {
    fn run(self, queue: Receiver<Job>) {
        for job in queue {
            if let Err(e) = self.answer(&job) {
                tracing::warn!(user = %job.user, error = %e, "auto-reply not sent");
            }
        }
    }

    fn answer(&self, job: &Job) -> Result<(), String> {
        let settings = self
            .directory
            .user_settings(&job.user)
            .map_err(|e| e.to_string())?;
        let vacation = settings.vacation;
        let incoming = Incoming {
            sender: &job.sender,
            header: &job.header,
            bulk_lane: job.bulk_lane,
        };
        let aliases: Vec<String> = self
            .directory
            .aliases()
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|(_, targets)| targets.contains(&job.user))
            .map(|(alias, _)| alias)
            .collect();
        if let Err(skip) = may_answer(&incoming, &job.user, &aliases) {
            log_skip(job, skip);
            return Ok(());
        }
        let now = chrono::Utc::now().timestamp();
        let period = i64::from(vacation.period_days) * 24 * 3600;
        let due = self
            .directory
            .claim_vacation_reply(&job.user, &job.sender, now, period)
            .map_err(|e| e.to_string())?;
        if let Err(e) = self.directory.prune_vacation_replies(&job.user, now) {
            tracing::warn!(error = %e, user = %job.user, "old auto-reply records not pruned");
        }
        if !due {
            tracing::info!(user = %job.user, sender = %job.sender, "no auto-reply: this sender was answered within the period");
            return Ok(());
        }
        let message = build_reply(
            &incoming,
            &job.user,
            &vacation,
            &self.config.node.hostname,
            now,
        );
        let submitter = Submitter::from_config(&self.config).map_err(|e| e.to_string())?;
        submitter
            .submit(&Submission {
                user: &job.user,
                sender: "",
                recipients: std::slice::from_ref(&job.sender),
                message: &message,
            })
            .map_err(|e| e.to_string())?;
        tracing::info!(user = %job.user, sender = %job.sender, "auto-reply sent");
        Ok(())
    }
}

fn log_skip(job: &Job, skip: Skip) {
    tracing::info!(user = %job.user, sender = %job.sender, reason = ?skip, "no auto-reply (RFC 3834 §2)");
}
