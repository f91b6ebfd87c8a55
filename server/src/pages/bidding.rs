//! The item page's live bid panel (templates/partials/bid_panel.html) and its plain form
//! post, `POST /items/{id}/bid`, which works without JavaScript; `GET /items/{id}/bid?amount=`
//! is the confirmation page of the panel's one-tap "Bid $next-minimum" button without
//! JavaScript (with it, a dialog asks the same question).

use axum::{
    extract::{Path, Query},
    response::{IntoResponse, Redirect, Response},
    routing::get,
    Router,
};
use minijinja::{context, Value};
use serde::Deserialize;

use crate::{
    domain::{money::MoneyError, Cents, ItemId},
    engine::{bidder_label, BidInput, Outcome},
    error::{AppError, AppResult},
    pages::{error::PageError, PageCtx, PageForm},
    services::{item_view::Viewer, items::find_visible},
    session::Actor,
    state::AppState,
    store::winners,
};

pub fn router() -> Router<AppState> {
    Router::new().route("/items/{id}/bid", get(confirm).post(bid))
}

/// The panel's context for a competitive item: its committed live state (the hub's, so
/// never a bid that is not yet durable), and a fresh idempotency key for the form. Once
/// bidding closed: the final price, the winning paddle numbers (never names), and for a
/// viewer who won, what they owe (each winner of a several-unit item their own amount).
pub async fn panel_context(
    state: &AppState,
    item: ItemId,
    viewer: Option<&Actor>,
) -> AppResult<Option<Value>> {
    let Some(live) = state.engine.live_state(item).await else {
        return Ok(None);
    };
    let now = state.now();
    let closed = live.closed_at(now);
    // Until the close is recorded (at most a moment after its time), the leader at the
    // price shown is who wins; once recorded, the winners are the stored ones.
    let winners = if live.closed {
        winners::of_item(&state.db, item.0).await?
    } else {
        Vec::new()
    };
    let (final_price, winning_paddles): (Option<i64>, Vec<i32>) = if live.closed {
        (
            winners.first().map(|w| w.amount),
            winners.iter().map(|w| w.paddle_number).collect(),
        )
    } else {
        (
            live.price.map(|p| p.0),
            live.leader_paddle.into_iter().collect(),
        )
    };
    let my_win = viewer.and_then(|v| {
        winners
            .iter()
            .find(|w| w.user_id == v.id().0)
            .map(|w| w.amount)
    });
    Ok(Some(context! {
        current_bid => live.price.map(|p| p.to_string()),
        bid_count => live.bid_count,
        next_minimum => live.next_minimum.to_string(),
        closes_at => live.closes_at.to_rfc3339(),
        closed => closed,
        leading_bidder_id => live.leader_paddle.map(bidder_label),
        final_price => closed.then_some(final_price).flatten(),
        winning_paddles => if closed { winning_paddles } else { Vec::new() },
        my_win => my_win,
        bid_key => crate::engine::idempotency::new_key(),
    }))
}

/// Where a bid page starts: the path's item and the signed-in, verified bidder, with the
/// item page to go back to; or the answer that sends them elsewhere (to log in, or back to
/// the item saying why).
async fn bidder_on_item(
    ctx: &PageCtx,
    id: &str,
) -> Result<Result<(ItemId, Actor, String), Response>, PageError> {
    let item: ItemId = id
        .parse()
        .map_err(|_| PageError::from(AppError::not_found("Item")))?;
    let back = format!("/items/{item}");
    let user = match ctx.require_user() {
        Ok(u) => u.clone(),
        Err(redirect) => return Ok(Err(redirect.into_response())),
    };
    if let Err(e) = user.require_verified() {
        ctx.set_flash(&e.message).await;
        return Ok(Err(Redirect::to(&back).into_response()));
    }
    Ok(Ok((item, user, back)))
}

/// The amount typed (a blank one is refused with the same words as one that is not a
/// number), or the answer that goes back to the item page saying why.
async fn typed_amount(ctx: &PageCtx, typed: &str, back: &str) -> Result<Cents, Response> {
    match Cents::parse_input(typed).and_then(|a| a.ok_or(MoneyError::NotANumber)) {
        Ok(a) => Ok(a),
        Err(e) => {
            ctx.set_flash(&format!("Your bid was not placed: {e}."))
                .await;
            Err(Redirect::to(back).into_response())
        }
    }
}

#[derive(Deserialize)]
struct ConfirmQuery {
    #[serde(default)]
    amount: String,
}

/// "Bid $X on this item?": the one-tap bid's question before anything is placed, saying
/// the amount; its Yes button is the plain form post below, with a fresh idempotency key.
async fn confirm(
    ctx: PageCtx,
    Path(id): Path<String>,
    Query(query): Query<ConfirmQuery>,
) -> Result<Response, PageError> {
    let (item, user, back) = match bidder_on_item(&ctx, &id).await? {
        Ok(start) => start,
        Err(elsewhere) => return Ok(elsewhere),
    };
    let row = find_visible(&ctx.state, Viewer(Some(&user)), item).await?;
    let amount = match typed_amount(&ctx, &query.amount, &back).await {
        Ok(a) => a,
        Err(elsewhere) => return Ok(elsewhere),
    };
    let open = match ctx.state.engine.live_state(item).await {
        Some(live) => !live.closed_at(ctx.state.now()),
        None => false,
    };
    if !open {
        ctx.set_flash("Bidding on this item is not open.").await;
        return Ok(Redirect::to(&back).into_response());
    }
    ctx.render(
        "bid_confirm.html",
        "Confirm your bid",
        context! {
            item => context! { id => item.to_string(), title => row.title },
            amount => amount.to_string(),
            bid_key => crate::engine::idempotency::new_key(),
        },
    )
}

#[derive(Deserialize)]
struct BidForm {
    #[serde(default)]
    amount: String,
    max_proxy_amount: Option<String>,
    idempotency_key: Option<String>,
}

/// The form post: the same engine call as the API, then back to the item page with the
/// answer as a message. The form's idempotency key makes a double submit harmless.
async fn bid(
    ctx: PageCtx,
    Path(id): Path<String>,
    PageForm(form): PageForm<BidForm>,
) -> Result<Response, PageError> {
    let (item, user, back) = match bidder_on_item(&ctx, &id).await? {
        Ok(start) => start,
        Err(elsewhere) => return Ok(elsewhere),
    };
    let amount = match typed_amount(&ctx, &form.amount, &back).await {
        Ok(a) => a,
        Err(elsewhere) => return Ok(elsewhere),
    };
    let max = match Cents::parse_input(form.max_proxy_amount.as_deref().unwrap_or("")) {
        Ok(m) => m,
        Err(e) => {
            ctx.set_flash(&format!("Your maximum was not understood: {e}."))
                .await;
            return Ok(Redirect::to(&back).into_response());
        }
    };
    // An empty field is no key; anything else is checked by the engine like every key.
    let key = form.idempotency_key.filter(|k| !k.is_empty());
    let reply = ctx
        .state
        .engine
        .place_bid(BidInput {
            item,
            bidder: user.id(),
            paddle: user.row.paddle_number,
            amount,
            max_proxy: max,
            idempotency_key: key,
        })
        .await;
    let message = match reply.outcome() {
        Ok(Outcome::Accepted(body)) if body.leading => format!(
            "Your bid is in. You are the highest bidder at ${}.",
            body.current_bid
        ),
        Ok(Outcome::Accepted(body)) => format!(
            "Your bid is in, but another bidder's maximum is higher. The current bid is ${}.",
            body.current_bid
        ),
        Ok(Outcome::Refused(body)) => body.message,
        Err(e) => {
            tracing::error!(error = %e, "a bid answer did not read back");
            "Your bid did not go through. Please try again.".to_string()
        }
    };
    ctx.set_flash(&message).await;
    Ok(Redirect::to(&back).into_response())
}
