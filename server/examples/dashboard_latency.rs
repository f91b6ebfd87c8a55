//! Measures how soon the managers' live dashboard shows a committed bid: the time from a
//! bid's acknowledgement (its `bid_result` arriving) to the first `dashboard` frame whose
//! `bidsTotal` counts it.
//!
//!     cargo run --release -p auuction --example dashboard_latency -- [bids] [per_second]
//!
//! Defaults: 300 bids at 10 a second from one bidder's socket over 50 items, while a
//! manager's socket follows `dashboard:a_<n>`; the server runs in this process against a
//! scratch database `auuction_dashboard_bench` on DATABASE_URL's server (dropped first).
//! Prints p50, p90, p99 and the maximum. The frame goes out every 500 ms, so the expected
//! mean is about 250 ms and the worst about 500 ms plus one frame's build.

use std::time::{Duration, Instant};

use auuction::{config::Config, domain::Role, passwords, store, Application};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

const PASSWORD: &str = "bench-password-bench";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let bids: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(300);
    let per_second: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(10);
    let base = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut url = url::Url::parse(&base)?;
    url.set_path("/auuction_dashboard_bench");
    let url = url.to_string();
    {
        use sqlx::migrate::MigrateDatabase;
        if sqlx::Postgres::database_exists(&url).await? {
            sqlx::Postgres::force_drop_database(&url).await?;
        }
    }
    let db = store::connect_and_migrate(&url).await?;
    let hash = passwords::hash(PASSWORD.to_string()).await?;
    for (email, role) in [
        ("manager@bench.example", Role::Manager),
        ("bidder@bench.example", Role::Bidder),
    ] {
        store::users::insert(
            &db,
            store::users::NewUser {
                email,
                name: "Bench",
                password_hash: &hash,
                roles: &auuction::domain::Roles::new(vec![role]),
                preferences: store::users::Preferences {
                    email: false,
                    sms: false,
                },
                verified: true,
            },
        )
        .await?
        .ok_or_else(|| anyhow::anyhow!("user exists"))?;
    }
    let auction: i64 = sqlx::query_scalar(
        "INSERT INTO auctions (year, name, registration_open_at, catalog_publish_at, bidding_open_at, bidding_close_at,
             reoffer_open_at, reoffer_close_at, settlement_open_at, state)
         VALUES (2030, 'Bench', now() - interval '3 days', now() - interval '2 days', now() - interval '1 day',
                 now() + interval '1 day', now() + interval '2 days', now() + interval '3 days', now() + interval '4 days', 'bidding')
         RETURNING id",
    )
    .fetch_one(&db)
    .await?;
    let items: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO items (auction_id, donor_id, type, title, category_id, opening_min_bid, status)
         SELECT $1, 1, 'competitive', 'Lot ' || n, 3, 1000, 'published' FROM generate_series(1, 50) n
         RETURNING id",
    )
    .bind(auction)
    .fetch_all(&db)
    .await?;

    let dir = std::env::temp_dir().join(format!("auuction-dashboard-{}", std::process::id()));
    let mut config = Config::for_tests(&url, &dir);
    config.rate_limits.write_per_account = 1_000_000;
    config.rate_limits.write_per_ip = 1_000_000;
    let app = Application::build_with_pool(config, db.clone()).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run(false));

    let mut manager = socket(&base, "manager@bench.example").await?;
    let mut bidder = socket(&base, "bidder@bench.example").await?;
    manager
        .send(Message::Text(
            json!({ "type": "subscribe", "topics": [format!("dashboard:a_{auction}")] })
                .to_string()
                .into(),
        ))
        .await?;

    // The manager's frames, each with when it arrived, read on their own task.
    let (frames_tx, mut frames) = tokio::sync::mpsc::unbounded_channel::<(Instant, u64)>();
    tokio::spawn(async move {
        // Pings (the server's heartbeat) and other non-text messages are skipped, not the end.
        while let Some(Ok(message)) = manager.next().await {
            let Message::Text(text) = message else {
                continue;
            };
            let Ok(m) = serde_json::from_str::<Value>(text.as_str()) else {
                continue;
            };
            if m["type"] == "dashboard" {
                let _ = frames_tx.send((Instant::now(), m["bidsTotal"].as_u64().unwrap_or(0)));
            }
        }
    });

    // One bid at a time, each the item's next minimum; (acknowledged at, bids so far).
    let mut acked: Vec<(Instant, u64)> = Vec::new();
    // Whole dollars, each the same bidder raising its own maximum by $1: always accepted.
    let mut maximums = vec![10u64; items.len()];
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / per_second.max(1)));
    for n in 0..bids {
        tick.tick().await;
        let slot = n % items.len();
        let frame = json!({ "type": "bid", "ref": n.to_string(), "itemId": format!("it_{}", items[slot]), "amount": maximums[slot] });
        bidder.send(Message::Text(frame.to_string().into())).await?;
        loop {
            let Some(Ok(message)) = bidder.next().await else {
                anyhow::bail!("the bidder's socket closed");
            };
            let Message::Text(text) = message else {
                continue;
            };
            let m: Value = serde_json::from_str(text.as_str())?;
            if m["type"] == "bid_result" && m["ref"].as_str() == Some(n.to_string().as_str()) {
                anyhow::ensure!(m["status"] == 201, "bid refused: {m}");
                acked.push((Instant::now(), acked.len() as u64 + 1));
                maximums[slot] += 1;
                break;
            }
        }
    }
    // Frames until the last bid shows.
    let mut seen: Vec<(Instant, u64)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen
        .last()
        .is_none_or(|(_, total)| (*total as usize) < bids)
        && Instant::now() < deadline
    {
        match tokio::time::timeout(Duration::from_secs(1), frames.recv()).await {
            Ok(Some(f)) => seen.push(f),
            _ => continue,
        }
    }
    while let Ok(f) = frames.try_recv() {
        seen.push(f);
    }
    seen.sort_by_key(|(at, _)| *at);

    let mut delays: Vec<Duration> = acked
        .iter()
        .filter_map(|(at, count)| {
            seen.iter()
                .find(|(_, total)| total >= count)
                // A frame may count the bid before its ack reaches the bidder: no delay.
                .map(|(shown, _)| shown.saturating_duration_since(*at))
        })
        .collect();
    anyhow::ensure!(
        delays.len() == acked.len(),
        "{} of {} bids never showed on the dashboard (its last frame counted {})",
        acked.len() - delays.len(),
        acked.len(),
        seen.last().map_or(0, |(_, total)| *total)
    );
    delays.sort();
    let at =
        |q: f64| delays[((delays.len() as f64 * q).ceil() as usize).clamp(1, delays.len()) - 1];
    println!(
        "dashboard shows a committed bid after: p50 {:?}  p90 {:?}  p99 {:?}  max {:?}  ({} bids at {}/s, {} frames)",
        at(0.50),
        at(0.90),
        at(0.99),
        delays[delays.len() - 1],
        delays.len(),
        per_second,
        seen.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A socket signed in as `email` (API login, bearer token).
async fn socket(base: &str, email: &str) -> anyhow::Result<Socket> {
    let login: Value = reqwest::Client::new()
        .post(format!("{base}/api/auth/login"))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await?
        .json()
        .await?;
    let token = login["token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("login failed: {login}"))?;
    let mut request = format!("{}/ws", base.replacen("http", "ws", 1)).into_client_request()?;
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    let (socket, _) = tokio_tungstenite::connect_async(request).await?;
    Ok(socket)
}
