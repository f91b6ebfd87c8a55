//! `auuction demo`: a newcomer's first look. It must start on its own database, with demo
//! logins of every role, an auction whose bidding window is open, and prices that move.

use std::time::Duration;

use futures_util::FutureExt;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::helpers::{
    admin_pool, auuction, database_url, free_port, healthy_within, ServerProcess,
};

#[tokio::test]
async fn the_demo_serves_a_live_auction_with_demo_logins_and_moving_prices() {
    let name = format!("auuction_demo_test_{}", uuid::Uuid::new_v4().simple());
    let url = database_url(&name);
    let port = free_port();
    let dir = std::env::temp_dir().join(&name);
    let demo = ServerProcess::start(
        auuction()
            .args(["demo", "--database-url", &url])
            .env("BIND", format!("127.0.0.1:{port}"))
            .env("SECRET_KEY", "d".repeat(40))
            .env("MAIL_DIR", dir.join("mail"))
            .env("MEDIA_DIR", dir.join("media"))
            .env("RUST_LOG", "warn")
            // It prints the demo logins; nobody reads them here.
            .stdout(std::process::Stdio::null()),
    );
    let base = format!("http://127.0.0.1:{port}");
    let up = healthy_within(&base, Duration::from_secs(30)).await;
    // A failed assertion must still stop the demo server and drop its database.
    let outcome = std::panic::AssertUnwindSafe(async {
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
            tokio::time::sleep(Duration::from_millis(100)).await;
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

        // A realistic catalog: about forty published items over every type and category,
        // each with a picture, hosted events with capacities, some featured.
        let (items, types, categories, featured, events, pictures): (i64, i64, i64, i64, i64, i64) =
            sqlx::query_as(
                "SELECT count(*), count(DISTINCT type), count(DISTINCT category_id),
                        count(*) FILTER (WHERE featured),
                        (SELECT count(*) FROM events WHERE capacity > 0),
                        (SELECT count(DISTINCT item_id) FROM item_images)
                   FROM items WHERE status = 'published'",
            )
            .fetch_one(&db)
            .await
            .unwrap();
        assert!((35..=50).contains(&items), "{items} items");
        assert_eq!((types, categories), (4, 4));
        assert!(
            featured >= 4 && events >= 4,
            "{featured} featured, {events} events"
        );
        assert_eq!(pictures, items, "every item has a picture");
        let catalog = reqwest::get(format!("{base}/catalog"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            catalog.contains(&format!("{items} items")),
            "the catalog page counts them"
        );
        assert!(catalog.contains("Handmade Quilt") && catalog.contains("alt=\"Illustration for"));
        // Attribute values come HTML-escaped (`/` is `&#x2f;`).
        let thumb_start = catalog.find("src=\"&#x2f;media").unwrap() + 5;
        let thumb: String = catalog[thumb_start..]
            .chars()
            .take_while(|c| *c != '"')
            .collect::<String>()
            .replace("&#x2f;", "/");
        let r = reqwest::get(format!("{base}{thumb}")).await.unwrap();
        assert_eq!(r.status(), 200, "{thumb}");
        assert_eq!(r.headers()["content-type"], "image/jpeg");
        let search = reqwest::get(format!("{base}/catalog?q=supper"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(search.contains("Italian Supper in the Garden"));
        let home = reqwest::get(&base).await.unwrap().text().await.unwrap();
        assert!(home.contains("Featured items"));
        db.close().await;
    })
    .catch_unwind()
    .await;
    drop(demo); // SIGKILL: nothing of the demo outlives the test.
    let admin = admin_pool().await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&admin)
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
