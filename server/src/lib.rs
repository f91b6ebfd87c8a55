//! auuction: a real-time fundraising auction platform for a congregation's yearly auction.
//!
//! The tree follows the request: `http` (JSON) and `pages` (HTML) are thin edges that call
//! the workflows in `services`, which use the `store` and the `engine`; the `domain` core is
//! plain Rust with no I/O. Shared leaves (`state`, `error`, `session`, `limits`,
//! `templates`) import no edge; `app` assembles everything. See docs/ARCHITECTURE.md.

pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub use auuction_domain as domain;
pub mod engine;
pub mod error;
pub mod http;
pub mod limits;
pub mod live;
pub mod mail;
pub mod media;
pub mod metrics;
pub mod pages;
pub mod passwords;
pub mod scheduler;
pub mod services;
pub mod session;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod templates;

pub use app::Application;
pub use config::Config;
pub use state::AppState;
