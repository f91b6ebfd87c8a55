//! Workflows shared by the API and the pages: one module per concern.
//!
//! A service takes the state, the [`Actor`](crate::session::Actor) acting (never an
//! extractor or a request) and plain inputs, checks the rules (`crate::domain`), writes
//! through the store in one transaction (audited where staff override), and returns an
//! [`AppResult`](crate::error::AppResult). The edges only choose JSON or HTML: the rules
//! and the audit trail are the same whether a donor uses the pages or a script. Nothing
//! here imports an edge (`http`, `pages`, `ws`) or the assembly (`app`).

pub mod accounts;
pub mod auctions;
pub mod catalog;
pub mod dashboard;
pub mod events;
pub mod images;
pub mod item_view;
pub mod items;
pub mod notifications;
pub mod reoffer;
pub mod users;
