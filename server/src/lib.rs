//! auuction: a real-time fundraising auction platform for a congregation's yearly auction.
//!
//! The tree follows the request: `http` and `pages` (the edges) call `accounts` and the
//! `store`; the `domain` core is plain Rust with no I/O. See docs/ARCHITECTURE.md.

pub mod accounts;
pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod demo_catalog;
pub mod demo_pictures;
pub use auuction_domain as domain;
pub mod engine;
pub mod http;
pub mod mail;
pub mod media;
pub mod metrics;
pub mod pages;
pub mod passwords;
pub mod scheduler;
pub mod store;
pub mod telemetry;
pub mod ws;

pub use app::{AppState, Application};
pub use config::Config;
