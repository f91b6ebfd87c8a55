//! The domain core: plain Rust, no I/O, no async. Edges (http, ws, store, engine) call in;
//! nothing here calls out.

pub mod bidding;
pub mod calendar;
pub mod catalog;
pub mod hosted_event;
pub mod ids;
pub mod money;
pub mod roles;
pub mod validate;

pub use calendar::{AuctionState, Calendar};
pub use ids::{AuctionId, CategoryId, CommitmentId, EventId, ItemId, UserId};
pub use money::Cents;
pub use roles::{Role, Roles};
