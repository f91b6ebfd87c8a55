//! Hosted events: the rules for an event's details and for who may see where it is.
//!
//! Hosts often open their own homes, so the address is private by default. The rule here is
//! the only place that decides what of an address a viewer sees; every response shape (item,
//! event, catalog list, pages) goes through [`address_view`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::validate::{optional_text, FieldError};

/// What the host chose to share.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressPrivacy {
    /// Nobody but the host and staff learns where, not even the city.
    HideAll,
    /// Everyone sees the city (and state), nobody the street.
    ShowCityOnly,
    /// Confirmed attendees see the full address; everyone else the city.
    ShowFullToAttendees,
}

impl AddressPrivacy {
    pub const ALL: [AddressPrivacy; 3] = [
        AddressPrivacy::HideAll,
        AddressPrivacy::ShowCityOnly,
        AddressPrivacy::ShowFullToAttendees,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AddressPrivacy::HideAll => "hide_all",
            AddressPrivacy::ShowCityOnly => "show_city_only",
            AddressPrivacy::ShowFullToAttendees => "show_full_to_attendees",
        }
    }

    pub fn parse(text: &str) -> Option<AddressPrivacy> {
        AddressPrivacy::ALL.into_iter().find(|p| p.as_str() == text)
    }
}

/// How the viewer relates to the event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    /// The item's donor: it is their event.
    Host,
    /// Managers and admins, who run the auction and settle disputes.
    Staff,
    /// Someone with a confirmed place: an attendance, a signup, a win or a purchase.
    Attendee,
    /// Everybody else, signed in or not.
    Public,
}

impl Audience {
    pub const ALL: [Audience; 4] = [
        Audience::Host,
        Audience::Staff,
        Audience::Attendee,
        Audience::Public,
    ];

    /// The host's private notes (door codes, parking) are for the host and staff only.
    pub fn sees_host_notes(self) -> bool {
        matches!(self, Audience::Host | Audience::Staff)
    }
}

/// How much of the address a viewer sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressShown {
    Nothing,
    CityOnly,
    Full,
}

/// The privacy rule.
pub fn address_shown(privacy: AddressPrivacy, audience: Audience) -> AddressShown {
    match (audience, privacy) {
        (Audience::Host | Audience::Staff, _) => AddressShown::Full,
        (_, AddressPrivacy::HideAll) => AddressShown::Nothing,
        (_, AddressPrivacy::ShowCityOnly) => AddressShown::CityOnly,
        (Audience::Attendee, AddressPrivacy::ShowFullToAttendees) => AddressShown::Full,
        (Audience::Public, AddressPrivacy::ShowFullToAttendees) => AddressShown::CityOnly,
    }
}

/// A postal address as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    pub address_line1: Option<String>,
    pub address_line2: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
}

/// The part of `address` the viewer may see: fields they may not see are `None`.
pub fn address_view(address: &Address, privacy: AddressPrivacy, audience: Audience) -> Address {
    match address_shown(privacy, audience) {
        AddressShown::Full => address.clone(),
        AddressShown::CityOnly => Address {
            city: address.city.clone(),
            state: address.state.clone(),
            ..Address::default()
        },
        AddressShown::Nothing => Address::default(),
    }
}

/// An event's details as entered.
#[derive(Clone, Debug)]
pub struct EventInput {
    pub datetime_start: DateTime<Utc>,
    pub datetime_end: DateTime<Utc>,
    pub location_label: Option<String>,
    pub address: Address,
    pub address_privacy: AddressPrivacy,
    pub capacity: i64,
    pub accessibility_notes: Option<String>,
    pub age_restrictions: Option<String>,
    pub dietary_notes: Option<String>,
    pub host_notes: Option<String>,
}

/// Valid event details, ready to store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventFields {
    pub datetime_start: DateTime<Utc>,
    pub datetime_end: DateTime<Utc>,
    pub location_label: Option<String>,
    pub address: Address,
    pub address_privacy: AddressPrivacy,
    pub capacity: i32,
    pub accessibility_notes: Option<String>,
    pub age_restrictions: Option<String>,
    pub dietary_notes: Option<String>,
    pub host_notes: Option<String>,
}

/// Larger than any home or hall the congregation would use.
pub const CAPACITY_MAX: i64 = 10_000;

pub fn validate_event(input: EventInput) -> Result<EventFields, FieldError> {
    if input.datetime_end <= input.datetime_start {
        return Err(FieldError::new(
            "datetimeEnd",
            "The event must end after it starts.",
        ));
    }
    if !(1..=CAPACITY_MAX).contains(&input.capacity) {
        return Err(FieldError::new(
            "capacity",
            format!("Capacity must be between 1 and {CAPACITY_MAX}."),
        ));
    }
    let a = &input.address;
    let address = Address {
        address_line1: optional_text("addressLine1", a.address_line1.as_deref(), 200)?,
        address_line2: optional_text("addressLine2", a.address_line2.as_deref(), 200)?,
        city: optional_text("city", a.city.as_deref(), 100)?,
        state: optional_text("state", a.state.as_deref(), 100)?,
        postal_code: optional_text("postalCode", a.postal_code.as_deref(), 20)?,
    };
    Ok(EventFields {
        datetime_start: input.datetime_start,
        datetime_end: input.datetime_end,
        location_label: optional_text("locationLabel", input.location_label.as_deref(), 200)?,
        address,
        address_privacy: input.address_privacy,
        // Proven in range by the check above.
        capacity: input.capacity as i32,
        accessibility_notes: optional_text(
            "accessibilityNotes",
            input.accessibility_notes.as_deref(),
            2000,
        )?,
        age_restrictions: optional_text("ageRestrictions", input.age_restrictions.as_deref(), 500)?,
        dietary_notes: optional_text("dietaryNotes", input.dietary_notes.as_deref(), 2000)?,
        host_notes: optional_text("hostNotes", input.host_notes.as_deref(), 4000)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> Address {
        Address {
            address_line1: Some("12 Elm Street".into()),
            address_line2: Some("Apt 3".into()),
            city: Some("Knoxville".into()),
            state: Some("TN".into()),
            postal_code: Some("37919".into()),
        }
    }

    fn city_only() -> Address {
        Address {
            city: Some("Knoxville".into()),
            state: Some("TN".into()),
            ..Address::default()
        }
    }

    #[test]
    fn privacy_table_for_every_audience_and_setting() {
        use AddressPrivacy::*;
        use AddressShown::*;
        use Audience::*;
        let table = [
            (HideAll, Host, Full),
            (HideAll, Staff, Full),
            (HideAll, Attendee, Nothing),
            (HideAll, Public, Nothing),
            (ShowCityOnly, Host, Full),
            (ShowCityOnly, Staff, Full),
            (ShowCityOnly, Attendee, CityOnly),
            (ShowCityOnly, Public, CityOnly),
            (ShowFullToAttendees, Host, Full),
            (ShowFullToAttendees, Staff, Full),
            (ShowFullToAttendees, Attendee, Full),
            (ShowFullToAttendees, Public, CityOnly),
        ];
        assert_eq!(table.len(), AddressPrivacy::ALL.len() * Audience::ALL.len());
        for (privacy, audience, shown) in table {
            assert_eq!(
                address_shown(privacy, audience),
                shown,
                "{privacy:?} / {audience:?}"
            );
            let want = match shown {
                Full => full(),
                CityOnly => city_only(),
                Nothing => Address::default(),
            };
            assert_eq!(address_view(&full(), privacy, audience), want);
        }
    }

    #[test]
    fn host_notes_are_for_host_and_staff() {
        for audience in Audience::ALL {
            assert_eq!(
                audience.sees_host_notes(),
                matches!(audience, Audience::Host | Audience::Staff)
            );
        }
    }

    #[test]
    fn privacy_names_round_trip() {
        for p in AddressPrivacy::ALL {
            assert_eq!(AddressPrivacy::parse(p.as_str()), Some(p));
        }
        assert_eq!(AddressPrivacy::parse("public"), None);
    }

    fn input() -> EventInput {
        let start = DateTime::parse_from_rfc3339("2026-06-12T18:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        EventInput {
            datetime_start: start,
            datetime_end: start + chrono::Duration::hours(3),
            location_label: Some(" The Smiths' home ".into()),
            address: full(),
            address_privacy: AddressPrivacy::ShowFullToAttendees,
            capacity: 8,
            accessibility_notes: None,
            age_restrictions: Some("".into()),
            dietary_notes: None,
            host_notes: None,
        }
    }

    #[test]
    fn event_validation() {
        let ok = validate_event(input()).unwrap();
        assert_eq!(ok.location_label.as_deref(), Some("The Smiths' home"));
        assert_eq!(ok.age_restrictions, None);
        let mut bad = input();
        bad.datetime_end = bad.datetime_start;
        assert_eq!(validate_event(bad).unwrap_err().field, "datetimeEnd");
        for capacity in [0, -3, CAPACITY_MAX + 1] {
            let mut bad = input();
            bad.capacity = capacity;
            assert_eq!(validate_event(bad).unwrap_err().field, "capacity");
        }
        let mut bad = input();
        bad.address.postal_code = Some("9".repeat(21));
        assert_eq!(validate_event(bad).unwrap_err().field, "postalCode");
    }
}
