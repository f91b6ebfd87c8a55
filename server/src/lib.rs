//! auuction: a real-time fundraising auction platform for a congregation's yearly auction.
//!
//! The tree follows the request: `http` (JSON), `pages` (HTML) and `live` (WebSocket) are
//! thin edges; the HTTP ones call the workflows in `services`, which use the `store`; bids
//! go to the `engine`, which reaches storage and sockets only through its ports. The
//! `domain` rules are a crate of their own, with no I/O. Shared leaves (`state`, `error`,
//! `session`, `limits`, `templates`) import no edge; `app` assembles everything. See
//! docs/ARCHITECTURE.md (and `tests/it/architecture.rs`, which checks these rules).

pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub use auuction_domain as domain;
pub mod engine;
pub mod error;
pub mod http;
pub mod known_sessions;
pub mod limits;
pub mod live;
pub mod local_time;
pub mod mail;
pub mod media;
pub mod metrics;
pub mod notify;
pub mod pages;
pub mod passwords;
pub mod scheduler;
pub mod services;
pub mod session;
pub mod sms;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod templates;

pub use app::Application;
pub use config::Config;
pub use state::AppState;
