//! The item page, `/items/{id}`: what a bidder reads before bidding (pictures, description,
//! the donor's notes, restrictions, fair market value, the event as its privacy allows),
//! and the live bid panel.
//!
//! The item is read through the API's view (`services::item_view`), so visibility and
//! address privacy are decided by the same code for the page as for the JSON.

use axum::{extract::Path, response::Response, routing::get, Router};
use minijinja::{context, Value};

use crate::{
    domain::{
        catalog::ItemType,
        hosted_event::{AddressPrivacy, AddressShown},
        ItemId,
    },
    error::AppError,
    pages::{bidding, catalog::type_label, error::PageError, PageCtx},
    services::{
        item_view::{one_item_view, EventView, ItemView, Viewer},
        items::find_visible,
    },
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new().route("/items/{id}", get(show))
}

/// What the page says about where an event is, given how much of the address this viewer
/// may see.
fn address_note(e: &EventView) -> &'static str {
    match (e.address_shown, e.address_privacy) {
        (AddressShown::Full, _) => "",
        (AddressShown::CityOnly, AddressPrivacy::ShowFullToAttendees) => {
            "The full address is sent to confirmed guests."
        }
        (AddressShown::CityOnly, _) => "The host shares the exact address with guests directly.",
        (AddressShown::Nothing, _) => {
            "The host keeps the location private; guests are told where to go."
        }
    }
}

/// The event for the template: only the address fields the view kept.
pub fn event_context(e: &EventView) -> Value {
    let city_line = [
        e.city.as_deref(),
        e.state.as_deref(),
        e.postal_code.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(", ");
    context! {
        start => e.datetime_start.to_rfc3339(),
        end => e.datetime_end.to_rfc3339(),
        location_label => &e.location_label,
        address_line1 => &e.address_line1,
        address_line2 => &e.address_line2,
        city_line => (!city_line.is_empty()).then_some(city_line),
        address_note => address_note(e),
        capacity => e.capacity,
        seats_left => e.seats_left,
        accessibility_notes => &e.accessibility_notes,
        age_restrictions => &e.age_restrictions,
        dietary_notes => &e.dietary_notes,
        host_notes => &e.host_notes,
    }
}

fn item_context(v: &ItemView) -> Value {
    let images: Vec<Value> = v
        .images
        .iter()
        .map(|i| context! { url => &i.url, thumb_url => &i.thumb_url, alt => &i.alt, width => i.width, height => i.height })
        .collect();
    context! {
        id => v.id.to_string(), title => &v.title, description => &v.description,
        donor_notes => &v.donor_notes, restrictions => &v.restrictions,
        kind => v.item_type.as_str(), kind_label => type_label(v.item_type),
        opening_bid => v.opening_bid.to_string(),
        buy_now_price => v.buy_now_price.map(|c| c.to_string()),
        fair_market_value => v.fair_market_value.map(|c| c.to_string()),
        status => v.status.as_str(),
        category => &v.category.name, category_slug => &v.category.slug,
        tags => &v.tags,
        quantity_remaining => v.quantity_remaining,
        closes_at => v.closes_at.to_rfc3339(),
        images => images,
        event => v.event.as_ref().map(event_context),
    }
}

async fn show(ctx: PageCtx, Path(id): Path<String>) -> Result<Response, PageError> {
    let not_found = || PageError::from(AppError::not_found("Item"));
    let id: ItemId = id.parse().map_err(|_| not_found())?;
    let viewer = Viewer(ctx.user.as_ref());
    // Drafts are seen by their donor and the managers only; to anyone else they do not exist.
    let row = find_visible(&ctx.state, viewer, id).await?;
    let view = one_item_view(&ctx.state, viewer, &row).await?;
    let live = if view.item_type == ItemType::Competitive && view.status.is_public() {
        bidding::panel_context(&ctx.state, id, ctx.user.as_ref()).await?
    } else {
        None
    };
    let page = context! { item => item_context(&view), live => live };
    ctx.render("item.html", &view.title, page)
}
