//! Measures how long the bid engine takes to rebuild its books from Postgres at start.
//!
//!     cargo run --release -p auuction --example recovery -- [bids] [items]
//!
//! Defaults: 1,000,000 bids over 1,000 items, in a scratch database `auuction_recovery_bench`
//! on DATABASE_URL's server (dropped afterwards), each bid with its idempotency key (the web
//! client sends one with every bid). Prints the time of three rebuilds, and of three reads
//! of the keys' fingerprints, the other part of the engine's start.

use std::{sync::Arc, time::Instant};

use auuction::{
    engine::{
        gate::Gates,
        idempotency::Idempotency,
        pg::{PgBookSource, PgKeyStore},
        recovery,
    },
    store,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let bids: i64 = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let items: i64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1_000);
    let per_item = bids / items;
    let base = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut url = url::Url::parse(&base)?;
    url.set_path("/auuction_recovery_bench");
    let url = url.to_string();
    {
        use sqlx::migrate::MigrateDatabase;
        if sqlx::Postgres::database_exists(&url).await? {
            sqlx::Postgres::force_drop_database(&url).await?;
        }
    }
    let db = store::connect_and_migrate(&url).await?;
    let started = Instant::now();
    sqlx::query("INSERT INTO users (email, name, password_hash) SELECT 'b' || n || '@bench.example', 'Bidder ' || n, 'x' FROM generate_series(1, 2) n")
        .execute(&db)
        .await?;
    let auction: i64 = sqlx::query_scalar(
        "INSERT INTO auctions (year, name, registration_open_at, catalog_publish_at, bidding_open_at, bidding_close_at,
             reoffer_open_at, reoffer_close_at, settlement_open_at, state)
         VALUES (2030, 'Bench', now() - interval '3 days', now() - interval '2 days', now() - interval '1 day',
                 now() + interval '1 day', now() + interval '2 days', now() + interval '3 days', now() + interval '4 days', 'bidding')
         RETURNING id",
    )
    .fetch_one(&db)
    .await?;
    sqlx::query(
        "INSERT INTO items (auction_id, donor_id, type, title, category_id, opening_min_bid, status)
         SELECT $1, 1, 'competitive', 'Lot ' || n, 3, 10000, 'published' FROM generate_series(1, $2) n",
    )
    .bind(auction)
    .bind(items)
    .execute(&db)
    .await?;
    // Each item's bids alternate between two bidders and rise by $300, more than any
    // increment, so every one of them replays as accepted.
    sqlx::query(
        "INSERT INTO bids (item_id, bidder_id, amount, seq, created_at)
         SELECT i.id, 1 + (s % 2), 10000 + s * 30000, s, now() - interval '20 hours' + s * interval '1 millisecond'
           FROM items i CROSS JOIN generate_series(1, $1) s",
    )
    .bind(per_item)
    .execute(&db)
    .await?;
    // One key per bid, shaped as the web client's (`b-` and 24 hex digits), with an answer of
    // the usual size.
    sqlx::query(
        "INSERT INTO idempotency_keys (user_id, scope, key, request_hash, response_status, response_body)
         SELECT b.bidder_id, 'bid', 'b-' || left(md5(b.id::text), 24), sha256(b.id::text::bytea), 201,
                '{\"itemId\":\"it_' || b.item_id || '\",\"leading\":true,\"currentBid\":' || b.amount / 100
                || '.00,\"seq\":' || b.seq || ',\"leadingBidderId\":\"p_101\"}'
           FROM bids b",
    )
    .execute(&db)
    .await?;
    println!(
        "loaded {} bids over {items} items in {:.1} s",
        per_item * items,
        started.elapsed().as_secs_f64()
    );
    for run in 1..=3 {
        let gates = Gates::default();
        let t = Instant::now();
        let books = recovery::load_all(&PgBookSource::new(db.clone()), &gates, 2).await?;
        let replayed: u64 = books
            .iter()
            .flatten()
            .filter_map(|b| b.bidding.as_ref())
            .map(|b| b.book.last_seq())
            .sum();
        println!(
            "rebuild {run}: {replayed} bids in {:.0} ms",
            t.elapsed().as_secs_f64() * 1000.0
        );
    }
    for run in 1..=3 {
        let store = Arc::new(PgKeyStore::new(db.clone()));
        let keys = Idempotency::new(store.clone());
        let t = Instant::now();
        let n = keys.load_seen(store.as_ref()).await?;
        println!(
            "key fingerprints {run}: {n} keys in {:.0} ms",
            t.elapsed().as_secs_f64() * 1000.0
        );
    }
    db.close().await;
    {
        use sqlx::migrate::MigrateDatabase;
        sqlx::Postgres::force_drop_database(&url).await?;
    }
    Ok(())
}
