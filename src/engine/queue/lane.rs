//! The queue's two lanes (R4): everyday mail and bulk mail never share workers.
//!
//! Owns: the classification rule, which reads only `[queue]` in
//! appliance.toml and the envelope.
//!
//! Invariant: a message's lane is decided once, when it enters the queue,
//! and stored in its envelope; it never moves between lanes.

use serde::{Deserialize, Serialize};

use crate::config::QueueConfig;
use crate::directory::address::normalize_address;

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum QueueLane {
    #[default]
    Normal,
    Bulk,
}

impl QueueLane {
    pub const ALL: [QueueLane; 2] = [QueueLane::Normal, QueueLane::Bulk];

    pub fn name(self) -> &'static str {
        match self {
            QueueLane::Normal => "normal",
            QueueLane::Bulk => "bulk",
        }
    }

    pub fn index(self) -> usize {
        match self {
            QueueLane::Normal => 0,
            QueueLane::Bulk => 1,
        }
    }
}

impl std::fmt::Display for QueueLane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Chooses the lane: an explicit request wins (console bulk mail); then many
/// recipients or a designated bulk sender (by envelope sender or login)
/// make it bulk; everything else is normal.
pub fn classify(
    config: &QueueConfig,
    sender: &str,
    login: Option<&str>,
    recipients: usize,
    requested: Option<QueueLane>,
) -> QueueLane {
    if let Some(lane) = requested {
        return lane;
    }
    if recipients > config.bulk_recipient_threshold {
        return QueueLane::Bulk;
    }
    let is_bulk_sender = |address: &str| {
        normalize_address(address).is_some_and(|a| {
            config
                .bulk_senders
                .iter()
                .any(|b| normalize_address(b).as_deref() == Some(a.as_str()))
        })
    };
    if is_bulk_sender(sender) || login.is_some_and(is_bulk_sender) {
        return QueueLane::Bulk;
    }
    QueueLane::Normal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_rules() {
        let config = QueueConfig {
            bulk_recipient_threshold: 3,
            bulk_senders: vec!["Notice@Campus.test".into()],
            ..QueueConfig::default()
        };
        assert_eq!(
            classify(&config, "a@campus.test", None, 3, None),
            QueueLane::Normal
        );
        assert_eq!(
            classify(&config, "a@campus.test", None, 4, None),
            QueueLane::Bulk
        );
        assert_eq!(
            classify(&config, "notice@campus.test", None, 1, None),
            QueueLane::Bulk
        );
        assert_eq!(
            classify(&config, "other@x.test", Some("notice@campus.test"), 1, None),
            QueueLane::Bulk
        );
        assert_eq!(classify(&config, "", None, 1, None), QueueLane::Normal);
        assert_eq!(
            classify(&config, "a@campus.test", None, 500, Some(QueueLane::Normal)),
            QueueLane::Normal
        );
    }
}
