//! Helpers for the bid engine's tests: an auction in its bidding window, items inserted as
//! the catalog would publish them, and a WebSocket client.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio_tungstenite::{
    connect_async, tungstenite::client::IntoClientRequest, tungstenite::Message,
};

/// An auction whose bidding window is open: opened an hour ago, closes in `closes_in`.
pub async fn auction_in_bidding(
    db: &PgPool,
    closes_in: chrono::Duration,
    soft_close_seconds: i32,
    hard_close_in: Option<chrono::Duration>,
) -> i64 {
    let now = Utc::now();
    let close = now + closes_in;
    let reoffer = close + chrono::Duration::hours(2);
    sqlx::query_scalar(
        "INSERT INTO auctions (year, name, registration_open_at, catalog_publish_at, bidding_open_at, bidding_close_at,
             reoffer_open_at, reoffer_close_at, settlement_open_at, soft_close_seconds, hard_close_at, state)
         VALUES (2026, 'Test auction', $1, $1, $2, $3, $4, $4 + interval '1 day', $4 + interval '2 days', $5, $6, 'bidding')
         RETURNING id",
    )
    .bind(now - chrono::Duration::days(2))
    .bind(now - chrono::Duration::hours(1))
    .bind(close)
    .bind(reoffer)
    .bind(soft_close_seconds)
    .bind(hard_close_in.map(|h| now + h))
    .fetch_one(db)
    .await
    .unwrap()
}

/// A published item (competitive unless said otherwise) with an opening bid in cents.
pub async fn published_item(
    db: &PgPool,
    auction: i64,
    donor: i64,
    opening_cents: i64,
    kind: &str,
) -> i64 {
    let increment: Option<i64> = None;
    sqlx::query_scalar(
        "INSERT INTO items (auction_id, donor_id, type, title, category_id, opening_min_bid, bid_increment, status)
         VALUES ($1, $2, $3, 'Handmade Quilt', 3, $4, $5, 'published') RETURNING id",
    )
    .bind(auction)
    .bind(donor)
    .bind(kind)
    .bind(opening_cents)
    .bind(increment)
    .fetch_one(db)
    .await
    .unwrap()
}

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket client, authenticated with a bearer token when given.
pub struct Ws {
    pub socket: Socket,
}

impl Ws {
    pub async fn connect(base: &str, token: Option<&str>) -> Ws {
        let url = format!("{}/ws", base.replacen("http", "ws", 1));
        let mut request = url.into_client_request().unwrap();
        if let Some(t) = token {
            request
                .headers_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        let (socket, _) = connect_async(request).await.expect("websocket connects");
        Ws { socket }
    }

    pub async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .unwrap();
    }

    /// The next JSON message (waits up to 10 s).
    pub async fn next(&mut self) -> Value {
        serde_json::from_str(&self.next_text().await).unwrap()
    }

    /// The next text frame as sent (waits up to 10 s).
    pub async fn next_text(&mut self) -> String {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(10), self.socket.next())
                .await
                .expect("a message within 10 s")
                .expect("socket open")
                .unwrap();
            if let Message::Text(t) = frame {
                return t.as_str().to_string();
            }
        }
    }

    /// The raw `body` of the `bid_result` answering `reference`, exactly as the server wrote
    /// it (for byte-for-byte comparisons).
    pub async fn raw_result_body(&mut self, reference: &str) -> String {
        loop {
            let text = self.next_text().await;
            let m: Value = serde_json::from_str(&text).unwrap();
            if m["type"] == "bid_result" && m["ref"] == reference {
                let (_, body) = text.split_once("\"body\":").expect("a body");
                return body.strip_suffix('}').expect("body last").to_string();
            }
        }
    }

    /// The next message of `kind`, skipping others.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let m = self.next().await;
            if m["type"] == kind {
                return m;
            }
        }
    }

    pub async fn subscribe(&mut self, topic: &str) -> Value {
        self.send(json!({ "type": "subscribe", "topics": [topic] }))
            .await;
        self.next_of("snapshot").await
    }

    pub async fn bid(
        &mut self,
        reference: &str,
        item: i64,
        amount: &str,
        max: Option<&str>,
    ) -> Value {
        let mut m = json!({ "type": "bid", "ref": reference, "itemId": format!("it_{item}"), "amount": amount.parse::<f64>().unwrap() });
        if let Some(max) = max {
            m["maxProxyAmount"] = json!(max.parse::<f64>().unwrap());
        }
        self.send(m).await;
        self.result_of(reference).await
    }

    /// The `bid_result` answering the bid sent with `reference`.
    pub async fn result_of(&mut self, reference: &str) -> Value {
        loop {
            let r = self.next_of("bid_result").await;
            if r["ref"] == reference {
                return r;
            }
        }
    }
}

/// Logs in over the API and returns the bearer token.
pub async fn token(base: &str, email: &str) -> String {
    let r: Value = reqwest::Client::new()
        .post(format!("{base}/api/auth/login"))
        .json(&json!({ "email": email, "password": super::app::PASSWORD }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["token"].as_str().expect("login token").to_string()
}

/// The bids of an item as stored, in seq order: (seq, bidder, amount, max, at).
pub async fn stored_bids(
    db: &PgPool,
    item: i64,
) -> Vec<(i64, i64, i64, Option<i64>, DateTime<Utc>)> {
    sqlx::query_as("SELECT seq, bidder_id, amount, max_proxy_amount, created_at FROM bids WHERE item_id = $1 ORDER BY seq")
        .bind(item)
        .fetch_all(db)
        .await
        .unwrap()
}
