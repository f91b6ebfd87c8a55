//! sqlx queries, grouped by table family. Nothing here knows about HTTP.

pub mod auctions;
pub mod audit;
pub mod categories;
pub mod events;
pub mod item_images;
pub mod items;
pub mod reoffer;
pub mod tokens;
pub mod users;

use sqlx::{postgres::PgPoolOptions, PgPool};

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
