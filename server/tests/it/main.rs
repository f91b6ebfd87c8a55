//! The integration tests: the real app, started on port 0 against a fresh database for each
//! test (`#[sqlx::test]`), driven over HTTP and WebSocket like a client.
//!
//! One binary, one module per area, so the server is linked once and there is one place to
//! learn: start with `helpers/` ([`helpers::TestApp`] and its builder, the clients, the
//! fixtures). A new test goes into the module of its area; a new area is a new module here.
//!
//! Run one module, or one test, by its path:
//!
//! ```text
//! cargo test -p auuction --test it bids::
//! cargo test -p auuction --test it durability::the_database_stopping_mid_storm
//! ```
//!
//! Every test brings its own database and app, so they run in parallel; a test that needs
//! more than its app (`migrations`, `demo`, `durability`'s SIGKILL) makes and cleans up its
//! own databases or processes.

mod helpers;

mod architecture;
mod auctions;
mod auth;
mod bids;
mod catalog;
mod catalog_pages;
mod close;
mod console_pages;
mod demo;
mod deploy_files;
mod donor_pages;
mod durability;
mod events;
mod holes;
mod images;
mod item_page;
mod items;
mod live;
mod migrations;
mod notifications;
mod outages;
mod pages;
mod phases;
mod race;
mod reoffer;
mod reoffer_pages;
mod users;
