//! `auuction demo`: a fresh demo database with an auction whose bidding window is open,
//! demo logins of every role, then the server. It grows as the product does.

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
    seed(&db).await?;
    let app = Application::build_with_pool(config, db).await?;
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

/// Loads the demo data into an empty, migrated database.
pub async fn seed(db: &sqlx::PgPool) -> anyhow::Result<()> {
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
    auctions::insert(db, &fields, fields.calendar.state_at(now)).await?;
    Ok(())
}
