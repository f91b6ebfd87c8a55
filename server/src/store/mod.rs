//! sqlx queries, grouped by table family. Nothing here knows about HTTP.

pub mod auctions;
pub mod audit;
pub mod categories;
pub mod commitments;
pub mod events;
pub mod item_images;
pub mod items;
pub mod notifications;
pub mod reoffer;
pub mod tokens;
pub mod users;
pub mod winners;

use sqlx::{postgres::PgPoolOptions, PgPool};

/// Whether a database error means the database cannot be reached or used right now (an
/// outage), rather than a refusal of this request or a bug: the pool found no connection,
/// the connection broke, or Postgres ended the session (a FATAL error: shutting down,
/// starting up, not accepting connections, out of connection slots) or named a connection
/// problem (SQLSTATE classes 08, 53 and 57P).
pub fn is_outage(err: &sqlx::Error) -> bool {
    use sqlx::postgres::{PgDatabaseError, PgSeverity};
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let fatal = db
                .try_downcast_ref::<PgDatabaseError>()
                .is_some_and(|e| matches!(e.severity(), PgSeverity::Fatal | PgSeverity::Panic));
            fatal
                || db.code().is_some_and(|c| {
                    c.starts_with("08") || c.starts_with("53") || c.starts_with("57P")
                })
        }
        _ => false,
    }
}

/// The migrations of `migrations/`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Connects to the database, creating it first when it does not exist (a fresh machine has
/// only the server), then applies pending migrations.
pub async fn connect_and_migrate(database_url: &str) -> anyhow::Result<PgPool> {
    use anyhow::Context;
    use sqlx::migrate::MigrateDatabase;
    if !sqlx::Postgres::database_exists(database_url)
        .await
        .context("checking the database exists")?
    {
        tracing::info!("creating database");
        // Two processes starting at once may race to create it; the loser's error is harmless.
        if let Err(e) = sqlx::Postgres::create_database(database_url).await {
            if !sqlx::Postgres::database_exists(database_url)
                .await
                .unwrap_or(false)
            {
                return Err(e).context("creating the database");
            }
        }
    }
    // A statement that runs longer than this fails on the server, so its outcome is definite
    // (the bid journal never abandons a write that might still commit). Generous, so the
    // start-up replay of millions of bids fits well within it.
    let options: sqlx::postgres::PgConnectOptions = database_url
        .parse::<sqlx::postgres::PgConnectOptions>()
        .context("DATABASE_URL")?
        .options([("statement_timeout", "30s")]);
    let pool = PgPoolOptions::new()
        // Request handlers, book loads and key lookups. The bid journals open one connection
        // each outside the pool (one per shard): with Postgres' default max_connections
        // (100) there is room for several nodes.
        .max_connections(20)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect_with(options)
        .await
        .context("connecting to the database")?;
    MIGRATOR.run(&pool).await.context("applying migrations")?;
    Ok(pool)
}
