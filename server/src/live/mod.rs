//! The live edge: `/ws`, WebSockets carrying prices, countdowns and bids (docs/protocol.md).
//!
//! - protocol.rs: every message on the wire, both ways;
//! - hub.rs: topics, subscribers and snapshots; the engine's publisher;
//! - outbox.rs: one connection's bounded, conflating queue; the engine's answer sink;
//! - session.rs: one connection's logic, without a socket;
//! - socket.rs: the upgrade (Origin, per-address cap) and the loop moving frames.

pub mod dashboard;
pub mod hub;
pub mod outbox;
pub mod protocol;
pub mod session;
pub mod socket;

pub use hub::Hub;
pub use socket::router;
