//! The server's public HTTP API, as the load tester uses it: log in, create an auction, items
//! and bidders, read bid lists and metrics. Nothing here reaches behind the API.
//!
//! Bodies are parsed from their text into typed structs: money fields are `Cents`, whose
//! `Deserialize` reads the JSON number's digits (serde_json's `raw_value`), never an `f64`.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use auuction_domain::{AuctionId, Cents, ItemId, UserId};
use chrono::{DateTime, Utc};
use reqwest::{Client, Method, StatusCode};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::json;

use crate::check::ListedBid;

/// An authenticated API client.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    http: Client,
    token: Option<String>,
}

/// A bidder created by `POST /api/users/bulk`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bidder {
    pub id: UserId,
    pub email: String,
    pub paddle_number: i32,
    pub token: String,
}

/// What the load tester needs of its auction for the replay check.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Auction {
    pub id: AuctionId,
    pub year: i32,
    pub bidding_close_at: DateTime<Utc>,
    pub soft_close_seconds: i32,
    pub hard_close_at: Option<DateTime<Utc>>,
    pub state: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BidList {
    bids: Vec<BidLine>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BidLine {
    seq: u64,
    bidder_id: String,
    amount: Cents,
    created_at: DateTime<Utc>,
}

/// One unit won, from `GET /api/auctions/{id}/winners`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct WinnerLine {
    pub item_id: ItemId,
    pub user_id: UserId,
    /// `p_<paddle>`.
    pub paddle: String,
    pub amount: Cents,
    pub quantity: i32,
    /// When the shard decided the close.
    pub determined_at: DateTime<Utc>,
}

/// An item's state after the run, from `GET /api/items/{id}`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ItemState {
    pub id: ItemId,
    pub status: String,
    pub quantity_sold: i32,
    pub quantity_total: i32,
    /// The item's close, soft-close extensions included.
    pub closes_at: DateTime<Utc>,
}

/// One line of `GET /api/auctions/{id}/reoffer/items`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ReofferLine {
    pub id: ItemId,
    pub price: Cents,
    pub quantity_remaining: u32,
}

/// `GET /api/auctions/{id}/reoffer/items`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReofferListing {
    pub items: Vec<ReofferLine>,
    pub open: bool,
}

/// An HTTP answer that was not what we asked for, with its status and body for the message.
#[derive(Debug)]
pub struct ApiFailure {
    pub status: StatusCode,
    pub body: String,
}

impl std::error::Error for ApiFailure {}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let body: String = self.body.chars().take(400).collect();
        write!(f, "HTTP {}: {body}", self.status)
    }
}

impl Api {
    /// A client for `base` (e.g. `http://127.0.0.1:8080`). Setup calls get a generous timeout:
    /// creating 20,000 bidders takes a while.
    pub fn new(base: &str) -> Result<Api> {
        let http = Client::builder()
            .timeout(Duration::from_secs(300))
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(Api {
            base: base.trim_end_matches('/').to_string(),
            http,
            token: None,
        })
    }

    pub fn with_token(&self, token: &str) -> Api {
        Api {
            token: Some(token.to_string()),
            ..self.clone()
        }
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    pub fn client(&self) -> &Client {
        &self.http
    }

    /// Sends a request and returns status and body text.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(StatusCode, String)> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .with_context(|| format!("{method} {path}"))?;
        Ok((status, text))
    }

    /// Sends a request, expects `want`, parses the body.
    async fn expect<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
        want: StatusCode,
    ) -> Result<T> {
        let (status, text) = self.send(method.clone(), path, body).await?;
        if status != want {
            return Err(anyhow!(ApiFailure { status, body: text }))
                .with_context(|| format!("{method} {path}"));
        }
        serde_json::from_str(&text).with_context(|| format!("{method} {path}: unexpected body"))
    }

    /// `POST /api/auth/login`: a client carrying the session as a bearer token (so no CSRF).
    pub async fn login(&self, email: &str, password: &str) -> Result<Api> {
        #[derive(Deserialize)]
        struct Login {
            token: String,
        }
        let login: Login = self
            .expect(
                Method::POST,
                "/api/auth/login",
                Some(json!({ "email": email, "password": password })),
                StatusCode::OK,
            )
            .await
            .context("logging in as the admin")?;
        Ok(self.with_token(&login.token))
    }

    /// Creates an auction whose bidding window is open from an hour ago until `close`, with
    /// the given soft-close window and hard deadline. Years are unique, so it tries the
    /// years from 2100 up until one is free.
    pub async fn create_auction(
        &self,
        name: &str,
        close: DateTime<Utc>,
        soft_close_seconds: i32,
        hard_close: DateTime<Utc>,
    ) -> Result<(Auction, serde_json::Value)> {
        let now = Utc::now();
        let day = chrono::Duration::days(1);
        // The calendar must be ordered; reoffer opens after the hard deadline.
        let reoffer_open = hard_close + chrono::Duration::hours(1);
        for year in 2100..=2200 {
            let body = json!({
                "year": year,
                "name": name,
                "registrationOpenAt": now - day * 2,
                "catalogPublishAt": now - day,
                "biddingOpenAt": now - chrono::Duration::hours(1),
                "biddingCloseAt": close,
                "reofferOpenAt": reoffer_open,
                "reofferCloseAt": reoffer_open + day,
                "settlementOpenAt": reoffer_open + day * 2,
                "softCloseSeconds": soft_close_seconds,
                "hardCloseAt": hard_close,
            });
            let (status, text) = self
                .send(Method::POST, "/api/auctions", Some(body.clone()))
                .await?;
            if status == StatusCode::CREATED {
                let auction =
                    serde_json::from_str(&text).context("POST /api/auctions: unexpected body")?;
                return Ok((auction, body));
            }
            if status == StatusCode::CONFLICT && text.contains("year_taken") {
                continue;
            }
            bail!("POST /api/auctions: {}", ApiFailure { status, body: text });
        }
        bail!("every year from 2100 to 2200 has an auction already; delete old load-test auctions")
    }

    /// `PUT /api/auctions/{id}` with the calendar it was created with, but bidding closing at
    /// `close`: the engine follows the new close at once.
    pub async fn retime_close(
        &self,
        auction: AuctionId,
        created_with: &serde_json::Value,
        close: DateTime<Utc>,
    ) -> Result<Auction> {
        let mut body = created_with.clone();
        body["biddingCloseAt"] = json!(close);
        self.expect(
            Method::PUT,
            &format!("/api/auctions/{auction}"),
            Some(body),
            StatusCode::OK,
        )
        .await
        .context("moving the auction's close")
    }

    /// `POST /api/users/bulk`: `count` verified bidders with session tokens, in chunks (the
    /// server takes at most 50,000 at once; smaller chunks keep each request short).
    pub async fn create_bidders(
        &self,
        count: usize,
        prefix: &str,
        password: &str,
    ) -> Result<Vec<Bidder>> {
        #[derive(Deserialize)]
        struct Users {
            users: Vec<Bidder>,
        }
        const CHUNK: usize = 5_000;
        let mut all = Vec::with_capacity(count);
        let mut chunk_no = 0;
        while all.len() < count {
            let n = (count - all.len()).min(CHUNK);
            let users: Users = self
                .expect(
                    Method::POST,
                    "/api/users/bulk",
                    Some(json!({
                        "count": n,
                        "emailPrefix": format!("{prefix}-{chunk_no}-"),
                        "domain": "loadtest.invalid",
                        "password": password,
                    })),
                    StatusCode::CREATED,
                )
                .await
                .context("creating bidders")?;
            all.extend(users.users);
            chunk_no += 1;
        }
        Ok(all)
    }

    /// `GET /api/items/{id}/bids` (admin): the item's recorded bids in seq order.
    pub async fn bids(&self, item: ItemId) -> Result<Vec<ListedBid>> {
        let list: BidList = self
            .expect(
                Method::GET,
                &format!("/api/items/{item}/bids"),
                None,
                StatusCode::OK,
            )
            .await?;
        Ok(list
            .bids
            .into_iter()
            .map(|b| ListedBid {
                seq: b.seq,
                bidder: b.bidder_id,
                amount: b.amount,
                created_at: b.created_at,
            })
            .collect())
    }

    /// `GET /api/auctions/{id}/winners` (manager, admin): every unit won.
    pub async fn winners(&self, auction: AuctionId) -> Result<Vec<WinnerLine>> {
        #[derive(Deserialize)]
        struct Winners {
            winners: Vec<WinnerLine>,
        }
        let list: Winners = self
            .expect(
                Method::GET,
                &format!("/api/auctions/{auction}/winners"),
                None,
                StatusCode::OK,
            )
            .await?;
        Ok(list.winners)
    }

    /// `GET /api/items/{id}`: status, units sold and the close.
    pub async fn item_state(&self, item: ItemId) -> Result<ItemState> {
        self.expect(
            Method::GET,
            &format!("/api/items/{item}"),
            None,
            StatusCode::OK,
        )
        .await
    }

    /// `POST /api/auctions/{id}/reoffer/state {"state":"open"}` (manager): opens the reoffer
    /// now, whatever the calendar says.
    pub async fn open_reoffer(&self, auction: AuctionId) -> Result<Auction> {
        self.expect(
            Method::POST,
            &format!("/api/auctions/{auction}/reoffer/state"),
            Some(json!({ "state": "open", "reason": "load test: the reoffer race" })),
            StatusCode::OK,
        )
        .await
        .context("opening the reoffer")
    }

    /// `GET /api/auctions/{id}/reoffer/items`: what the reoffer sells, and whether it is open.
    pub async fn reoffer_items(&self, auction: AuctionId) -> Result<ReofferListing> {
        self.expect(
            Method::GET,
            &format!("/api/auctions/{auction}/reoffer/items"),
            None,
            StatusCode::OK,
        )
        .await
    }

    /// The server's resident memory from `GET /metrics`, in bytes.
    pub async fn resident_memory(&self) -> Result<u64> {
        let (status, text) = self.send(Method::GET, "/metrics", None).await?;
        if status != StatusCode::OK {
            bail!("GET /metrics: {}", ApiFailure { status, body: text });
        }
        parse_metric(&text, "auuction_process_resident_memory_bytes")
            .map(|v| v as u64)
            .ok_or_else(|| anyhow!("GET /metrics has no auuction_process_resident_memory_bytes"))
    }
}

/// Reads one gauge's value from Prometheus text (the first sample of that name).
pub fn parse_metric(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let rest = l.strip_prefix(name)?;
        // Exactly this metric: followed by labels or a space, not a longer name.
        let rest = match rest.chars().next()? {
            '{' => &rest[rest.find('}')? + 1..],
            ' ' => rest,
            _ => return None,
        };
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// An item the load tester created, with what the replay needs.
#[derive(Clone, Debug, Serialize)]
pub struct ItemSpec {
    #[serde(serialize_with = "ser_display")]
    pub id: ItemId,
    #[serde(serialize_with = "ser_display")]
    pub opening: Cents,
    #[serde(serialize_with = "ser_display_opt")]
    pub increment: Option<Cents>,
}

fn ser_display<T: std::fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

fn ser_display_opt<T: std::fmt::Display, S: serde::Serializer>(
    v: &Option<T>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_resident_memory_gauge() {
        let text = "# HELP auuction_process_resident_memory_bytes RSS.\n\
# TYPE auuction_process_resident_memory_bytes gauge\n\
auuction_process_resident_memory_bytes_total 1\n\
auuction_process_resident_memory_bytes 123456789.0\n";
        assert_eq!(
            parse_metric(text, "auuction_process_resident_memory_bytes"),
            Some(123456789.0)
        );
        assert_eq!(parse_metric("x{a=\"b\"} 5", "x"), Some(5.0));
        assert_eq!(parse_metric("xy 5", "x"), None);
    }

    #[test]
    fn bid_lists_parse_money_without_floats() {
        let text = r#"{"itemId":"it_3","bids":[{"seq":1,"bidderId":"p_101","amount":0.29,"createdAt":"2026-05-01T20:00:00.123456Z"}]}"#;
        let list: BidList = serde_json::from_str(text).expect("parses");
        // 0.29 as f64 is 0.28999…; read as text it is exactly 29 cents.
        assert_eq!(list.bids[0].amount, Cents(29));
        assert_eq!(list.bids[0].created_at.timestamp_subsec_micros(), 123_456);
    }
}
