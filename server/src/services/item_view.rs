//! The shapes of items, images and hosted events as one viewer may see them: the API
//! serialises them, the pages read them.
//!
//! Every item response (one item, a catalog page, a donor's list) is built here, so the
//! address privacy rule and the "never the leader or anyone's maximum" rule hold in each.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{
    domain::{
        catalog::{self, ItemStatus, ItemType},
        hosted_event::{address_shown, address_view, AddressPrivacy, AddressShown, Audience},
        ids::ImageId,
        AuctionId, CategoryId, Cents, EventId, ItemId, Role, UserId,
    },
    error::{AppError, AppResult},
    media,
    session::Actor,
    state::AppState,
    store::{
        events::{self, EventRow},
        item_images::{self, ImageRow},
        items::ItemRow,
    },
};

/// Who is looking: nobody (a guest) or a signed-in user.
#[derive(Clone, Copy)]
pub struct Viewer<'a>(pub Option<&'a Actor>);

impl Viewer<'_> {
    /// Managers and admins (admins hold every role).
    pub fn is_staff(&self) -> bool {
        self.0.is_some_and(|u| u.roles.has_any(&[Role::Manager]))
    }

    pub fn user_id(&self) -> Option<UserId> {
        self.0.map(Actor::id)
    }

    /// How the viewer relates to `item`, as the catalog rules ask it.
    pub fn actor(&self, item: &ItemRow) -> catalog::Actor {
        match self.0 {
            None => catalog::Actor {
                is_owner: false,
                is_manager: false,
                is_admin: false,
            },
            Some(u) => catalog::Actor {
                is_owner: u.id() == item.donor(),
                is_manager: u.roles.has(Role::Manager),
                is_admin: u.roles.has(Role::Admin),
            },
        }
    }

    fn audience(&self, item: &ItemRow, attendee: bool) -> Audience {
        if self.user_id() == Some(item.donor()) {
            Audience::Host
        } else if self.is_staff() {
            Audience::Staff
        } else if attendee {
            Audience::Attendee
        } else {
            Audience::Public
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CategoryRef {
    pub id: CategoryId,
    pub name: String,
    pub slug: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageView {
    pub id: ImageId,
    pub url: String,
    pub thumb_url: String,
    pub alt: String,
    pub width: i32,
    pub height: i32,
}

impl From<&ImageRow> for ImageView {
    fn from(r: &ImageRow) -> ImageView {
        ImageView {
            id: r.image_id(),
            url: media::url(&r.file_name),
            thumb_url: media::url(&r.thumb_name),
            alt: r.alt_text.clone(),
            width: r.width,
            height: r.height,
        }
    }
}

/// A hosted event as this viewer may see it. Address fields they may not see are absent;
/// `addressShown` says how much is shown so a page can explain why.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    pub id: EventId,
    pub item_id: ItemId,
    pub datetime_start: DateTime<Utc>,
    pub datetime_end: DateTime<Utc>,
    pub location_label: Option<String>,
    pub address_privacy: AddressPrivacy,
    pub address_shown: AddressShown,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address_line1: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address_line2: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    pub capacity: i32,
    pub seats_left: i32,
    pub accessibility_notes: Option<String>,
    pub age_restrictions: Option<String>,
    pub dietary_notes: Option<String>,
    /// Only for the host and staff; absent for everyone else.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_notes: Option<String>,
}

impl EventView {
    pub fn new(e: &EventRow, audience: Audience) -> EventView {
        let privacy = e.privacy();
        let address = address_view(&e.address(), privacy, audience);
        EventView {
            id: e.event_id(),
            item_id: ItemId(e.item_id),
            datetime_start: e.datetime_start,
            datetime_end: e.datetime_end,
            location_label: e.location_label.clone(),
            address_privacy: privacy,
            address_shown: address_shown(privacy, audience),
            address_line1: address.address_line1,
            address_line2: address.address_line2,
            city: address.city,
            state: address.state,
            postal_code: address.postal_code,
            capacity: e.capacity,
            seats_left: e.seats_left,
            accessibility_notes: e.accessibility_notes.clone(),
            age_restrictions: e.age_restrictions.clone(),
            dietary_notes: e.dietary_notes.clone(),
            host_notes: if audience.sees_host_notes() {
                e.host_notes.clone()
            } else {
                None
            },
        }
    }
}

/// An item for readers. The live fields come from the items table, which the bid engine
/// writes through: the price to beat and the count, never who leads or anyone's maximum.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemView {
    pub id: ItemId,
    pub auction_id: AuctionId,
    pub donor_id: UserId,
    pub donor_name: String,
    #[serde(rename = "type")]
    pub item_type: ItemType,
    pub title: String,
    pub description: String,
    pub donor_notes: Option<String>,
    pub restrictions: Option<String>,
    pub category: CategoryRef,
    pub tags: Vec<String>,
    /// The opening (minimum) bid; for fixed-price items, the price.
    pub opening_bid: Cents,
    /// `None` for competitive items means the auction's standard increment table applies.
    pub bid_increment: Option<Cents>,
    pub buy_now_price: Option<Cents>,
    /// Shown before bidding: the receipt's deductible part is what was paid above it.
    pub fair_market_value: Option<Cents>,
    pub quantity_total: i32,
    pub quantity_sold: i32,
    pub quantity_remaining: i32,
    pub status: ItemStatus,
    /// The manager's note on return or approval: for the donor and staff only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_note: Option<String>,
    pub featured: bool,
    pub current_bid: Option<Cents>,
    pub bid_count: i32,
    pub closes_at: DateTime<Utc>,
    pub images: Vec<ImageView>,
    pub event: Option<EventView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn item_view(
    row: &ItemRow,
    viewer: Viewer<'_>,
    images: Vec<ImageView>,
    event: Option<&EventRow>,
    attendee: bool,
) -> ItemView {
    let actor = viewer.actor(row);
    let insider = actor.is_owner || viewer.is_staff();
    ItemView {
        id: row.item_id(),
        auction_id: AuctionId(row.auction_id),
        donor_id: row.donor(),
        donor_name: row.donor_name.clone(),
        item_type: row.item_type(),
        title: row.title.clone(),
        description: row.description.clone(),
        donor_notes: row.donor_notes.clone(),
        restrictions: row.restrictions.clone(),
        category: CategoryRef {
            id: CategoryId(row.category_id),
            name: row.category_name.clone(),
            slug: row.category_slug.clone(),
        },
        tags: row.tags.clone(),
        opening_bid: row.opening_bid(),
        bid_increment: row.bid_increment.map(Cents),
        buy_now_price: row.buy_now_price.map(Cents),
        fair_market_value: row.fair_market_value.map(Cents),
        quantity_total: row.quantity_total,
        quantity_sold: row.quantity_sold,
        quantity_remaining: row.quantity_remaining(),
        status: row.status(),
        review_note: if insider {
            row.review_note.clone()
        } else {
            None
        },
        featured: row.featured,
        current_bid: row.current_price.map(Cents),
        bid_count: row.bid_count,
        closes_at: row.closes_at,
        images,
        event: event.map(|e| EventView::new(e, viewer.audience(row, attendee))),
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

/// Builds the views of `rows` for `viewer` with three extra queries at most (images,
/// events, and the viewer's places at those events), whatever the number of rows.
pub async fn item_views(
    state: &AppState,
    viewer: Viewer<'_>,
    rows: &[ItemRow],
) -> AppResult<Vec<ItemView>> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut images: HashMap<i64, Vec<ImageView>> = HashMap::new();
    for img in item_images::for_items(&state.db, &ids).await? {
        images
            .entry(img.item_id)
            .or_default()
            .push(ImageView::from(&img));
    }
    let events: HashMap<i64, EventRow> = events::for_items(&state.db, &ids)
        .await?
        .into_iter()
        .map(|e| (e.item_id, e))
        .collect();
    let attended: HashSet<i64> = match viewer.user_id() {
        Some(user) if !events.is_empty() => {
            let with_events: Vec<i64> = events.keys().copied().collect();
            events::items_attended_by(&state.db, user, &with_events)
                .await?
                .into_iter()
                .collect()
        }
        _ => HashSet::new(),
    };
    Ok(rows
        .iter()
        .map(|row| {
            item_view(
                row,
                viewer,
                images.remove(&row.id).unwrap_or_default(),
                events.get(&row.id),
                attended.contains(&row.id),
            )
        })
        .collect())
}

/// One item's view.
pub async fn one_item_view(
    state: &AppState,
    viewer: Viewer<'_>,
    row: &ItemRow,
) -> AppResult<ItemView> {
    let mut views = item_views(state, viewer, std::slice::from_ref(row)).await?;
    views
        .pop()
        .ok_or_else(|| AppError::internal("building an item view", "no view for one row"))
}

/// The event of one item as `viewer` may see it.
pub async fn event_view(
    state: &AppState,
    viewer: Viewer<'_>,
    item: &ItemRow,
    event: &EventRow,
) -> AppResult<EventView> {
    let attendee = match viewer.user_id() {
        Some(user) => !events::items_attended_by(&state.db, user, &[item.id])
            .await?
            .is_empty(),
        None => false,
    };
    Ok(EventView::new(event, viewer.audience(item, attendee)))
}
