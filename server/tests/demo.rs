//! `auuction demo`: a newcomer's first look. It must start on its own database, with demo
//! logins of every role, an auction whose bidding window is open, and prices that move.

use serde_json::{json, Value};
use sqlx::PgPool;

#[tokio::test]
async fn the_demo_serves_a_live_auction_with_demo_logins_and_moving_prices() {
    let name = format!("auuction_demo_test_{}", uuid::Uuid::new_v4().simple());
    let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(&name);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_auuction"))
        .args(["demo", "--database-url", &url])
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("SECRET_KEY", "d".repeat(40))
        .env("MAIL_DIR", dir.join("mail"))
        .env("MEDIA_DIR", dir.join("media"))
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..300 {
        if reqwest::get(format!("{base}/healthz"))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let outcome = async {
        assert!(up, "the demo started");
        let current: Value = reqwest::get(format!("{base}/api/auctions/current"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(current["state"], "bidding");
        let home = reqwest::get(&base).await.unwrap().text().await.unwrap();
        assert!(home.contains(current["name"].as_str().unwrap()));

        // Every demo role can log in with the printed password.
        let client = reqwest::Client::new();
        for (email, role) in [
            ("admin@demo.auuction.org", "admin"),
            ("manager@demo.auuction.org", "manager"),
            ("host@demo.auuction.org", "donor"),
            ("finance@demo.auuction.org", "finance"),
            ("bidder@demo.auuction.org", "bidder"),
        ] {
            let r: Value = client
                .post(format!("{base}/api/auth/login"))
                .json(&json!({ "email": email, "password": auuction::demo::DEMO_PASSWORD }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert!(
                r["user"]["roles"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x == role),
                "{email}: {r}"
            );
        }

        // The demo bidders keep bidding: some lot's price moves within a few seconds.
        let db = PgPool::connect(&url).await.unwrap();
        let mut bids = 0i64;
        for _ in 0..150 {
            bids = sqlx::query_scalar("SELECT count(*) FROM bids")
                .fetch_one(&db)
                .await
                .unwrap();
            if bids > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(bids > 0, "prices move in the demo");
        let item: i64 = sqlx::query_scalar("SELECT item_id FROM bids LIMIT 1")
            .fetch_one(&db)
            .await
            .unwrap();
        let page = reqwest::get(format!("{base}/items/it_{item}"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("data-bid-panel"));
        db.close().await;
    }
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let admin = PgPool::connect("postgres://postgres@127.0.0.1:5432/postgres")
        .await
        .unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&admin)
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}
