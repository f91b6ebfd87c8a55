//! From a claimed notification row to the email it becomes: its subject in plain words,
//! its plain-text and HTML bodies from `templates/email/<template_key>.{txt,html}`, and the
//! stable Message-ID. Dates go through the templates' `datetime` filter, which writes them
//! in the auction's time zone.

use std::collections::HashMap;

use minijinja::{context, value::merge_maps};

use crate::{
    config::Config,
    mail::{one_line, Email},
    services::notifications::unsubscribe_url,
    store::notifications::{Claimed, ItemFacts, OPTIONAL_TYPES},
    templates::Templates,
};

/// What a batch's mails say about their items and auctions, read once per batch.
#[derive(Default)]
pub struct Facts {
    pub items: HashMap<i64, ItemFacts>,
    pub auctions: HashMap<i64, String>,
}

/// Why a row is not sent, decided before sending.
#[derive(Debug, PartialEq, Eq)]
pub enum Hold {
    /// Nothing to send, on purpose (the reason is recorded).
    Skip(String),
    /// Nothing can be sent, ever (the reason is recorded).
    Fail(String),
}

/// Types a person may turn off (all email with `pref_email`, or one type); the others
/// concern what they won, bought or asked for, and always go.
pub fn is_optional(kind: &str) -> bool {
    OPTIONAL_TYPES.contains(&kind)
}

/// The email for `row`, or why there is none.
pub fn compose(
    templates: &Templates,
    config: &Config,
    facts: &Facts,
    row: &Claimed,
) -> Result<Email, Hold> {
    if row.channel != "email" {
        return Err(Hold::Fail(format!("not an email: {}", row.channel)));
    }
    if is_optional(&row.kind) && !row.pref_email {
        return Err(Hold::Skip("email notices are turned off".into()));
    }
    if row.muted_notifications.contains(&row.kind) {
        return Err(Hold::Skip(format!("{} notices are turned off", row.kind)));
    }
    let key = row.template_key.as_str();
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        return Err(Hold::Fail(format!("bad template key {key:?}")));
    }
    // Optional types carry a link (and a `List-Unsubscribe` header) that turns them off.
    let unsubscribe =
        is_optional(&row.kind).then(|| unsubscribe_url(config, row.user_id, &row.kind));
    let base = context! {
        name => &row.name,
        site_url => config.url("/"),
        account_url => config.url("/account"),
        unsubscribe_url => &unsubscribe,
    };
    let item = row
        .related_entity_id
        .filter(|_| row.related_entity_type.as_deref() == Some("item"))
        .and_then(|id| facts.items.get(&id));
    let payload = &row.payload;
    let cents = |field: &str| payload.get(field).and_then(|v| v.as_i64());
    let (subject, data) = match row.kind.as_str() {
        "outbid" => {
            let item = item.ok_or_else(|| Hold::Fail("the item is gone".into()))?;
            if item.leader_id == Some(row.user_id) {
                return Err(Hold::Skip("the bidder took the lead back".into()));
            }
            if item.closed {
                return Err(Hold::Skip("bidding on the item had closed".into()));
            }
            // The latest price, not the one of the outbid that queued the row; the next
            // minimum the row names is only right for its own price.
            let price = item.current_price.or(cents("currentBidCents"));
            let next_minimum =
                cents("nextMinimumCents").filter(|_| price == cents("currentBidCents"));
            (
                format!("You have been outbid on \"{}\"", item.title),
                context! {
                    item_title => &item.title,
                    item_url => config.url(&format!("/items/{}", item.id)),
                    auction_name => &item.auction_name,
                    price_cents => price,
                    next_minimum_cents => next_minimum,
                    closes_at => item.closes_at.map(|t| t.to_rfc3339()),
                },
            )
        }
        "win" => {
            let item = item.ok_or_else(|| Hold::Fail("the item is gone".into()))?;
            (
                format!("You won \"{}\"", item.title),
                context! {
                    item_title => &item.title,
                    item_url => config.url(&format!("/items/{}", item.id)),
                    auction_name => &item.auction_name,
                    amount_cents => cents("amountCents"),
                },
            )
        }
        "reoffer_announcement" => {
            let auction = row
                .related_entity_id
                .and_then(|id| facts.auctions.get(&id))
                .map(String::as_str)
                .unwrap_or("the church auction");
            (
                format!("Items left from {auction} are for sale now"),
                context! {
                    auction_name => auction,
                    opens_at => payload.get("opensAt").and_then(|v| v.as_str()),
                    closes_at => payload.get("closesAt").and_then(|v| v.as_str()),
                    reoffer_url => config.url("/reoffer"),
                },
            )
        }
        "registration" => (
            "Welcome to the church auction".to_string(),
            context! { paddle_number => payload.get("paddleNumber").and_then(|v| v.as_i64()) },
        ),
        "custom" => {
            let body = payload.get("body").and_then(|v| v.as_str()).unwrap_or("");
            if body.trim().is_empty() {
                return Err(Hold::Fail("a custom message without a body".into()));
            }
            let paragraphs: Vec<&str> = body
                .split("\n\n")
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .collect();
            (
                payload
                    .get("subject")
                    .and_then(|v| v.as_str())
                    .filter(|s| !s.trim().is_empty())
                    .unwrap_or("A message from the auction team")
                    .to_string(),
                context! { body => body, paragraphs => paragraphs },
            )
        }
        other => {
            return Err(Hold::Fail(format!(
                "no email for notifications of type {other}"
            )))
        }
    };
    let subject = one_line(&subject);
    let ctx = merge_maps([context! { subject => &subject }, data, base]);
    let render = |ext: &str| {
        templates
            .render(&format!("email/{key}.{ext}"), ctx.clone())
            .map_err(|e| Hold::Fail(format!("template email/{key}.{ext}: {e}")))
    };
    Ok(Email {
        to: row.email.clone(),
        to_name: Some(row.name.clone()),
        subject,
        text: render("txt")?,
        html: Some(render("html")?),
        message_id: Some(row.message_id.clone()),
        list_unsubscribe: unsubscribe.map(|url| format!("<{url}>")),
    })
}

/// A text message: where to and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextMessage {
    pub to: String,
    pub text: String,
}

/// The longest text sent: three SMS segments.
const TEXT_MAX_CHARS: usize = 450;

/// The text message for an `sms` row, or why there is none. Short, plain words, one link.
pub fn compose_text(config: &Config, facts: &Facts, row: &Claimed) -> Result<TextMessage, Hold> {
    let Some(phone) = row.phone.as_deref().filter(|p| !p.trim().is_empty()) else {
        return Err(Hold::Skip("no phone number".into()));
    };
    if !row.pref_sms {
        return Err(Hold::Skip("text messages are turned off".into()));
    }
    if row.muted_notifications.contains(&row.kind) {
        return Err(Hold::Skip(format!("{} notices are turned off", row.kind)));
    }
    let item = row
        .related_entity_id
        .filter(|_| row.related_entity_type.as_deref() == Some("item"))
        .and_then(|id| facts.items.get(&id));
    let cents = |field: &str| row.payload.get(field).and_then(|v| v.as_i64());
    let money = |c: Option<i64>| c.map(crate::templates::money).unwrap_or_default();
    let text = match row.kind.as_str() {
        "outbid" => {
            let item = item.ok_or_else(|| Hold::Fail("the item is gone".into()))?;
            if item.leader_id == Some(row.user_id) {
                return Err(Hold::Skip("the bidder took the lead back".into()));
            }
            if item.closed {
                return Err(Hold::Skip("bidding on the item had closed".into()));
            }
            format!(
                "Church auction: someone bid more than you on \"{}\". The highest bid is now {}. Bid again: {}",
                item.title,
                money(item.current_price.or(cents("currentBidCents"))),
                config.url(&format!("/items/{}", item.id))
            )
        }
        "win" => {
            let item = item.ok_or_else(|| Hold::Fail("the item is gone".into()))?;
            format!(
                "Church auction: you won \"{}\" for {}. Thank you!",
                item.title,
                money(cents("amountCents"))
            )
        }
        "reoffer_announcement" => format!(
            "Church auction: items nobody won are for sale now. See them: {}",
            config.url("/reoffer")
        ),
        "registration" => "Welcome to the church auction! You can bid once bidding opens.".into(),
        "custom" => {
            let subject = row
                .payload
                .get("subject")
                .and_then(|v| v.as_str())
                .unwrap_or("");
            let body = row
                .payload
                .get("body")
                .and_then(|v| v.as_str())
                .unwrap_or("");
            if body.trim().is_empty() {
                return Err(Hold::Fail("a custom message without a body".into()));
            }
            format!("Church auction: {subject}. {body}")
        }
        other => {
            return Err(Hold::Fail(format!(
                "no text for notifications of type {other}"
            )))
        }
    };
    let text = one_line(&text);
    let text = if text.chars().count() > TEXT_MAX_CHARS {
        let cut: String = text.chars().take(TEXT_MAX_CHARS - 1).collect();
        format!("{cut}…")
    } else {
        text
    };
    Ok(TextMessage {
        to: phone.trim().to_string(),
        text,
    })
}

#[cfg(test)]
// Money literals are written dollars_cents (`150_00` is $150.00), like prices.
#[allow(clippy::inconsistent_digit_grouping)]
mod tests {
    use std::path::PathBuf;

    use chrono::{TimeZone, Utc};
    use serde_json::json;

    use super::*;
    use crate::local_time::LocalTime;

    fn setup() -> (Templates, Config, Facts) {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let zone = LocalTime::parse("America/Chicago").unwrap();
        let templates = Templates::load(&root.join("templates"), zone).unwrap();
        let mut config = Config::for_tests("postgres://unused", &std::env::temp_dir());
        config.base_url = url::Url::parse("https://auction.example.org").unwrap();
        let mut facts = Facts::default();
        facts.items.insert(
            7,
            ItemFacts {
                id: 7,
                title: "Handmade <Quilt> & pillows".into(),
                auction_id: 1,
                auction_name: "Spring Auction 2026".into(),
                current_price: Some(150_00),
                leader_id: Some(2),
                closes_at: Some(Utc.with_ymd_and_hms(2026, 5, 3, 23, 30, 0).unwrap()),
                closed: false,
            },
        );
        facts.auctions.insert(1, "Spring Auction 2026".into());
        (templates, config, facts)
    }

    fn row(
        kind: &str,
        key: &str,
        payload: serde_json::Value,
        related: Option<(&str, i64)>,
    ) -> Claimed {
        Claimed {
            id: 42,
            user_id: 1,
            channel: "email".into(),
            kind: kind.into(),
            template_key: key.into(),
            payload,
            related_entity_type: related.map(|(t, _)| t.to_string()),
            related_entity_id: related.map(|(_, id)| id),
            attempts: 1,
            message_id: "<notification-42.1@example.org>".into(),
            email: "ann@example.org".into(),
            name: "Ann O'Neil".into(),
            pref_email: true,
            pref_sms: true,
            phone: Some("+15551234567".into()),
            muted_notifications: Vec::new(),
        }
    }

    fn rendered(row: &Claimed) -> String {
        let (templates, config, facts) = setup();
        let email = compose(&templates, &config, &facts, row).unwrap();
        format!(
            "Subject: {}\n\n{}\n----- HTML -----\n{}",
            email.subject,
            email.text,
            email.html.unwrap()
        )
    }

    #[test]
    fn outbid_renders_with_the_latest_price_and_local_close_time() {
        let row = row(
            "outbid",
            "outbid",
            json!({ "itemId": 7, "currentBidCents": 150_00, "nextMinimumCents": 160_00 }),
            Some(("item", 7)),
        );
        insta::assert_snapshot!(rendered(&row));
    }

    #[test]
    fn win_renders() {
        let row = row(
            "win",
            "win",
            json!({ "itemId": 7, "amountCents": 150_00 }),
            Some(("item", 7)),
        );
        insta::assert_snapshot!(rendered(&row));
    }

    #[test]
    fn reoffer_announcement_renders_its_dates_in_the_auctions_zone() {
        let row = row(
            "reoffer_announcement",
            "reoffer_open",
            json!({ "auctionId": 1, "opensAt": "2026-05-04T14:00:00Z", "closesAt": "2026-05-05T02:00:00Z" }),
            Some(("auction", 1)),
        );
        insta::assert_snapshot!(rendered(&row));
    }

    #[test]
    fn registration_renders() {
        let row = row(
            "registration",
            "registration",
            json!({ "paddleNumber": 117 }),
            None,
        );
        insta::assert_snapshot!(rendered(&row));
    }

    #[test]
    fn custom_renders_its_paragraphs_escaped_in_html() {
        let row = row(
            "custom",
            "custom",
            json!({ "subject": "Parking\r\ntonight", "body": "Park behind the hall.\n\nBring <your> paddle & a smile." }),
            None,
        );
        insta::assert_snapshot!(rendered(&row));
    }

    #[test]
    fn what_is_not_sent_says_why() {
        let (templates, config, facts) = setup();
        let mut leader = row("outbid", "outbid", json!({}), Some(("item", 7)));
        leader.user_id = 2;
        assert_eq!(
            compose(&templates, &config, &facts, &leader).unwrap_err(),
            Hold::Skip("the bidder took the lead back".into())
        );
        let mut quiet = row(
            "reoffer_announcement",
            "reoffer_open",
            json!({}),
            Some(("auction", 1)),
        );
        quiet.pref_email = false;
        assert_eq!(
            compose(&templates, &config, &facts, &quiet).unwrap_err(),
            Hold::Skip("email notices are turned off".into())
        );
        let sneaky = row("custom", "../base", json!({ "body": "x" }), None);
        assert!(matches!(
            compose(&templates, &config, &facts, &sneaky),
            Err(Hold::Fail(_))
        ));
        let later = row("settlement", "settlement", json!({}), None);
        assert!(matches!(
            compose(&templates, &config, &facts, &later),
            Err(Hold::Fail(_))
        ));
    }

    #[test]
    fn texts_are_short_and_plain() {
        let (_, config, facts) = setup();
        let outbid = row(
            "outbid",
            "outbid",
            json!({ "currentBidCents": 150_00 }),
            Some(("item", 7)),
        );
        let mut sms = outbid.clone();
        sms.channel = "sms".into();
        assert_eq!(
            compose_text(&config, &facts, &sms).unwrap(),
            TextMessage {
                to: "+15551234567".into(),
                text: "Church auction: someone bid more than you on \"Handmade <Quilt> & pillows\". The highest bid is now $150.00. Bid again: https://auction.example.org/items/7".into(),
            }
        );
        let mut off = sms.clone();
        off.pref_sms = false;
        assert_eq!(
            compose_text(&config, &facts, &off).unwrap_err(),
            Hold::Skip("text messages are turned off".into())
        );
        let mut long = row(
            "custom",
            "custom",
            json!({ "subject": "News", "body": "word ".repeat(200) }),
            None,
        );
        long.channel = "sms".into();
        let text = compose_text(&config, &facts, &long).unwrap().text;
        assert_eq!(text.chars().count(), TEXT_MAX_CHARS);
        assert!(text.ends_with('…'));
    }
}
