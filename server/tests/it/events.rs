//! Hosted events: details, who may write them, and address privacy in every response shape
//! (item, event, catalog list) for every role.

use crate::helpers::{assert_error, event_body, publish_item, Browser, TestApp};
use auuction::domain::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

fn dinner() -> Value {
    json!({ "type": "fixed_price_event", "title": "Italian Dinner", "categoryId": "cat_1",
            "openingBid": 40, "quantityTotal": 8, "tags": ["food"] })
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn the_host_writes_the_event_until_publication(db: PgPool) {
    let app = TestApp::spawn(db).await;
    app.create_auction().await;
    let host = app.login_as("host@example.org", &[Role::Donor]).await;
    let other = app.login_as("other@example.org", &[Role::Donor]).await;
    let manager = app.login_as("manager@example.org", &[Role::Manager]).await;
    let admin = app.login_as("admin@example.org", &[Role::Admin]).await;
    let guest = app.anonymous();
    let item = host.create_item(dinner()).await;
    let id = item["id"].as_str().unwrap();
    let url = format!("/api/items/{id}/event");

    // A hosted event cannot go to review without its details.
    assert_error(
        host.post(&format!("/api/items/{id}/submit"), json!({}))
            .await,
        422,
        "event_required",
    )
    .await;
    assert_error(host.get(&url).await, 404, "not_found").await;
    assert_error(
        host.put(&url, event_body("hide_all")).await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        guest.post(&url, event_body("hide_all")).await,
        401,
        "unauthenticated",
    )
    .await;
    assert_error(
        other.post(&url, event_body("hide_all")).await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        manager.post(&url, event_body("hide_all")).await,
        403,
        "forbidden",
    )
    .await;

    let r = host.post(&url, event_body("show_full_to_attendees")).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let ev: Value = r.json().await.unwrap();
    assert!(ev["id"].as_str().unwrap().starts_with("ev_"));
    assert_eq!(ev["itemId"], id);
    assert_eq!(ev["capacity"], 8);
    assert_eq!(ev["seatsLeft"], 8);
    assert_eq!(ev["addressLine1"], "12 Elm Street");
    assert_eq!(ev["hostNotes"], "Door code 4321");
    assert_eq!(ev["addressShown"], "full");
    assert_eq!(ev["datetimeStart"], "2026-06-12T18:00:00Z");
    assert_error(
        host.post(&url, event_body("hide_all")).await,
        409,
        "event_exists",
    )
    .await;

    // Bad input, each with its code.
    let with = |k: &str, v: Value| {
        let mut b = event_body("hide_all");
        b[k] = v;
        b
    };
    for (body, field) in [
        (with("capacity", json!(0)), Some("capacity")),
        (
            with("datetimeEnd", json!("2026-06-12T17:00:00Z")),
            Some("datetimeEnd"),
        ),
        (
            with("postalCode", json!("9".repeat(21))),
            Some("postalCode"),
        ),
        (with("addressPrivacy", json!("public")), None),
        (with("datetimeStart", json!("next tuesday")), None),
    ] {
        let b = assert_error(host.put(&url, body).await, 422, "validation_failed").await;
        if let Some(field) = field {
            assert_eq!(b["field"], field);
        }
    }

    let mut moved = event_body("hide_all");
    moved["capacity"] = json!(6);
    let r = host.put(&url, moved.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["capacity"], 6);
    host.post(&format!("/api/items/{id}/submit"), json!({}))
        .await;
    manager
        .post(
            &format!("/api/items/{id}/review"),
            json!({ "decision": "approve" }),
        )
        .await;
    assert_error(host.put(&url, moved.clone()).await, 409, "item_approved").await;
    moved["capacity"] = json!(7);
    assert_eq!(
        admin.put(&url, moved.clone()).await.status(),
        StatusCode::OK
    );
    let audit = admin
        .json(&format!("/api/audit?entityType=item&entityId={id}"))
        .await;
    assert_eq!(audit["entries"][0]["action"], "event.updated_by_admin");
    assert_eq!(audit["entries"][0]["before"]["capacity"], 6);
    manager
        .post(&format!("/api/items/{id}/publish"), json!({}))
        .await;
    assert_error(host.put(&url, moved.clone()).await, 409, "item_published").await;
    assert_error(admin.put(&url, moved).await, 409, "item_published").await;
}

struct People {
    app: TestApp,
    host: Browser,
    manager: Browser,
    admin: Browser,
    attendee: Browser,
    waitlisted: Browser,
    signed_up: Browser,
    bidder: Browser,
    other_donor: Browser,
    guest: Browser,
}

/// Publishes a dinner with the given privacy; places attendee (confirmed), waitlisted
/// (waitlisted) and signed_up (an active signup for the item).
async fn setup(db: PgPool, privacy: &str) -> (People, String) {
    let app = TestApp::spawn(db).await;
    app.create_auction().await;
    let p = People {
        host: app.login_as("host@example.org", &[Role::Donor]).await,
        manager: app.login_as("manager@example.org", &[Role::Manager]).await,
        admin: app.login_as("admin@example.org", &[Role::Admin]).await,
        attendee: app.login_as("attendee@example.org", &[Role::Bidder]).await,
        waitlisted: app.login_as("wait@example.org", &[Role::Bidder]).await,
        signed_up: app.login_as("signup@example.org", &[Role::Bidder]).await,
        bidder: app.login_as("bidder@example.org", &[Role::Bidder]).await,
        other_donor: app.login_as("other@example.org", &[Role::Donor]).await,
        guest: app.anonymous(),
        app,
    };
    let item = p.host.create_item(dinner()).await;
    let id = item["id"].as_str().unwrap().to_string();
    let r = p
        .host
        .post(&format!("/api/items/{id}/event"), event_body(privacy))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    publish_item(&p.host, &p.manager, &id).await;
    let event_id: i64 = sqlx::query_scalar("SELECT id FROM events")
        .fetch_one(&p.app.db)
        .await
        .unwrap();
    for (who, status) in [
        ("attendee@example.org", "confirmed"),
        ("wait@example.org", "waitlisted"),
    ] {
        sqlx::query(
            "INSERT INTO attendance (event_id, user_id, status)
             SELECT $1, id, $3 FROM users WHERE email = $2",
        )
        .bind(event_id)
        .bind(who)
        .bind(status)
        .execute(&p.app.db)
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO signups (item_id, user_id, quantity, price_at_signup)
         SELECT $1, id, 2, 4000 FROM users WHERE email = 'signup@example.org'",
    )
    .bind(TestApp::num(&json!(id)))
    .execute(&p.app.db)
    .await
    .unwrap();
    (p, id)
}

/// What a viewer must see: the street, the city, the host's notes.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
struct Sees {
    street: bool,
    city: bool,
    notes: bool,
}

const FULL: Sees = Sees {
    street: true,
    city: true,
    notes: true,
};
const FULL_NO_NOTES: Sees = Sees {
    street: true,
    city: true,
    notes: false,
};
const CITY: Sees = Sees {
    street: false,
    city: true,
    notes: false,
};
const NOTHING: Sees = Sees {
    street: false,
    city: false,
    notes: false,
};

/// Checks the three response shapes as raw text, so no field can leak under another name.
async fn check(who: &Browser, id: &str, want: Sees, label: &str) {
    let shapes = [
        format!("/api/items/{id}"),
        format!("/api/items/{id}/event"),
        "/api/items".to_string(),
        "/api/items?seatsLeft=true&q=italian".to_string(),
    ];
    for path in shapes {
        let r = who.get(&path).await;
        assert_eq!(r.status(), StatusCode::OK, "{label} {path}");
        let text = r.text().await.unwrap();
        assert!(
            text.contains("Italian Dinner") || path.ends_with("/event"),
            "{label} {path}: {text}"
        );
        let got = Sees {
            street: text.contains("12 Elm Street")
                || text.contains("Apt 3")
                || text.contains("37919"),
            city: text.contains("Knoxville"),
            notes: text.contains("Door code"),
        };
        assert_eq!(got, want, "{label} on {path}: {text}");
        // The notes everybody may read are always there.
        assert!(text.contains("Three steps at the door"), "{label} {path}");
    }
}

async fn check_everyone(p: &People, id: &str, public: Sees, attendee: Sees) {
    check(&p.host, id, FULL, "host").await;
    check(&p.manager, id, FULL, "manager").await;
    check(&p.admin, id, FULL, "admin").await;
    check(&p.attendee, id, attendee, "confirmed attendee").await;
    check(&p.signed_up, id, attendee, "active signup").await;
    check(&p.waitlisted, id, public, "waitlisted").await;
    check(&p.bidder, id, public, "bidder").await;
    check(&p.other_donor, id, public, "another donor").await;
    check(&p.guest, id, public, "guest").await;
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn hide_all_hides_even_the_city(db: PgPool) {
    let (p, id) = setup(db, "hide_all").await;
    check_everyone(&p, &id, NOTHING, NOTHING).await;
    let ev = p.guest.json(&format!("/api/items/{id}/event")).await;
    assert_eq!(ev["addressShown"], "nothing");
    assert_eq!(ev["addressPrivacy"], "hide_all");
    assert_eq!(ev["locationLabel"], "The Smiths' home");
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn show_city_only_shows_the_city_to_all_but_host_and_staff(db: PgPool) {
    let (p, id) = setup(db, "show_city_only").await;
    check_everyone(&p, &id, CITY, CITY).await;
    let ev = p.attendee.json(&format!("/api/items/{id}/event")).await;
    assert_eq!(ev["addressShown"], "city_only");
    assert_eq!(ev["state"], "TN");
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn show_full_to_attendees_shows_the_street_to_confirmed_guests(db: PgPool) {
    let (p, id) = setup(db, "show_full_to_attendees").await;
    check_everyone(&p, &id, CITY, FULL_NO_NOTES).await;
    // A canceled place stops showing it.
    sqlx::query("UPDATE attendance SET status = 'canceled'")
        .execute(&p.app.db)
        .await
        .unwrap();
    check(&p.attendee, &id, CITY, "canceled attendee").await;
    // Seats: capacity 8, one confirmed place was canceled, none taken.
    let ev = p.guest.json(&format!("/api/items/{id}/event")).await;
    assert_eq!(ev["seatsLeft"], 8);
}
