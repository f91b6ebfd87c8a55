//! The engine's storage ports on Postgres: the journal's one statement
//! ([`PgJournalStore`]), books read back from the tables ([`PgBookSource`]) and stored
//! idempotency keys ([`PgKeyStore`]). The only place in `engine/` that speaks SQL.

mod books;
mod journal;
mod keys;

use std::sync::Arc;

use sqlx::PgPool;

pub use books::PgBookSource;
pub use journal::PgJournalStore;
pub use keys::PgKeyStore;

use crate::engine::ports::{Storage, StoreError};

/// The engine's storage on one Postgres database.
#[derive(Clone)]
pub struct PgStorage {
    db: PgPool,
    books: Arc<PgBookSource>,
    keys: Arc<PgKeyStore>,
}

impl PgStorage {
    pub fn new(db: PgPool) -> PgStorage {
        PgStorage {
            books: Arc::new(PgBookSource::new(db.clone())),
            keys: Arc::new(PgKeyStore::new(db.clone())),
            db,
        }
    }
}

impl Storage for PgStorage {
    type Journal = PgJournalStore;
    type Books = PgBookSource;
    type Keys = PgKeyStore;

    fn journal(&self) -> PgJournalStore {
        PgJournalStore::new(self.db.clone())
    }

    fn books(&self) -> Arc<PgBookSource> {
        self.books.clone()
    }

    fn keys(&self) -> Arc<PgKeyStore> {
        self.keys.clone()
    }
}

/// What a failed statement means for the engine. Not reaching Postgres (or Postgres ending
/// the session: `store::is_outage`) is `Unavailable`. Postgres refusing the data (SQLSTATE
/// classes 22, data exception, and 23, integrity constraint violation) is `Rejected`: the
/// statement was rolled back, nothing was written, and the same data fails again. Anything
/// else is `Internal`.
pub(crate) fn store_error(e: sqlx::Error) -> StoreError {
    if crate::store::is_outage(&e) {
        return StoreError::Unavailable(e.to_string());
    }
    match &e {
        sqlx::Error::Database(db)
            if db
                .code()
                .is_some_and(|c| c.starts_with("22") || c.starts_with("23")) =>
        {
            StoreError::Rejected(e.to_string())
        }
        sqlx::Error::Database(_) => StoreError::Internal(e.to_string()),
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
        _ => StoreError::Internal(e.to_string()),
    }
}
