//! What the tests share: the app under test and how it is built ([`TestApp`]), its clients
//! ([`Browser`] over HTTP, [`Ws`] over WebSocket), the data tests start from, the test's
//! database seen from outside, and `auuction` run as a process.

mod app;
mod browser;
mod database;
mod fixtures;
mod process;
mod sms_api;
mod smtp;
mod ws;

pub use app::*;
pub use browser::*;
pub use database::*;
pub use fixtures::*;
pub use process::*;
pub use sms_api::*;
pub use smtp::*;
pub use ws::*;
