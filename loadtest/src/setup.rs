//! The run's own world: an auction in its bidding window, competitive items, verified bidders.
//! Everything is created through the API with the admin's credentials, under a fresh random
//! prefix, so runs never collide with each other or with real data on a staging copy.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use auuction_domain::bidding::BookParams;
use auuction_domain::{Cents, ItemId};
use chrono::Utc;
use futures_util::{stream, StreamExt};
use rand::Rng;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::api::{Api, Auction, Bidder, ItemSpec};

/// The opening bid of every load-test item, and its fixed increment: a fixed increment keeps
/// the generator's amounts simple (no price bands to track).
pub const OPENING: Cents = Cents(10_00);
pub const INCREMENT: Cents = Cents(1_00);

/// What the scenarios work with.
pub struct World {
    pub admin: Api,
    pub auction: Auction,
    /// The body the auction was created with, to re-time it.
    pub auction_body: serde_json::Value,
    pub items: Vec<ItemSpec>,
    pub bidders: Vec<Bidder>,
    pub run_id: String,
}

impl World {
    /// Moves bidding's close (before any bid: the replay assumes one calendar for the run).
    pub async fn retime_close(&mut self, close: chrono::DateTime<Utc>) -> Result<()> {
        self.auction = self
            .admin
            .retime_close(self.auction.id, &self.auction_body, close)
            .await?;
        Ok(())
    }

    /// The book parameters the server uses for our items (the auction's calendar).
    pub fn params(&self, item: &ItemSpec) -> BookParams {
        BookParams {
            opening: item.opening,
            increment: item.increment,
            closes_at: self.auction.bidding_close_at,
            hard_deadline: self
                .auction
                .hard_close_at
                .unwrap_or(self.auction.bidding_close_at),
            soft_close_window: chrono::Duration::seconds(self.auction.soft_close_seconds.into()),
        }
    }
}

/// What the run's items are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemKind {
    /// Competitive items of one unit, opening at [`OPENING`], rising by [`INCREMENT`].
    Competitive,
    /// Fixed-price items of these units each, at [`OPENING`]: what the reoffer sells when
    /// nobody bought them during bidding (the race's stock).
    FixedPrice(Vec<u32>),
}

impl ItemKind {
    fn api_type(&self) -> &'static str {
        match self {
            ItemKind::Competitive => "competitive",
            ItemKind::FixedPrice(_) => "fixed_price_item",
        }
    }

    /// Units of the `i`th item.
    fn units(&self, i: usize) -> u32 {
        match self {
            ItemKind::Competitive => 1,
            ItemKind::FixedPrice(units) => units.get(i).copied().unwrap_or(1),
        }
    }
}

/// How to build the world.
pub struct Plan {
    pub items: usize,
    pub kind: ItemKind,
    pub bidders: usize,
    /// Bidding closes this long after setup ends (the run's length plus a margin).
    pub close_in: Duration,
    pub soft_close_seconds: i32,
    /// Development only: insert items straight into this database instead of the catalog
    /// API (for servers whose item API is not there yet).
    pub dev_items_database_url: Option<String>,
}

/// A random run id: lowercase letters and digits, valid as an email prefix.
pub fn run_id() -> String {
    let mut rng = rand::thread_rng();
    (0..8)
        .map(|_| {
            let n = rng.gen_range(0..36u8);
            char::from(if n < 10 { b'0' + n } else { b'a' + n - 10 })
        })
        .collect()
}

pub async fn build(admin: Api, plan: &Plan) -> Result<World> {
    let run_id = run_id();
    let close = Utc::now() + chrono::Duration::from_std(plan.close_in)?;
    // The hard deadline leaves soft close room to extend, but not forever.
    let hard = close + chrono::Duration::hours(1);
    let (auction, auction_body) = admin
        .create_auction(
            &format!("Load test {run_id}"),
            close,
            plan.soft_close_seconds,
            hard,
        )
        .await?;
    if auction.state != "bidding" {
        bail!(
            "the new auction {} is in state {:?}, not bidding; is the server's clock right?",
            auction.id,
            auction.state
        );
    }
    let items = match &plan.dev_items_database_url {
        Some(url) => dev_insert_items(url, &admin, &auction, plan.items, &plan.kind).await?,
        None => create_items(&admin, &auction, plan.items, &plan.kind, &run_id).await?,
    };
    let bidders = if plan.bidders > 0 {
        admin
            .create_bidders(
                plan.bidders,
                &format!("lt-{run_id}"),
                &format!("lt-{run_id}-secret-pass"),
            )
            .await?
    } else {
        Vec::new()
    };
    Ok(World {
        admin,
        auction,
        auction_body,
        items,
        bidders,
        run_id,
    })
}

#[derive(Deserialize)]
struct Created {
    id: ItemId,
}

/// Creates and publishes competitive items through the catalog API: draft, submit, approve,
/// publish, the same steps a donor and a manager take (the admin holds both roles). Sixteen
/// items at a time: enough to make a thousand items quick, few enough not to be a load test
/// of its own.
async fn create_items(
    admin: &Api,
    auction: &Auction,
    n: usize,
    kind: &ItemKind,
    run_id: &str,
) -> Result<Vec<ItemSpec>> {
    let category = first_category(admin).await?;
    let category = &category;
    stream::iter(0..n)
        .map(|i| async move { create_item(admin, auction, category, kind, i, run_id).await })
        .buffered(16)
        .collect::<Vec<Result<ItemSpec>>>()
        .await
        .into_iter()
        .collect()
}

async fn create_item(
    admin: &Api,
    auction: &Auction,
    category: &serde_json::Value,
    kind: &ItemKind,
    i: usize,
    run_id: &str,
) -> Result<ItemSpec> {
    let mut body = json!({
        "auctionId": auction.id,
        "type": kind.api_type(),
        "title": format!("Load test item {i} ({run_id})"),
        "description": "Created by auuction-loadtest.",
        "categoryId": category,
        "openingBid": OPENING.to_string(),
        "quantityTotal": kind.units(i),
    });
    if *kind == ItemKind::Competitive {
        body["bidIncrement"] = json!(INCREMENT.to_string());
    }
    let (status, text) = admin.send(Method::POST, "/api/items", Some(body)).await?;
    if status == StatusCode::NOT_FOUND && text.contains("endpoint") {
        bail!("this server has no catalog API (POST /api/items is 404); on a development box use --dev-items-database-url");
    }
    if status != StatusCode::CREATED {
        bail!("POST /api/items: HTTP {status}: {text}");
    }
    let created: Created = serde_json::from_str(&text).context("POST /api/items body")?;
    let steps = [
        ("submit", None),
        ("review", Some(json!({ "decision": "approve" }))),
        ("publish", None),
    ];
    for (step, body) in steps {
        let path = format!("/api/items/{}/{step}", created.id);
        let (status, text) = admin.send(Method::POST, &path, body).await?;
        if !status.is_success() {
            bail!("POST {path}: HTTP {status}: {text}");
        }
    }
    Ok(ItemSpec {
        id: created.id,
        opening: OPENING,
        increment: Some(INCREMENT),
    })
}

async fn first_category(admin: &Api) -> Result<serde_json::Value> {
    let (status, text) = admin.send(Method::GET, "/api/categories", None).await?;
    if status != StatusCode::OK {
        bail!("GET /api/categories: HTTP {status}: {text}");
    }
    let v: serde_json::Value = serde_json::from_str(&text)?;
    let list = v.get("categories").unwrap_or(&v);
    list.as_array()
        .and_then(|a| a.first())
        .and_then(|c| c.get("id"))
        .cloned()
        .context("GET /api/categories lists no category")
}

/// Development fallback: published items inserted straight into the server's database. Not
/// for staging: it bypasses the catalog workflow and its audit trail.
async fn dev_insert_items(
    url: &str,
    admin: &Api,
    auction: &Auction,
    n: usize,
    kind: &ItemKind,
) -> Result<Vec<ItemSpec>> {
    #[derive(Deserialize)]
    struct Me {
        id: auuction_domain::UserId,
    }
    let (status, text) = admin.send(Method::GET, "/api/users/me", None).await?;
    if status != StatusCode::OK {
        bail!("GET /api/users/me: HTTP {status}: {text}");
    }
    let me: Me = serde_json::from_str(&text).context("GET /api/users/me")?;
    let pool = sqlx::PgPool::connect(url)
        .await
        .context("--dev-items-database-url")?;
    let units: Vec<i32> = (0..n).map(|i| kind.units(i) as i32).collect();
    let increment = (*kind == ItemKind::Competitive).then_some(INCREMENT.0);
    let ids: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO items (auction_id, donor_id, type, title, category_id, opening_min_bid, bid_increment, quantity_total, status)
         SELECT $1, $2, $6, 'Load test item ' || u.n, (SELECT min(id) FROM categories), $3, $4, u.units, 'published'
           FROM UNNEST($5::int[]) WITH ORDINALITY AS u(units, n)
          ORDER BY u.n
         RETURNING id",
    )
    .bind(auction.id.0)
    .bind(me.id.0)
    .bind(OPENING.0)
    .bind(increment)
    .bind(&units)
    .bind(kind.api_type())
    .fetch_all(&pool)
    .await
    .context("inserting items")?;
    pool.close().await;
    Ok(ids
        .into_iter()
        .map(|id| ItemSpec {
            id: ItemId(id),
            opening: OPENING,
            increment: Some(INCREMENT),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_valid_email_prefixes() {
        let id = run_id();
        assert_eq!(id.len(), 8);
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        assert_ne!(run_id(), run_id());
    }
}
