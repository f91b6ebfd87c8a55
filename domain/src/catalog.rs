//! Catalog rules: item types and statuses, who may move an item through review and when it
//! may be edited, what a valid item is, tags, the search query, and reoffer defaults.
//! Plain functions over plain values; the HTTP edge asks, the store writes.

use serde::{Deserialize, Serialize};

use crate::{validate::FieldError, Cents};

/// What is being offered. Only competitive items take bids (and so bid increments).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemType {
    Competitive,
    FixedPriceEvent,
    FixedPriceItem,
    Service,
}

impl ItemType {
    pub const ALL: [ItemType; 4] = [
        ItemType::Competitive,
        ItemType::FixedPriceEvent,
        ItemType::FixedPriceItem,
        ItemType::Service,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ItemType::Competitive => "competitive",
            ItemType::FixedPriceEvent => "fixed_price_event",
            ItemType::FixedPriceItem => "fixed_price_item",
            ItemType::Service => "service",
        }
    }

    pub fn parse(text: &str) -> Option<ItemType> {
        ItemType::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// Where an item is in its life. `Submitted` is the review queue between the spec's draft
/// and approved; `Closed` is set when selling ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    Draft,
    Submitted,
    Approved,
    Published,
    Closed,
}

impl ItemStatus {
    pub const ALL: [ItemStatus; 5] = [
        ItemStatus::Draft,
        ItemStatus::Submitted,
        ItemStatus::Approved,
        ItemStatus::Published,
        ItemStatus::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ItemStatus::Draft => "draft",
            ItemStatus::Submitted => "submitted",
            ItemStatus::Approved => "approved",
            ItemStatus::Published => "published",
            ItemStatus::Closed => "closed",
        }
    }

    pub fn parse(text: &str) -> Option<ItemStatus> {
        ItemStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Published and closed items are public; earlier ones only to their donor and staff.
    pub fn is_public(self) -> bool {
        matches!(self, ItemStatus::Published | ItemStatus::Closed)
    }
}

/// How the person acting relates to the item. Admins count as staff (they hold every role).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Actor {
    pub is_owner: bool,
    pub is_manager: bool,
    pub is_admin: bool,
}

/// A step in the review workflow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// The donor asks for review.
    Submit,
    /// A manager accepts the item for the catalog.
    Approve,
    /// A manager sends it back to the donor with a note.
    Return,
    /// A manager puts it in the public catalog.
    Publish,
    /// Selling ended (the bid engine or settlement does this).
    Close,
}

/// Why a transition or an edit was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The actor may never do this to this item (403).
    NotAllowed,
    /// The item is not in a status this step starts from (409).
    WrongStatus,
    /// The item is already public and can no longer be edited (409).
    Published,
}

/// The workflow: who may take each step and from where. Returns the new status.
///
/// Owners submit their own drafts; managers approve, return (from the queue or after
/// approval, while the item is not yet public) and publish. Closing is the system's.
pub fn transition(from: ItemStatus, step: Transition, actor: Actor) -> Result<ItemStatus, Refusal> {
    use ItemStatus::*;
    let staff = actor.is_manager || actor.is_admin;
    let allowed = match step {
        Transition::Submit => actor.is_owner || actor.is_admin,
        Transition::Approve | Transition::Return | Transition::Publish => staff,
        Transition::Close => staff,
    };
    if !allowed {
        return Err(Refusal::NotAllowed);
    }
    match (step, from) {
        (Transition::Submit, Draft) => Ok(Submitted),
        (Transition::Approve, Submitted) => Ok(Approved),
        (Transition::Return, Submitted | Approved) => Ok(Draft),
        (Transition::Publish, Approved) => Ok(Published),
        (Transition::Close, Published) => Ok(Closed),
        _ => Err(Refusal::WrongStatus),
    }
}

/// Who is editing, which decides whether the edit is audited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EditAs {
    /// The donor, while the item is a draft or waiting for review.
    Owner,
    /// An admin overriding before publication: written to the audit log.
    AdminOverride,
}

/// May this actor edit the item (its fields, images, event) now?
///
/// Nobody edits a published or closed item: bidders have seen it, and a change under their
/// bids would be unfair. Before that, the donor edits drafts and queued items; an approved
/// item is frozen for its donor (a manager returns it for changes) and only an admin may
/// change it, audited.
pub fn may_edit(status: ItemStatus, actor: Actor) -> Result<EditAs, Refusal> {
    use ItemStatus::*;
    if status.is_public() {
        return Err(Refusal::Published);
    }
    match status {
        Draft | Submitted if actor.is_owner => Ok(EditAs::Owner),
        Draft | Submitted | Approved if actor.is_admin => Ok(EditAs::AdminOverride),
        Approved if actor.is_owner => Err(Refusal::WrongStatus),
        _ => Err(Refusal::NotAllowed),
    }
}

/// May this actor see the item at all? Non-public items are the donor's and staff's.
pub fn may_view(status: ItemStatus, actor: Actor) -> bool {
    status.is_public() || actor.is_owner || actor.is_manager || actor.is_admin
}

/// May a catalog listing ask for items of `status` (`?status=` in the API)? Public
/// statuses to everyone; the others to staff (the review queue is `status=submitted`) and
/// to donors listing their own items (`mine`), since the store then returns only theirs.
/// The listing's counterpart of [`may_view`], which judges one item at a time.
pub fn status_allowed(status: ItemStatus, staff: bool, mine: bool) -> bool {
    status.is_public() || staff || mine
}

/// An item's fields as entered, before validation.
#[derive(Clone, Debug, Default)]
pub struct ItemInput {
    pub item_type: Option<ItemType>,
    pub title: String,
    pub description: Option<String>,
    pub donor_notes: Option<String>,
    pub restrictions: Option<String>,
    pub tags: Vec<String>,
    pub opening_bid: Cents,
    pub bid_increment: Option<Cents>,
    pub buy_now_price: Option<Cents>,
    pub fair_market_value: Option<Cents>,
    pub quantity_total: i64,
}

/// A valid item's fields, ready to store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemFields {
    pub item_type: ItemType,
    pub title: String,
    pub description: String,
    pub donor_notes: Option<String>,
    pub restrictions: Option<String>,
    pub tags: Vec<String>,
    pub opening_bid: Cents,
    pub bid_increment: Option<Cents>,
    pub buy_now_price: Option<Cents>,
    pub fair_market_value: Option<Cents>,
    pub quantity_total: i32,
}

pub const TITLE_MAX: usize = 200;
pub const DESCRIPTION_MAX: usize = 10_000;
pub const NOTES_MAX: usize = 4_000;
pub const TAGS_MAX: usize = 12;
pub const TAG_MAX: usize = 30;
/// More than anyone would offer of one thing, small enough to rule out typos like 10000.
pub const QUANTITY_MAX: i64 = 1_000;

/// Validates an item. Money arrives already parsed as [`Cents`] (non-negative, at most two
/// decimals); here are the rules between fields.
pub fn validate_item(input: ItemInput) -> Result<ItemFields, FieldError> {
    use crate::validate::{optional_text, text};
    let item_type = input
        .item_type
        .ok_or_else(|| FieldError::new("type", "Please choose the kind of item."))?;
    let title = input.title.trim();
    if title.is_empty() {
        return Err(FieldError::new("title", "Please give the item a title."));
    }
    let title = text("title", title, TITLE_MAX)?.to_string();
    let description = optional_text("description", input.description.as_deref(), DESCRIPTION_MAX)?
        .unwrap_or_default();
    let donor_notes = optional_text("donorNotes", input.donor_notes.as_deref(), NOTES_MAX)?;
    let restrictions = optional_text("restrictions", input.restrictions.as_deref(), NOTES_MAX)?;
    let tags = normalize_tags(&input.tags)?;
    if !(1..=QUANTITY_MAX).contains(&input.quantity_total) {
        return Err(FieldError::new(
            "quantityTotal",
            format!("The quantity must be between 1 and {QUANTITY_MAX}."),
        ));
    }
    match (item_type, input.bid_increment) {
        (ItemType::Competitive, Some(Cents(0))) => {
            return Err(FieldError::new(
                "bidIncrement",
                "The bid increment must be more than zero.",
            ))
        }
        (ItemType::Competitive, _) | (_, None) => {}
        (_, Some(_)) => {
            return Err(FieldError::new(
                "bidIncrement",
                "Only competitive items take bids, so only they have a bid increment.",
            ))
        }
    }
    if let (ItemType::Competitive, Some(buy_now)) = (item_type, input.buy_now_price) {
        if buy_now < input.opening_bid {
            return Err(FieldError::new(
                "buyNowPrice",
                "The buy-now price cannot be below the opening bid.",
            ));
        }
    }
    Ok(ItemFields {
        item_type,
        title,
        description,
        donor_notes,
        restrictions,
        tags,
        opening_bid: input.opening_bid,
        bid_increment: input.bid_increment,
        buy_now_price: input.buy_now_price,
        fair_market_value: input.fair_market_value,
        // Proven in range by the check above (1..=1000 fits an i32).
        quantity_total: input.quantity_total as i32,
    })
}

/// Tags are short lowercase words or phrases (`"quilt"`, `"kid friendly"`): trimmed,
/// lower-cased, inner whitespace collapsed, duplicates dropped, order kept.
pub fn normalize_tags(raw: &[String]) -> Result<Vec<String>, FieldError> {
    let mut tags: Vec<String> = Vec::new();
    for tag in raw {
        let tag = tag
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        if tag.is_empty() {
            continue;
        }
        if tag.chars().count() > TAG_MAX
            || !tag
                .chars()
                .all(|c| c.is_alphanumeric() || c == ' ' || c == '-')
        {
            return Err(FieldError::new(
                "tags",
                format!("Tags are words of up to {TAG_MAX} letters, digits, spaces or hyphens."),
            ));
        }
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    if tags.len() > TAGS_MAX {
        return Err(FieldError::new(
            "tags",
            format!("An item may have at most {TAGS_MAX} tags."),
        ));
    }
    Ok(tags)
}

/// Builds a Postgres `to_tsquery` text from what someone typed: every word (letters and
/// digits only, so no tsquery operator can be smuggled in) must match, each as a prefix so
/// that "quil" finds "quilt" while typing. `None` when nothing searchable is left.
pub fn search_query(typed: &str) -> Option<String> {
    let words: Vec<String> = typed
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(8)
        .map(|w| {
            format!(
                "{}:*",
                w.to_lowercase().chars().take(40).collect::<String>()
            )
        })
        .collect();
    (!words.is_empty()).then(|| words.join(" & "))
}

/// The reoffer (buy-it-now) terms that apply, from the donor's settings and the item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReofferTerms {
    pub participate: bool,
    pub price: Cents,
    pub quantity: i32,
}

/// Spec 3.2: the price defaults to the opening bid (and may be below it); all remaining
/// units are offered unless the donor set a smaller number. Units sold since the override
/// was set are taken off it, so a reoffer can never oversell.
pub fn reoffer_terms(
    participate: bool,
    price: Option<Cents>,
    quantity_override: Option<i32>,
    opening_bid: Cents,
    quantity_remaining: i32,
) -> ReofferTerms {
    let remaining = quantity_remaining.max(0);
    ReofferTerms {
        participate,
        price: price.unwrap_or(opening_bid),
        quantity: quantity_override.map_or(remaining, |q| q.clamp(0, remaining)),
    }
}

/// A donor's quantity override must name at least one unit and no more than remain.
pub fn check_quantity_override(
    quantity_override: Option<i64>,
    quantity_remaining: i32,
) -> Result<Option<i32>, FieldError> {
    match quantity_override {
        None => Ok(None),
        Some(q) if q >= 1 && q <= i64::from(quantity_remaining) => Ok(Some(q as i32)),
        Some(_) => Err(FieldError::new(
            "quantityOverride",
            format!(
                "The reoffer quantity must be between 1 and the {quantity_remaining} remaining."
            ),
        )),
    }
}

#[cfg(test)]
#[path = "catalog_tests.rs"]
mod tests;
