//! What the tests share: the app under test, its clients and the data they start from.

mod app;
mod ws;

pub use app::*;
pub use ws::*;
