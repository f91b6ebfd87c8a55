//! The item page's live bid panel (templates/partials/bid_panel.html) and its plain form
//! post, `POST /items/{id}/bid`, which works without JavaScript.

use axum::{
    extract::Path,
    response::{IntoResponse, Redirect, Response},
    routing::post,
    Router,
};
use minijinja::{context, Value};
use serde::Deserialize;

use crate::{
    domain::{money::MoneyError, Cents, ItemId},
    engine::{bidder_label, BidInput, Outcome},
    error::AppError,
    pages::{error::PageError, PageCtx, PageForm},
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new().route("/items/{id}/bid", post(bid))
}

/// The panel's context for a competitive item: its committed live state (the hub's, so
/// never a bid that is not yet durable), and a fresh idempotency key for the form.
pub async fn panel_context(state: &AppState, item: ItemId) -> Option<Value> {
    let live = state.engine.live_state(item).await?;
    let now = state.now();
    Some(context! {
        current_bid => live.price.map(|p| p.to_string()),
        bid_count => live.bid_count,
        next_minimum => live.next_minimum.to_string(),
        closes_at => live.closes_at.to_rfc3339(),
        closed => live.closed_at(now),
        leading_bidder_id => live.leader_paddle.map(bidder_label),
        bid_key => crate::engine::idempotency::new_key(),
    })
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
    let item: ItemId = id
        .parse()
        .map_err(|_| PageError::from(AppError::not_found("Item")))?;
    let back = format!("/items/{item}");
    let user = match ctx.require_user() {
        Ok(u) => u.clone(),
        Err(redirect) => return Ok(redirect.into_response()),
    };
    if let Err(e) = user.require_verified() {
        ctx.set_flash(&e.message).await;
        return Ok(Redirect::to(&back).into_response());
    }
    // A blank amount is refused with the same words as one that is not a number.
    let amount =
        match Cents::parse_input(&form.amount).and_then(|a| a.ok_or(MoneyError::NotANumber)) {
            Ok(a) => a,
            Err(e) => {
                ctx.set_flash(&format!("Your bid was not placed: {e}."))
                    .await;
                return Ok(Redirect::to(&back).into_response());
            }
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
