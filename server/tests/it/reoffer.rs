//! Reoffer (buy-it-now) settings: the spec's request and response, its defaults, and
//! owner-or-admin access.

use crate::helpers::{assert_error, item_body, publish_item, TestApp};
use auuction::domain::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn defaults_then_the_spec_request_and_response(db: PgPool) {
    let app = TestApp::spawn(db).await;
    app.create_auction().await;
    let donor = app.login_as("donor@example.org", &[Role::Donor]).await;
    let mut body = item_body("Picnic Basket");
    body["type"] = json!("fixed_price_item");
    body["openingBid"] = json!(50);
    body["quantityTotal"] = json!(3);
    let item = donor.create_item(body).await;
    let id = item["id"].as_str().unwrap();
    let url = format!("/api/items/{id}/reoffer");

    // Nothing saved: participate, the opening bid, every remaining unit.
    let text = donor.get(&url).await.text().await.unwrap();
    assert!(text.contains("\"price\":50.00"), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["itemId"], id);
    assert_eq!(v["participate"], true);
    assert_eq!(v["quantityEffective"], 3);
    assert_eq!(v["quantityOverride"], Value::Null);

    // The spec's example, price below the opening bid.
    let r = donor
        .put(
            &url,
            json!({ "participate": true, "price": 40.00, "quantityOverride": 2, "notes": "Offer 2 units in reoffer" }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    assert_eq!(
        text,
        format!(
            "{{\"itemId\":\"{id}\",\"participate\":true,\"price\":40.00,\"quantityEffective\":2}}"
        )
    );
    let v = donor.json(&url).await;
    assert_eq!(v["notes"], "Offer 2 units in reoffer");
    assert_eq!(v["quantityOverride"], 2);

    // Null price goes back to the opening bid; opting out is kept.
    let text = donor
        .put(
            &url,
            json!({ "participate": false, "price": null, "quantityOverride": null }),
        )
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        text,
        format!(
            "{{\"itemId\":\"{id}\",\"participate\":false,\"price\":50.00,\"quantityEffective\":3}}"
        )
    );

    // Units sold since: the effective quantity never exceeds what remains.
    donor.put(&url, json!({ "quantityOverride": 3 })).await;
    sqlx::query("UPDATE items SET quantity_sold = 2 WHERE id = $1")
        .bind(TestApp::num(&item["id"]))
        .execute(&app.db)
        .await
        .unwrap();
    assert_eq!(donor.json(&url).await["quantityEffective"], 1);
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn bad_settings_are_refused(db: PgPool) {
    let app = TestApp::spawn(db).await;
    app.create_auction().await;
    let donor = app.login_as("donor@example.org", &[Role::Donor]).await;
    let mut body = item_body("Pies");
    body["quantityTotal"] = json!(2);
    let item = donor.create_item(body).await;
    let url = format!("/api/items/{}/reoffer", item["id"].as_str().unwrap());
    for (req, field) in [
        (json!({ "quantityOverride": 3 }), Some("quantityOverride")),
        (json!({ "quantityOverride": 0 }), Some("quantityOverride")),
        (json!({ "price": -1 }), None),
        (json!({ "price": 1.234 }), None),
        (json!({ "notes": "n".repeat(2001) }), Some("notes")),
        (json!({ "allowBelowMin": false }), None),
    ] {
        let b = assert_error(donor.put(&url, req).await, 422, "validation_failed").await;
        if let Some(f) = field {
            assert_eq!(b["field"], f);
        }
    }
    assert_eq!(donor.json(&url).await["quantityEffective"], 2);
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn only_the_owner_or_an_admin(db: PgPool) {
    let app = TestApp::spawn(db).await;
    app.create_auction().await;
    let donor = app.login_as("donor@example.org", &[Role::Donor]).await;
    let other = app.login_as("other@example.org", &[Role::Donor]).await;
    let manager = app.login_as("manager@example.org", &[Role::Manager]).await;
    let admin = app.login_as("admin@example.org", &[Role::Admin]).await;
    let bidder = app.login_as("bidder@example.org", &[Role::Bidder]).await;
    let guest = app.anonymous();
    let item = donor.create_item(item_body("Quilt")).await;
    let id = item["id"].as_str().unwrap();
    let url = format!("/api/items/{id}/reoffer");
    let req = json!({ "price": 30 });

    // Draft: strangers cannot even see it.
    assert_error(other.get(&url).await, 404, "not_found").await;
    assert_error(guest.get(&url).await, 401, "unauthenticated").await;
    assert_error(manager.put(&url, req.clone()).await, 403, "forbidden").await;

    publish_item(&donor, &manager, id).await;
    // Published: visible to all, still only the owner's and admins' to read or set, and
    // (unlike the item's fields) the donor may still change it until the reoffer opens.
    for who in [&other, &bidder, &manager] {
        assert_error(who.get(&url).await, 403, "forbidden").await;
        assert_error(who.put(&url, req.clone()).await, 403, "forbidden").await;
    }
    assert_error(guest.put(&url, req.clone()).await, 401, "unauthenticated").await;
    assert_eq!(donor.put(&url, req.clone()).await.status(), StatusCode::OK);
    let r = admin.put(&url, json!({ "price": 35 })).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(admin.json(&url).await["priceSet"].to_string(), "35.0");
    let audit = admin
        .json(&format!("/api/audit?entityType=item&entityId={id}"))
        .await;
    assert_eq!(audit["entries"][0]["action"], "reoffer.updated_by_admin");
    assert_eq!(audit["entries"][0]["before"]["price"], 3000);

    // Once the reoffer window opens, the terms are fixed.
    sqlx::query("UPDATE auctions SET state_override = 'reoffer'")
        .execute(&app.db)
        .await
        .unwrap();
    assert_error(donor.put(&url, req).await, 409, "reoffer_started").await;
}
