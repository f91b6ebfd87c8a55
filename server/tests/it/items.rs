//! Items: donors' drafts, edits, the review workflow, publishing, and who may do what.

use crate::helpers::{assert_error, item_body, publish_item, Browser, TestApp};
use auuction::domain::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

struct Cast {
    app: TestApp,
    donor: Browser,
    other: Browser,
    manager: Browser,
    admin: Browser,
    bidder: Browser,
    guest: Browser,
}

async fn cast(db: PgPool) -> Cast {
    let app = TestApp::spawn(db).await;
    app.create_auction().await;
    Cast {
        donor: app
            .login_as("donor@example.org", &[Role::Bidder, Role::Donor])
            .await,
        other: app
            .login_as("other@example.org", &[Role::Bidder, Role::Donor])
            .await,
        manager: app.login_as("manager@example.org", &[Role::Manager]).await,
        admin: app.login_as("admin@example.org", &[Role::Admin]).await,
        bidder: app.login_as("bidder@example.org", &[Role::Bidder]).await,
        guest: app.anonymous(),
        app,
    }
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn a_donor_creates_a_draft_with_every_field(db: PgPool) {
    let c = cast(db).await;
    let r = c
        .donor
        .post(
            "/api/items",
            json!({
                "type": "competitive",
                "title": "  Handmade Quilt ",
                "description": "Queen size, blue and white.",
                "donorNotes": "Made by the Tuesday quilters.",
                "restrictions": "Pick up at church by June 30.",
                "categoryId": "cat_3",
                "tags": ["Quilt", "handmade", "quilt"],
                "openingBid": "125.5",
                "bidIncrement": 5,
                "buyNowPrice": 400,
                "fairMarketValue": 300.25,
                "quantityTotal": 1,
            }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // Money leaves as the spec's numbers with two decimals (checked on the raw text).
    let text = r.text().await.unwrap();
    assert!(text.contains("\"openingBid\":125.50"), "{text}");
    assert!(text.contains("\"fairMarketValue\":300.25"), "{text}");
    assert!(text.contains("\"bidIncrement\":5.00"), "{text}");
    let item: Value = serde_json::from_str(&text).unwrap();
    assert!(item["id"].as_str().unwrap().starts_with("it_"));
    assert!(item["auctionId"].as_str().unwrap().starts_with("a_"));
    assert!(item["donorId"].as_str().unwrap().starts_with("u_"));
    assert_eq!(item["donorName"], "User donor@example.org");
    assert_eq!(item["type"], "competitive");
    assert_eq!(item["title"], "Handmade Quilt");
    assert_eq!(item["status"], "draft");
    assert_eq!(
        item["category"],
        json!({ "id": "cat_3", "name": "Goods", "slug": "goods" })
    );
    assert_eq!(item["tags"], json!(["quilt", "handmade"]));
    assert_eq!(item["quantityRemaining"], 1);
    assert_eq!(item["currentBid"], Value::Null);
    assert_eq!(item["bidCount"], 0);
    assert!(item["closesAt"].is_string());
    assert_eq!(item["featured"], false);
    assert_eq!(item["images"], json!([]));
    assert_eq!(item["event"], Value::Null);
    // Never the leader or anyone's maximum.
    assert!(item.get("leaderId").is_none() && item.get("leadingBidderId").is_none());
    assert!(!text.contains("maxProxy"));
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn creating_needs_the_donor_role(db: PgPool) {
    let c = cast(db).await;
    assert_error(
        c.guest.post("/api/items", item_body("x")).await,
        401,
        "unauthenticated",
    )
    .await;
    assert_error(
        c.bidder.post("/api/items", item_body("x")).await,
        403,
        "forbidden",
    )
    .await;
    assert_error(
        c.manager.post("/api/items", item_body("x")).await,
        403,
        "forbidden",
    )
    .await;
    // Admins hold every role.
    c.admin.create_item(item_body("Admin's item")).await;
    // Featuring is a manager's call.
    let mut featured = item_body("Featured?");
    featured["featured"] = json!(true);
    let body = assert_error(c.donor.post("/api/items", featured).await, 403, "forbidden").await;
    assert_eq!(body["field"], "featured");
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn bad_item_input_is_refused_with_its_code(db: PgPool) {
    let c = cast(db).await;
    let with = |k: &str, v: Value| {
        let mut b = item_body("Thing");
        b[k] = v;
        b
    };
    let cases: Vec<(Value, u16, &str)> = vec![
        (with("openingBid", json!(-5)), 422, "validation_failed"),
        (with("openingBid", json!(10.005)), 422, "validation_failed"),
        (with("openingBid", json!("1e3")), 422, "validation_failed"),
        (with("fairMarketValue", json!(-1)), 422, "validation_failed"),
        (with("buyNowPrice", json!(1.999)), 422, "validation_failed"),
        (with("quantityTotal", json!(0)), 422, "validation_failed"),
        (with("title", json!("   ")), 422, "validation_failed"),
        (
            with("title", json!("t".repeat(201))),
            422,
            "validation_failed",
        ),
        (with("type", json!("raffle")), 422, "validation_failed"),
        (with("categoryId", json!("cat_99")), 422, "unknown_category"),
        (
            with("tags", json!(["no;semicolons"])),
            422,
            "validation_failed",
        ),
        (with("auctionId", json!("a_999")), 422, "unknown_auction"),
        (with("surprise", json!(1)), 422, "validation_failed"),
    ];
    for (body, status, code) in cases {
        assert_error(c.donor.post("/api/items", body).await, status, code).await;
    }
    // Increments are only for competitive items.
    for t in ["fixed_price_event", "fixed_price_item", "service"] {
        let mut b = with("type", json!(t));
        b["bidIncrement"] = json!(5);
        let body = assert_error(
            c.donor.post("/api/items", b).await,
            422,
            "validation_failed",
        )
        .await;
        assert_eq!(body["field"], "bidIncrement");
    }
    // An inactive category.
    sqlx::query("UPDATE categories SET active = FALSE WHERE id = 2")
        .execute(&c.app.db)
        .await
        .unwrap();
    assert_error(
        c.donor
            .post("/api/items", with("categoryId", json!("cat_2")))
            .await,
        422,
        "inactive_category",
    )
    .await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM items")
        .fetch_one(&c.app.db)
        .await
        .unwrap();
    assert_eq!(n, 0);
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn no_auction_means_nothing_to_add_to(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let donor = app.login_as("d@example.org", &[Role::Donor]).await;
    assert_error(
        donor.post("/api/items", item_body("x")).await,
        409,
        "no_auction",
    )
    .await;
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn drafts_are_seen_only_by_their_donor_and_staff(db: PgPool) {
    let c = cast(db).await;
    let item = c.donor.create_item(item_body("Secret draft")).await;
    let path = format!("/api/items/{}", item["id"].as_str().unwrap());
    for who in [&c.donor, &c.manager, &c.admin] {
        assert_eq!(who.json(&path).await["title"], "Secret draft");
    }
    for who in [&c.other, &c.bidder, &c.guest] {
        assert_error(who.get(&path).await, 404, "not_found").await;
    }
    assert_error(c.guest.get("/api/items/it_9999").await, 404, "not_found").await;
    assert_error(c.guest.get("/api/items/pizza").await, 404, "not_found").await;
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn the_review_workflow_from_draft_to_published(db: PgPool) {
    let c = cast(db).await;
    let item = c.donor.create_item(item_body("Garden tour")).await;
    let id = item["id"].as_str().unwrap();
    let url = |s: &str| format!("/api/items/{id}/{s}");

    // Only the owner submits; nothing skips the queue.
    assert_error(
        c.other.post(&url("submit"), json!({})).await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        c.manager.post(&url("submit"), json!({})).await,
        403,
        "forbidden",
    )
    .await;
    assert_error(
        c.manager
            .post(&url("review"), json!({ "decision": "approve" }))
            .await,
        409,
        "invalid_transition",
    )
    .await;
    assert_error(
        c.manager.post(&url("publish"), json!({})).await,
        409,
        "invalid_transition",
    )
    .await;
    let submitted: Value = c
        .donor
        .post(&url("submit"), json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(submitted["status"], "submitted");
    assert_error(
        c.donor.post(&url("submit"), json!({})).await,
        409,
        "invalid_transition",
    )
    .await;

    // The manager's queue.
    let queue = c.manager.json("/api/items?status=submitted").await;
    assert_eq!(queue["total"], 1);
    assert_eq!(queue["items"][0]["id"], id);
    assert_error(
        c.donor.get("/api/items?status=submitted").await,
        403,
        "forbidden",
    )
    .await;
    assert_error(
        c.guest.get("/api/items?status=draft").await,
        403,
        "forbidden",
    )
    .await;

    // Donors do not review, not even their own.
    assert_error(
        c.donor
            .post(&url("review"), json!({ "decision": "approve" }))
            .await,
        403,
        "forbidden",
    )
    .await;
    // Returning needs a note; unknown decisions are refused.
    let body = assert_error(
        c.manager
            .post(&url("review"), json!({ "decision": "return" }))
            .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(body["field"], "note");
    assert_error(
        c.manager
            .post(&url("review"), json!({ "decision": "maybe" }))
            .await,
        422,
        "validation_failed",
    )
    .await;
    let returned: Value = c
        .manager
        .post(
            &url("review"),
            json!({ "decision": "return", "note": "Please add a photo." }),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(returned["status"], "draft");
    let mine = c.donor.json(&format!("/api/items/{id}")).await;
    assert_eq!(mine["reviewNote"], "Please add a photo.");

    // Resubmit, approve, publish.
    c.donor.post(&url("submit"), json!({})).await;
    let approved: Value = c
        .manager
        .post(&url("review"), json!({ "decision": "approve" }))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(approved["status"], "approved");
    assert_error(
        c.donor.post(&url("publish"), json!({})).await,
        403,
        "forbidden",
    )
    .await;
    assert_error(
        c.guest.post(&url("publish"), json!({})).await,
        401,
        "unauthenticated",
    )
    .await;
    let published: Value = c
        .manager
        .post(&url("publish"), json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(published["status"], "published");
    assert_error(
        c.manager.post(&url("publish"), json!({})).await,
        409,
        "invalid_transition",
    )
    .await;

    // Now public, and without the manager's note for the public.
    for who in [&c.guest, &c.bidder, &c.other] {
        let seen = who.json(&format!("/api/items/{id}")).await;
        assert_eq!(seen["status"], "published");
        assert!(seen.get("reviewNote").is_none());
    }
    let audit: Value = c
        .admin
        .json(&format!("/api/audit?entityType=item&entityId={id}"))
        .await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec!["item.published", "item.approved", "item.returned"]
    );
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn editing_follows_the_owner_and_status_rules(db: PgPool) {
    let c = cast(db).await;
    let item = c.donor.create_item(item_body("Pie")).await;
    let id = item["id"].as_str().unwrap();
    let path = format!("/api/items/{id}");
    let mut edit = item_body("Apple pie");
    edit["openingBid"] = json!(20);

    let r = c.donor.put(&path, edit.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    assert!(text.contains("\"openingBid\":20.00"), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["title"], "Apple pie");

    assert_error(c.other.put(&path, edit.clone()).await, 404, "not_found").await;
    assert_error(c.bidder.put(&path, edit.clone()).await, 404, "not_found").await;
    assert_error(
        c.guest.put(&path, edit.clone()).await,
        401,
        "unauthenticated",
    )
    .await;
    // Managers curate but do not rewrite donors' items.
    assert_error(c.manager.put(&path, edit.clone()).await, 403, "forbidden").await;
    // A donor cannot feature their own item; a bad edit changes nothing.
    let mut featured = edit.clone();
    featured["featured"] = json!(true);
    assert_error(c.donor.put(&path, featured).await, 403, "forbidden").await;
    let mut fixed = edit.clone();
    fixed["type"] = json!("fixed_price_item");
    fixed["bidIncrement"] = json!(2);
    assert_error(c.donor.put(&path, fixed).await, 422, "validation_failed").await;
    let mut money = edit.clone();
    money["openingBid"] = json!(-1);
    assert_error(c.donor.put(&path, money).await, 422, "validation_failed").await;
    assert_eq!(c.donor.json(&path).await["title"], "Apple pie");

    // Submitted: still the owner's to fix. Approved: frozen for the owner, admin audited.
    c.donor.post(&format!("{path}/submit"), json!({})).await;
    edit["title"] = json!("Apple pie (submitted)");
    assert_eq!(
        c.donor.put(&path, edit.clone()).await.status(),
        StatusCode::OK
    );
    c.manager
        .post(&format!("{path}/review"), json!({ "decision": "approve" }))
        .await;
    assert_error(c.donor.put(&path, edit.clone()).await, 409, "item_approved").await;
    edit["title"] = json!("Apple pie (admin)");
    let r = c.admin.put(&path, edit.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let audit = c
        .admin
        .json(&format!("/api/audit?entityType=item&entityId={id}"))
        .await;
    let entry = &audit["entries"][0];
    assert_eq!(entry["action"], "item.updated_by_admin");
    assert_eq!(entry["before"]["title"], "Apple pie (submitted)");
    assert_eq!(entry["after"]["title"], "Apple pie (admin)");

    // Published: nobody edits.
    c.manager.post(&format!("{path}/publish"), json!({})).await;
    for who in [&c.donor, &c.admin] {
        assert_error(who.put(&path, edit.clone()).await, 409, "item_published").await;
    }
    assert_error(
        c.manager.put(&path, edit.clone()).await,
        409,
        "item_published",
    )
    .await;
    assert_eq!(c.guest.json(&path).await["title"], "Apple pie (admin)");
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn managers_feature_items_any_time(db: PgPool) {
    let c = cast(db).await;
    let item = c.donor.create_item(item_body("Cabin weekend")).await;
    let id = item["id"].as_str().unwrap();
    publish_item(&c.donor, &c.manager, id).await;
    let url = format!("/api/items/{id}/featured");
    assert_error(
        c.donor.post(&url, json!({ "featured": true })).await,
        403,
        "forbidden",
    )
    .await;
    assert_error(
        c.guest.post(&url, json!({ "featured": true })).await,
        401,
        "unauthenticated",
    )
    .await;
    let v: Value = c
        .manager
        .post(&url, json!({ "featured": true }))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["featured"], true);
    let home = c.guest.json("/api/items?featured=true").await;
    assert_eq!(home["total"], 1);
    assert_eq!(home["items"][0]["id"], id);
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn live_fields_come_from_the_items_table(db: PgPool) {
    let c = cast(db).await;
    let item = c.donor.create_item(item_body("Bike")).await;
    let id = item["id"].as_str().unwrap();
    publish_item(&c.donor, &c.manager, id).await;
    let n = TestApp::num(&item["id"]);
    let bidder_id = TestApp::num(&c.bidder.json("/api/users/me").await["id"]);
    sqlx::query(
        "INSERT INTO item_bidding (item_id, current_price, bid_count, leader_id, closes_at)
         VALUES ($1, 7500, 3, $2, now() + interval '5 minutes')",
    )
    .bind(n)
    .bind(bidder_id)
    .execute(&c.app.db)
    .await
    .unwrap();
    let text = c
        .guest
        .get(&format!("/api/items/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(text.contains("\"currentBid\":75.00"), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["bidCount"], 3);
    assert!(!text.contains(&format!("u_{bidder_id}")), "{text}");
    assert!(!text.contains("leader"), "{text}");
}
