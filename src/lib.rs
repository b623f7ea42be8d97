//! campusmail: a campus mail appliance in one binary.
//!
//! The binary's `main.rs` only parses the command line; everything it calls
//! lives here, one module per concern. ARCHITECTURE.md is the map.
// No unsafe code, except the one allowed block that memory-maps sealed
// store segments (store/blob/mapped.rs, with its safety argument).
#![deny(unsafe_code)]

pub mod appliance;
pub mod auth;
pub mod config;
pub mod control;
pub mod directory;
pub mod engine;
pub mod fsutil;
pub mod mailbox;
pub mod mime;
pub mod ops;
pub mod replication;
pub mod store;
pub mod tls;
pub mod web;
