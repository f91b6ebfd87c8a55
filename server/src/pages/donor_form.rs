//! The donor's item form as typed, turned into the API's requests.
//!
//! Field names are the API's (`openingBid`, `categoryId`, `datetimeStart`...), so the field
//! an error names is the form field to mark. Only typing problems are caught here (money
//! that is not money, a date that is not a date); every rule about items and events stays
//! in `domain::catalog` and `domain::hosted_event`, reached through the services the API
//! calls too.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    domain::{
        catalog::ItemType,
        hosted_event::{Address, AddressPrivacy, EventInput},
        Cents,
    },
    local_time::LocalTime,
    services::{
        item_view::{EventView, ItemView},
        items::ItemRequest,
    },
};

/// Field name → message, in a stable order for the error summary.
pub type FieldErrors = BTreeMap<&'static str, String>;

/// Every field as text: echoed back as typed when something needs fixing.
#[derive(Deserialize, Serialize, Default, Clone, Debug)]
#[serde(rename_all = "camelCase", default)]
pub struct ItemForm {
    #[serde(rename = "type")]
    pub item_type: String,
    pub title: String,
    pub description: String,
    pub donor_notes: String,
    pub restrictions: String,
    pub category_id: String,
    pub tags: String,
    pub opening_bid: String,
    pub bid_increment: String,
    pub buy_now_price: String,
    pub fair_market_value: String,
    pub quantity_total: String,
    pub datetime_start: String,
    pub datetime_end: String,
    pub location_label: String,
    pub address_line1: String,
    pub address_line2: String,
    pub city: String,
    pub state: String,
    pub postal_code: String,
    pub address_privacy: String,
    pub capacity: String,
    pub accessibility_notes: String,
    pub age_restrictions: String,
    pub dietary_notes: String,
    pub host_notes: String,
}

fn opt(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// Money as people type it ([`Cents::parse_input`]): "$1,250.50" → 1250.50. Empty is
/// `None`; a refusal is noted against `field`.
pub fn money(field: &'static str, s: &str, errors: &mut FieldErrors) -> Option<Cents> {
    match Cents::parse_input(s) {
        Ok(c) => c,
        Err(e) => {
            errors.insert(
                field,
                format!("Please enter an amount in dollars, like 25 or 25.50 ({e})."),
            );
            None
        }
    }
}

/// `datetime-local` text (`2026-06-12T18:00`), read in the auction's time zone.
fn datetime(
    zone: LocalTime,
    field: &'static str,
    s: &str,
    errors: &mut FieldErrors,
) -> Option<DateTime<Utc>> {
    if s.trim().is_empty() {
        errors.insert(field, "Please enter a date and time.".into());
        return None;
    }
    zone.parse_input(s)
        .map_err(|e| errors.insert(field, e.to_string()))
        .ok()
}

impl ItemForm {
    pub fn item_type(&self) -> Option<ItemType> {
        ItemType::parse(self.item_type.trim())
    }

    /// The item request (the API's shape), or what to fix.
    pub fn item_request(&self, errors: &mut FieldErrors) -> Option<ItemRequest> {
        let item_type = self.item_type();
        if item_type.is_none() {
            errors.insert("type", "Please choose the kind of item.".into());
        }
        let category_id = self.category_id.trim().parse().ok();
        if category_id.is_none() {
            errors.insert("categoryId", "Please choose a category.".into());
        }
        let opening_bid = money("openingBid", &self.opening_bid, errors);
        if opening_bid.is_none() && !errors.contains_key("openingBid") {
            errors.insert(
                "openingBid",
                "Please enter the opening bid or price in dollars.".into(),
            );
        }
        let bid_increment = money("bidIncrement", &self.bid_increment, errors);
        let buy_now_price = money("buyNowPrice", &self.buy_now_price, errors);
        let fair_market_value = money("fairMarketValue", &self.fair_market_value, errors);
        let quantity_total = match opt(&self.quantity_total) {
            None => 1,
            Some(q) => q.parse().unwrap_or_else(|_| {
                errors.insert(
                    "quantityTotal",
                    "The quantity must be a whole number.".into(),
                );
                1
            }),
        };
        Some(ItemRequest {
            auction_id: None,
            item_type: item_type?,
            title: self.title.clone(),
            description: opt(&self.description),
            donor_notes: opt(&self.donor_notes),
            restrictions: opt(&self.restrictions),
            category_id: category_id?,
            tags: self.tags.split(',').map(str::to_string).collect(),
            opening_bid: opening_bid?,
            bid_increment,
            buy_now_price,
            fair_market_value,
            quantity_total,
            featured: None,
        })
    }

    /// The event's details, for a hosted-event item, or what to fix.
    pub fn event_input(&self, zone: LocalTime, errors: &mut FieldErrors) -> Option<EventInput> {
        let start = datetime(zone, "datetimeStart", &self.datetime_start, errors);
        let end = datetime(zone, "datetimeEnd", &self.datetime_end, errors);
        let capacity = match self.capacity.trim().parse::<i64>() {
            Ok(c) => Some(c),
            Err(_) => {
                errors.insert("capacity", "Please enter how many guests can come.".into());
                None
            }
        };
        let privacy = match self.address_privacy.trim() {
            "" => Some(AddressPrivacy::ShowCityOnly),
            p => AddressPrivacy::parse(p).or_else(|| {
                errors.insert(
                    "addressPrivacy",
                    "Please choose who may see the address.".into(),
                );
                None
            }),
        };
        Some(EventInput {
            datetime_start: start?,
            datetime_end: end?,
            location_label: opt(&self.location_label),
            address: Address {
                address_line1: opt(&self.address_line1),
                address_line2: opt(&self.address_line2),
                city: opt(&self.city),
                state: opt(&self.state),
                postal_code: opt(&self.postal_code),
            },
            address_privacy: privacy?,
            capacity: capacity?,
            accessibility_notes: opt(&self.accessibility_notes),
            age_restrictions: opt(&self.age_restrictions),
            dietary_notes: opt(&self.dietary_notes),
            host_notes: opt(&self.host_notes),
        })
    }

    /// The form filled from a stored item (and its event as the host sees it).
    pub fn from_view(v: &ItemView, zone: LocalTime) -> ItemForm {
        let m = |c: Option<Cents>| c.map(|c| c.to_string()).unwrap_or_default();
        let mut form = ItemForm {
            item_type: v.item_type.as_str().into(),
            title: v.title.clone(),
            description: v.description.clone(),
            donor_notes: v.donor_notes.clone().unwrap_or_default(),
            restrictions: v.restrictions.clone().unwrap_or_default(),
            category_id: v.category.id.to_string(),
            tags: v.tags.join(", "),
            opening_bid: v.opening_bid.to_string(),
            bid_increment: m(v.bid_increment),
            buy_now_price: m(v.buy_now_price),
            fair_market_value: m(v.fair_market_value),
            quantity_total: v.quantity_total.to_string(),
            ..ItemForm::default()
        };
        if let Some(e) = &v.event {
            form.fill_event(e, zone);
        }
        form
    }

    fn fill_event(&mut self, e: &EventView, zone: LocalTime) {
        let s = |o: &Option<String>| o.clone().unwrap_or_default();
        self.datetime_start = zone.input_value(e.datetime_start);
        self.datetime_end = zone.input_value(e.datetime_end);
        self.location_label = s(&e.location_label);
        self.address_line1 = s(&e.address_line1);
        self.address_line2 = s(&e.address_line2);
        self.city = s(&e.city);
        self.state = s(&e.state);
        self.postal_code = s(&e.postal_code);
        self.address_privacy = e.address_privacy.as_str().into();
        self.capacity = e.capacity.to_string();
        self.accessibility_notes = s(&e.accessibility_notes);
        self.age_restrictions = s(&e.age_restrictions);
        self.dietary_notes = s(&e.dietary_notes);
        self.host_notes = s(&e.host_notes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled() -> ItemForm {
        ItemForm {
            item_type: "competitive".into(),
            title: "Quilt".into(),
            category_id: "cat_3".into(),
            opening_bid: "$1,250.50".into(),
            tags: "Handmade, quilt".into(),
            ..ItemForm::default()
        }
    }

    #[test]
    fn typed_money_is_read_forgivingly() {
        let mut errors = FieldErrors::new();
        let req = filled().item_request(&mut errors).unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(req.opening_bid, Cents(125_050));
        assert_eq!(req.quantity_total, 1);
        assert_eq!(req.tags.len(), 2);
    }

    #[test]
    fn every_typing_problem_is_reported_at_once() {
        let mut errors = FieldErrors::new();
        let form = ItemForm {
            opening_bid: "1.234".into(),
            fair_market_value: "lots".into(),
            category_id: "".into(),
            ..filled()
        };
        assert!(form.item_request(&mut errors).is_none());
        assert!(errors.contains_key("openingBid"));
        assert!(errors.contains_key("fairMarketValue"));
        assert!(errors.contains_key("categoryId"));
    }

    #[test]
    fn event_times_are_read_in_the_auction_time_zone() {
        let mut errors = FieldErrors::new();
        let form = ItemForm {
            datetime_start: "2026-06-12T18:00".into(),
            datetime_end: "2026-06-12 21:30".into(),
            capacity: "8".into(),
            ..ItemForm::default()
        };
        let zone = LocalTime::parse("America/New_York").unwrap();
        let e = form.event_input(zone, &mut errors).unwrap();
        assert_eq!(e.datetime_start.to_rfc3339(), "2026-06-12T22:00:00+00:00");
        assert_eq!(e.address_privacy, AddressPrivacy::ShowCityOnly);
        let bad = ItemForm {
            datetime_start: "tomorrow".into(),
            ..form
        };
        let mut errors = FieldErrors::new();
        assert!(bad.event_input(zone, &mut errors).is_none());
        assert!(errors["datetimeStart"].contains("like 2026-06-12 18:00"));
    }
}
