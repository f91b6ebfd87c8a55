//! The WebSocket edge: `/ws`. protocol.rs says what the messages are, hub.rs who hears
//! what, connection.rs runs one socket. See docs/protocol.md.

pub mod connection;
pub mod hub;
pub mod protocol;

pub use connection::router;
