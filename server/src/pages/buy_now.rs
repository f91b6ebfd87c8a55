//! The buyer's side of the reoffer phase ("buy it now" after bidding closes):
//!
//! - `GET /reoffer`: what the current auction still has to sell, its price and how many
//!   are left, and when buying opens or closed;
//! - `GET /reoffer/items/{id}/buy`: "Buy 1 × Quilt for $25.00?", a confirmation whose form
//!   carries a fresh idempotency key;
//! - `POST /reoffer/items/{id}/buy`: the purchase (`services::reoffer::buy`, the same as
//!   the API's), answered in plain words on the list page. The form's key makes a double
//!   submit (or a reload of the answer) one purchase.
//!
//! Without JavaScript every step is a page; `client-js/reoffer.js` keeps "N left" live.

use axum::{
    extract::{Path, Query},
    response::{IntoResponse, Redirect, Response},
    routing::get,
    Router,
};
use chrono::{DateTime, Utc};
use minijinja::{context, Value};
use serde::Deserialize;

use crate::{
    domain::{AuctionState, Cents, ItemId},
    engine::{
        answer::{PurchaseBody, RefusalBody},
        BidReply,
    },
    error::AppError,
    pages::{error::PageError, PageCtx, PageForm},
    services::{
        item_view::Viewer,
        reoffer::{self, ReofferLine, MAX_UNITS_PER_PURCHASE},
    },
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/reoffer", get(list))
        .route("/reoffer/items/{id}/buy", get(confirm).post(buy))
}

/// How many units one purchase may take of a line: 1 to the units left, at most 20.
fn most_per_purchase(line: &ReofferLine) -> u32 {
    line.quantity_remaining.min(MAX_UNITS_PER_PURCHASE)
}

fn line_context(line: &ReofferLine) -> Value {
    context! {
        id => line.id.to_string(), title => &line.title,
        price => line.price.0, left => line.quantity_remaining,
        choices => (1..=most_per_purchase(line)).collect::<Vec<_>>(),
    }
}

/// Where the phase stands, for the sentence at the top of the page.
fn phase_context(
    open: bool,
    state: AuctionState,
    opens_at: DateTime<Utc>,
    closes_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Value {
    let phase = if open {
        "open"
    } else if matches!(state, AuctionState::Closed | AuctionState::Settlement) {
        "over"
    } else {
        "not_yet"
    };
    context! {
        phase => phase,
        opens_at => opens_at.to_rfc3339(), closes_at => closes_at.to_rfc3339(),
        opens_later => opens_at > now, closed_on_time => now >= closes_at,
    }
}

async fn list(ctx: PageCtx) -> Result<Response, PageError> {
    let Some((auction, listing)) = reoffer::current_listing(&ctx.state).await? else {
        return ctx.message(
            "Buy it now",
            "There is no auction at the moment. Please come back when the next one is announced.",
            None,
        );
    };
    let now = ctx.state.now();
    let state = ctx
        .state
        .engine
        .auction_state(auction.auction_id())
        .unwrap_or(auction.state_at(now));
    let items: Vec<Value> = listing.items.iter().map(line_context).collect();
    ctx.render(
        "reoffer.html",
        "Buy it now",
        context! {
            auction => context! { name => &auction.name },
            window => phase_context(listing.open, state, listing.window.opens_at, listing.window.closes_at, now),
            open => listing.open,
            items => items,
        },
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct QuantityQuery {
    quantity: Option<String>,
}

/// The quantity a form sent: a whole number 1 to 20 (blank: 1).
fn read_quantity(text: Option<&str>) -> Option<u32> {
    match text.map(str::trim) {
        None | Some("") => Some(1),
        Some(t) => t
            .parse::<u32>()
            .ok()
            .filter(|q| (1..=MAX_UNITS_PER_PURCHASE).contains(q)),
    }
}

fn parse_item(id: &str) -> Result<ItemId, PageError> {
    id.parse()
        .map_err(|_| PageError::from(AppError::not_found("Item")))
}

/// `GET /reoffer/items/{id}/buy?quantity=N`: the question before buying, with the form
/// that buys (a fresh idempotency key in it).
async fn confirm(
    ctx: PageCtx,
    Path(id): Path<String>,
    Query(q): Query<QuantityQuery>,
) -> Result<Response, PageError> {
    let id = parse_item(&id)?;
    let user = match ctx.require_user() {
        Ok(u) => u,
        Err(redirect) => return Ok(redirect.into_response()),
    };
    if let Err(e) = user.require_verified() {
        return ctx.message(
            "Please confirm your email first",
            &e.message,
            Some(("/account", "Go to my account")),
        );
    }
    let (item, line, open) = reoffer::offer(&ctx.state, Viewer(Some(user)), id).await?;
    let back = Some(("/reoffer", "Back to the list"));
    if !open {
        return ctx.message(
            "Buy it now is not open",
            "Buying is not open right now. The list page says when it opens.",
            back,
        );
    }
    let Some(line) = line else {
        return ctx.message(
            "Sold out",
            &format!("{} is sold out: there are none left to buy.", item.title),
            back,
        );
    };
    let Some(quantity) = read_quantity(q.quantity.as_deref()) else {
        return ctx.message(
            "Please choose how many",
            &format!(
                "Please choose a number from 1 to {}.",
                most_per_purchase(&line)
            ),
            back,
        );
    };
    if quantity > line.quantity_remaining {
        return ctx.message(
            "Not that many left",
            &format!(
                "Only {} left. Please go back and choose {} or fewer.",
                line.quantity_remaining, line.quantity_remaining
            ),
            back,
        );
    }
    ctx.render(
        "reoffer_confirm.html",
        "Confirm your purchase",
        context! {
            line => line_context(&line),
            quantity => quantity,
            total => line.price.0 * i64::from(quantity),
            buy_key => crate::engine::idempotency::new_key(),
        },
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct BuyForm {
    quantity: Option<String>,
    idempotency_key: Option<String>,
}

/// What the buyer is told: the answer to a purchase, in plain words.
fn purchase_message(reply: &BidReply, title: &str) -> String {
    if (200..300).contains(&reply.status) {
        return match serde_json::from_str::<PurchaseBody>(&reply.body) {
            Ok(body) => format!(
                "You bought it: {} × {title} for ${}. It is in your account.",
                body.quantity_purchased,
                Cents(body.price_each.0 * i64::from(body.quantity_purchased))
            ),
            Err(e) => {
                // Cannot happen (the engine wrote it from the same type); say what is true.
                tracing::error!(error = %e, "a purchase answer did not read back");
                "You bought it. It is in your account.".to_string()
            }
        };
    }
    let refusal = serde_json::from_str::<RefusalBody>(&reply.body).ok();
    match refusal.as_ref().map(|r| r.error.as_str()) {
        Some("sold_out") => {
            "Sold out: someone bought the last one first. Nothing was charged.".to_string()
        }
        Some("not_enough_left") => format!(
            "{} Nothing was charged.",
            refusal.map(|r| r.message).unwrap_or_default()
        ),
        Some("idempotency_key_reused") => {
            "This form was already used for another purchase. Nothing was charged: please start again from the list.".to_string()
        }
        Some(_) => refusal.map(|r| r.message).unwrap_or_default(),
        None => "Your purchase did not go through. Nothing was recorded: please try again."
            .to_string(),
    }
}

/// `POST /reoffer/items/{id}/buy`: buys, then back to the list with the answer. The same
/// form sent twice carries the same key, so the second send gets the first answer and
/// buys nothing more.
async fn buy(
    ctx: PageCtx,
    Path(id): Path<String>,
    PageForm(form): PageForm<BuyForm>,
) -> Result<Response, PageError> {
    let id = parse_item(&id)?;
    let user = match ctx.require_user() {
        Ok(u) => u.clone(),
        Err(redirect) => return Ok(redirect.into_response()),
    };
    let back = Redirect::to("/reoffer").into_response();
    let Some(quantity) = read_quantity(form.quantity.as_deref()) else {
        ctx.set_flash(&format!(
            "Please choose how many to buy, from 1 to {MAX_UNITS_PER_PURCHASE}. Nothing was charged."
        ))
        .await;
        return Ok(back);
    };
    // An empty field is no key; anything else is checked by the engine like every key.
    let key = form.idempotency_key.filter(|k| !k.is_empty());
    let message = match reoffer::buy(&ctx.state, &user, id, quantity, key).await {
        Ok(reply) => {
            let title = reoffer::offer(&ctx.state, Viewer(Some(&user)), id)
                .await
                .map(|(item, _, _)| item.title)
                .unwrap_or_else(|_| "the item".to_string());
            purchase_message(&reply, &title)
        }
        // Not verified, or a quantity the service refuses: its words.
        Err(e) if e.status.is_client_error() => e.message.to_string(),
        Err(e) => return Err(e.into()),
    };
    ctx.set_flash(&message).await;
    Ok(back)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_are_whole_numbers_from_one_to_twenty() {
        assert_eq!(read_quantity(None), Some(1));
        assert_eq!(read_quantity(Some(" ")), Some(1));
        assert_eq!(read_quantity(Some("3")), Some(3));
        assert_eq!(read_quantity(Some("20")), Some(20));
        for bad in ["0", "21", "-1", "two", "1.5"] {
            assert_eq!(read_quantity(Some(bad)), None, "{bad}");
        }
    }

    #[test]
    fn answers_are_said_in_plain_words() {
        let bought = BidReply::purchased(ItemId(5), 2, Cents(2500), 1).with_commitment(9);
        assert_eq!(
            purchase_message(&bought, "Pie"),
            "You bought it: 2 × Pie for $50.00. It is in your account."
        );
        assert_eq!(
            purchase_message(&BidReply::sold_out(), "Pie"),
            "Sold out: someone bought the last one first. Nothing was charged."
        );
        assert_eq!(
            purchase_message(&BidReply::not_enough_left(1), "Pie"),
            "Only 1 left. Please choose 1 or fewer. Nothing was charged."
        );
        assert!(purchase_message(&BidReply::storage_unavailable(), "Pie")
            .starts_with("Nothing was recorded"));
    }
}
