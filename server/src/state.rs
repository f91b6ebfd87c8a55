//! The state every handler, service and background task is given.
//!
//! Handles only: each field is a pool, an `Arc` or a cheap handle, so cloning the state per
//! request costs a few reference counts. It imports no edge (http, pages, ws) and not the
//! assembly (`app`), which builds it: everything may depend on the state, and the state on
//! nothing that depends on it.

use std::sync::Arc;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tower_sessions_sqlx_store::PostgresStore;

use crate::{
    clock::Clock, config::Config, engine::Engine, known_sessions::KnownSessions,
    limits::RateLimits, mail::Mailer, metrics::Metrics, sms::SmsProvider, templates::Templates,
};

/// Everything a handler needs, cheap to clone (every field is an Arc or a pool handle).
#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub config: Arc<Config>,
    pub mailer: Arc<Mailer>,
    /// Text messages, when a provider is configured (`SMS_*`).
    pub sms: Option<Arc<dyn SmsProvider>>,
    pub templates: Arc<Templates>,
    pub limits: Arc<RateLimits>,
    pub sessions: PostgresStore,
    /// Sessions verified recently, trusted for reads while the database is unreachable.
    pub known_sessions: Arc<KnownSessions>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    /// The bid engine: sharded books, journal, committed read model.
    pub engine: Engine,
    /// Cancelled when the server shuts down; long-lived tasks watch it.
    pub shutdown: CancellationToken,
}

impl AppState {
    /// The time now by the state's clock (tests swap the clock).
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }
}
