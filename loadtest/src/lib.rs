//! auuction-loadtest: rehearse auction night against a running auuction server.
//!
//! The pure parts (statistics, the Zipf sampler, the post-run check, report rendering) are
//! library modules with unit tests; the scenarios drive a server over its public HTTP API and
//! WebSocket only, so the same tool works against a staging copy. See docs/load-testing.md.

pub mod api;
pub mod bidder;
pub mod check;
pub mod cli;
pub mod close_check;
pub mod report;
pub mod run;
pub mod scenarios;
pub mod setup;
pub mod stats;
pub mod ws;
pub mod zipf;
