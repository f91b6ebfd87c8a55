//! `auuction demo`: a fresh demo database with an auction whose bidding window is open,
//! demo logins of every role, then the server. It grows as the product does.
//!
//! catalog.rs holds the demo's items, pictures.rs draws their pictures.

pub mod catalog;
pub mod pictures;

use anyhow::Context;
use chrono::{Duration, Utc};
use url::Url;

use crate::{
    config::Config,
    domain::{Calendar, Role, Roles},
    passwords,
    store::{self, auctions, users},
    Application,
};

/// Every demo account uses this password (printed at start; demo only).
pub const DEMO_PASSWORD: &str = "demo-password";

/// The demo logins: (email, name, roles).
pub const DEMO_USERS: &[(&str, &str, &[Role])] = &[
    (
        "admin@demo.auuction.org",
        "Ada Admin",
        &[Role::Admin, Role::Bidder],
    ),
    (
        "manager@demo.auuction.org",
        "Martin Manager",
        &[Role::Manager, Role::Bidder],
    ),
    (
        "host@demo.auuction.org",
        "Hannah Host",
        &[Role::Donor, Role::Bidder],
    ),
    (
        "finance@demo.auuction.org",
        "Frank Finance",
        &[Role::Finance],
    ),
    ("bidder@demo.auuction.org", "Betty Bidder", &[Role::Bidder]),
    ("bidder2@demo.auuction.org", "Bob Bidder", &[Role::Bidder]),
];

/// Derives the demo database's URL: same server, database `auuction_demo`.
fn demo_database_url(config: &Config, explicit: Option<String>) -> anyhow::Result<String> {
    if let Some(url) = explicit {
        return Ok(url);
    }
    let mut url = Url::parse(&config.database_url).context("DATABASE_URL")?;
    url.set_path("/auuction_demo");
    Ok(url.to_string())
}

/// Drops and recreates the demo database so every demo starts the same.
async fn reset_database(url: &str) -> anyhow::Result<()> {
    use sqlx::migrate::MigrateDatabase;
    if sqlx::Postgres::database_exists(url).await? {
        sqlx::Postgres::force_drop_database(url)
            .await
            .context("dropping the old demo database")?;
    }
    Ok(())
}

pub async fn run(mut config: Config, database_url: Option<String>) -> anyhow::Result<()> {
    let url = demo_database_url(&config, database_url)?;
    reset_database(&url).await?;
    config.database_url = url;
    let db = store::connect_and_migrate(&config.database_url).await?;
    seed(&db, &config.media_dir).await?;
    let app = Application::build_with_pool(config, db).await?;
    spawn_bot(app.state().clone());
    let base = app.state().config.base_url.clone();
    println!("\n  auuction demo is running at {base}\n");
    println!("  Log in with any of these (password: {DEMO_PASSWORD}):");
    for (email, name, roles) in DEMO_USERS {
        let roles: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        println!("    {email:<30} {name:<16} {}", roles.join(", "));
    }
    println!(
        "\n  Emails are written to {}\n  Press Ctrl-C to stop.\n",
        app.state().config.mail_dir.display()
    );
    app.run(true).await
}

/// Loads the demo data into an empty, migrated database; pictures go under `media_dir`.
pub async fn seed(db: &sqlx::PgPool, media_dir: &std::path::Path) -> anyhow::Result<()> {
    let hash = passwords::hash(DEMO_PASSWORD.to_string()).await?;
    for (email, name, roles) in DEMO_USERS {
        users::insert(
            db,
            users::NewUser {
                email,
                name,
                password_hash: &hash,
                roles: &Roles::new(roles.to_vec()),
                preferences: users::Preferences {
                    email: true,
                    sms: false,
                },
                verified: true,
            },
        )
        .await?;
    }
    // Bidding opened an hour ago and closes in two hours, so the demo is live right away.
    let now = Utc::now();
    let calendar = Calendar {
        registration_open_at: now - Duration::days(14),
        catalog_publish_at: now - Duration::days(7),
        bidding_open_at: now - Duration::hours(1),
        bidding_close_at: now + Duration::hours(2),
        reoffer_open_at: now + Duration::hours(3),
        reoffer_close_at: now + Duration::days(2),
        settlement_open_at: now + Duration::days(3),
    };
    let fields = auctions::AuctionFields {
        year: chrono::Datelike::year(&now),
        name: "Spring Fundraising Auction (demo)".into(),
        soft_close_seconds: 120,
        hard_close_at: Some(calendar.bidding_close_at + Duration::minutes(30)),
        calendar,
    };
    let auction = auctions::insert(db, &fields, fields.calendar.state_at(now))
        .await?
        .context("the demo auction's year is taken")?;
    let host: i64 =
        sqlx::query_scalar("SELECT id FROM users WHERE email = 'host@demo.auuction.org'")
            .fetch_one(db)
            .await?;
    for (n, (title, description, category, opening)) in DEMO_LOTS.iter().enumerate() {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO items (auction_id, donor_id, type, title, description, category_id, opening_min_bid, status)
             VALUES ($1, $2, 'competitive', $3, $4, $5, $6, 'published') RETURNING id",
        )
        .bind(auction.id)
        .bind(host)
        .bind(title)
        .bind(description)
        .bind(category)
        .bind(opening)
        .fetch_one(db)
        .await?;
        crate::demo::catalog::add_picture(db, media_dir, crate::domain::ItemId(id), title, n)
            .await?;
    }
    // The quilt and the cabin are the home page's first featured lots.
    sqlx::query("UPDATE items SET featured = true WHERE title IN ('Handmade Quilt', 'Week at the Mountain Cabin')")
        .execute(db)
        .await?;
    crate::demo::catalog::load(
        db,
        auction.auction_id(),
        crate::domain::UserId(host),
        media_dir,
    )
    .await?;
    Ok(())
}

/// Competitive lots of the demo: (title, description, category id, opening bid in cents,
/// written dollars_cents).
#[allow(clippy::inconsistent_digit_grouping)]
const DEMO_LOTS: &[(&str, &str, i64, i64)] = &[
    (
        "Handmade Quilt",
        "A queen-size quilt in blues and greens, pieced by the Tuesday sewing circle.",
        3,
        150_00,
    ),
    (
        "Lakeside Dinner for Six",
        "A three-course summer dinner on the Okafors' porch by the lake.",
        1,
        300_00,
    ),
    (
        "Week at the Mountain Cabin",
        "Seven nights in a two-bedroom cabin with a wood stove and a view.",
        2,
        500_00,
    ),
    (
        "Piano Lessons (Ten Weeks)",
        "Ten half-hour lessons for any age with our music director.",
        4,
        200_00,
    ),
    (
        "Homemade Pies, One a Month",
        "A pie of the season every month for a year, delivered.",
        3,
        120_00,
    ),
];

/// Makes the demo look alive: every few seconds a demo bidder bids the next minimum on a
/// random lot, through the same engine as everyone else, until the lot passes a cap.
pub fn spawn_bot(state: crate::AppState) {
    tokio::spawn(async move {
        let bidders: Vec<(i64, i32)> = match sqlx::query_as(
            "SELECT id, paddle_number FROM users WHERE email IN ('bidder@demo.auuction.org', 'bidder2@demo.auuction.org')",
        )
        .fetch_all(&state.db)
        .await
        {
            Ok(b) => b,
            Err(e) => return tracing::warn!(error = %e, "demo bot cannot start"),
        };
        let items: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM items WHERE type = 'competitive' AND status = 'published'",
        )
        .fetch_all(&state.db)
        .await
        .unwrap_or_default();
        if bidders.is_empty() || items.is_empty() {
            return;
        }
        let mut turn = 0usize;
        loop {
            let pause = 3 + (rand::random::<u64>() % 4);
            tokio::select! {
                _ = state.shutdown.cancelled() => return,
                _ = tokio::time::sleep(std::time::Duration::from_secs(pause)) => {}
            }
            turn += 1;
            let item = crate::domain::ItemId(items[rand::random::<usize>() % items.len()]);
            let (bidder, paddle) = bidders[turn % bidders.len()];
            let Some(live) = state.engine.live_state(item).await else {
                continue;
            };
            if live.next_minimum.0 > live.opening.0 * 4 {
                continue;
            }
            let _ = state
                .engine
                .place_bid(crate::engine::BidInput {
                    item,
                    bidder: crate::domain::UserId(bidder),
                    paddle,
                    amount: live.next_minimum,
                    max_proxy: None,
                    idempotency_key: None,
                })
                .await;
        }
    });
}
