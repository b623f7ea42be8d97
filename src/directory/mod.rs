//! The directory: domains, users, aliases (mailbox role).
pub mod address;
pub mod password;
pub mod snapshot;
