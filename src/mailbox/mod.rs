//! The mailbox role: directory, message store, LMTP local delivery, web.
pub mod lmtp;
