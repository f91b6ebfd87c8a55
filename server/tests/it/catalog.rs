//! The catalog: categories, listing with filters, full-text search, sorting, paging and
//! who sees what.

use crate::helpers::{
    assert_error, event_body, item_body, publish_item, publish_new_item, Browser, TestApp,
};
use auuction::domain::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap().to_string())
        .collect()
}

// ---- categories -------------------------------------------------------------------------

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn everyone_lists_active_categories_admins_manage_them(db: PgPool) {
    let app = TestApp::spawn(db).await;
    app.create_auction().await;
    let guest = app.anonymous();
    let admin = app.login_as("admin@example.org", &[Role::Admin]).await;
    let manager = app.login_as("m@example.org", &[Role::Manager]).await;
    let donor = app.login_as("d@example.org", &[Role::Donor]).await;

    let list = guest.json("/api/categories").await;
    let slugs: Vec<&str> = list["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["hosted-events", "experiences", "goods", "services"]);
    assert_eq!(
        list["categories"][0],
        json!({ "id": "cat_1", "name": "Hosted Events", "slug": "hosted-events", "active": true, "sortOrder": 1 })
    );

    // Only admins write.
    let new = json!({ "name": "Kids & Family", "sortOrder": 5 });
    assert_error(
        guest.post("/api/categories", new.clone()).await,
        401,
        "unauthenticated",
    )
    .await;
    assert_error(
        manager.post("/api/categories", new.clone()).await,
        403,
        "forbidden",
    )
    .await;
    assert_error(
        donor.post("/api/categories", new.clone()).await,
        403,
        "forbidden",
    )
    .await;
    let r = admin.post("/api/categories", new.clone()).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let kids: Value = r.json().await.unwrap();
    assert_eq!(kids["slug"], "kids-family");
    assert_eq!(kids["active"], true);
    let kid_id = kids["id"].as_str().unwrap();
    assert_error(
        admin.post("/api/categories", new).await,
        409,
        "category_exists",
    )
    .await;
    assert_error(
        admin
            .post(
                "/api/categories",
                json!({ "name": "X", "slug": "Bad Slug" }),
            )
            .await,
        422,
        "validation_failed",
    )
    .await;
    assert_error(
        admin.post("/api/categories", json!({ "name": " " })).await,
        422,
        "validation_failed",
    )
    .await;

    let r = admin
        .put(
            &format!("/api/categories/{kid_id}"),
            json!({ "name": "Children", "slug": "children" }),
        )
        .await;
    let renamed: Value = r.json().await.unwrap();
    assert_eq!(renamed["name"], "Children");
    assert_eq!(renamed["sortOrder"], 5);
    assert_error(
        manager
            .put(&format!("/api/categories/{kid_id}"), json!({ "name": "Y" }))
            .await,
        403,
        "forbidden",
    )
    .await;
    assert_error(
        admin
            .put("/api/categories/cat_999", json!({ "name": "Y" }))
            .await,
        404,
        "not_found",
    )
    .await;

    // Unused: deleted (204). Used: deactivated (200, active false), and then hidden from
    // everyone's list and refused for new items.
    assert_error(
        manager.delete(&format!("/api/categories/{kid_id}")).await,
        403,
        "forbidden",
    )
    .await;
    let r = admin.delete(&format!("/api/categories/{kid_id}")).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_error(
        admin.delete(&format!("/api/categories/{kid_id}")).await,
        404,
        "not_found",
    )
    .await;

    donor.create_item(item_body("A service")).await; // in Goods (cat_3)
    let r = admin.delete("/api/categories/cat_3").await;
    assert_eq!(r.status(), StatusCode::OK);
    let goods: Value = r.json().await.unwrap();
    assert_eq!(goods["active"], false);
    assert_eq!(
        guest.json("/api/categories").await["categories"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_error(
        guest.get("/api/categories?all=true").await,
        401,
        "unauthenticated",
    )
    .await;
    assert_error(
        manager.get("/api/categories?all=true").await,
        403,
        "forbidden",
    )
    .await;
    assert_eq!(
        admin.json("/api/categories?all=true").await["categories"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_error(
        donor.post("/api/items", item_body("More goods")).await,
        422,
        "inactive_category",
    )
    .await;

    let audit = admin.json("/api/audit?entityType=category").await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "category.deactivated",
            "category.deleted",
            "category.updated",
            "category.created"
        ]
    );
}

// ---- listing --------------------------------------------------------------------------

struct Catalog {
    app: TestApp,
    donor: Browser,
    manager: Browser,
    guest: Browser,
}

/// A fixed catalog: six published items, one draft, one waiting for review.
async fn catalog(db: PgPool) -> Catalog {
    let app = TestApp::spawn(db).await;
    app.create_auction().await;
    let c = Catalog {
        donor: app
            .login_as("donor@example.org", &[Role::Bidder, Role::Donor])
            .await,
        manager: app.login_as("manager@example.org", &[Role::Manager]).await,
        guest: app.anonymous(),
        app,
    };
    publish_new_item(
        &c.donor,
        &c.manager,
        json!({ "type": "competitive", "title": "Handmade Quilt", "categoryId": "cat_3",
                "openingBid": 100, "tags": ["bedding", "handmade"],
                "description": "Queen size quilt from the Tuesday group." }),
    )
    .await;
    publish_new_item(
        &c.donor,
        &c.manager,
        json!({ "type": "competitive", "title": "Weekend at the Lake Cabin", "categoryId": "cat_2",
                "openingBid": 300, "tags": ["travel"],
                "description": "Two nights. Bring a quilt, evenings are cold." }),
    )
    .await;
    publish_new_item(
        &c.donor,
        &c.manager,
        json!({ "type": "fixed_price_item", "title": "Sewing Kit", "categoryId": "cat_3",
                "openingBid": 25, "tags": ["quilting", "craft"],
                "description": "Needles, thread and scissors." }),
    )
    .await;
    publish_new_item(
        &c.donor,
        &c.manager,
        json!({ "type": "service", "title": "Piano Lessons", "categoryId": "cat_4",
                "openingBid": 60, "quantityTotal": 4, "tags": ["music"],
                "description": "Four lessons for beginners." }),
    )
    .await;
    let dinner = c
        .donor
        .create_item(
            json!({ "type": "fixed_price_event", "title": "Italian Dinner", "categoryId": "cat_1",
                "openingBid": 40, "quantityTotal": 8, "tags": ["food"],
                "donorNotes": "Homemade pasta and a quilt raffle." }),
        )
        .await;
    let dinner_id = dinner["id"].as_str().unwrap();
    let r = c
        .donor
        .post(
            &format!("/api/items/{dinner_id}/event"),
            event_body("show_city_only"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    publish_item(&c.donor, &c.manager, dinner_id).await;
    let full = c
        .donor
        .create_item(
            json!({ "type": "fixed_price_event", "title": "Sold Out Supper", "categoryId": "cat_1",
                "openingBid": 30, "quantityTotal": 2, "tags": ["food"] }),
        )
        .await;
    let full_id = full["id"].as_str().unwrap();
    let mut small = event_body("hide_all");
    small["capacity"] = json!(2);
    c.donor
        .post(&format!("/api/items/{full_id}/event"), small)
        .await;
    publish_item(&c.donor, &c.manager, full_id).await;
    sqlx::query("UPDATE items SET quantity_sold = 2 WHERE id = $1")
        .bind(TestApp::num(&full["id"]))
        .execute(&c.app.db)
        .await
        .unwrap();
    // Not public.
    c.donor.create_item(item_body("Draft Quilt Rack")).await;
    let queued = c.donor.create_item(item_body("Queued Quilt Frame")).await;
    c.donor
        .post(
            &format!("/api/items/{}/submit", queued["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    c
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn guests_see_published_items_only_drafts_their_donor_and_staff(db: PgPool) {
    let c = catalog(db).await;
    let page = c.guest.json("/api/items?sort=title").await;
    assert_eq!(page["total"], 6);
    assert_eq!(
        ids(&page),
        [
            "Handmade Quilt",
            "Italian Dinner",
            "Piano Lessons",
            "Sewing Kit",
            "Sold Out Supper",
            "Weekend at the Lake Cabin"
        ]
    );
    let bidder = c.app.login_as("b@example.org", &[Role::Bidder]).await;
    assert_eq!(bidder.json("/api/items").await["total"], 6);

    let mine = c.donor.json("/api/items?mine=true").await;
    assert_eq!(mine["total"], 8);
    let drafts = c.donor.json("/api/items?mine=true&status=draft").await;
    assert_eq!(ids(&drafts), ["Draft Quilt Rack"]);
    assert_eq!(bidder.json("/api/items?mine=true").await["total"], 0);
    assert_error(
        c.guest.get("/api/items?mine=true").await,
        401,
        "unauthenticated",
    )
    .await;

    let queue = c.manager.json("/api/items?status=submitted").await;
    assert_eq!(ids(&queue), ["Queued Quilt Frame"]);
    let admin = c.app.login_as("admin@example.org", &[Role::Admin]).await;
    assert_eq!(admin.json("/api/items?status=draft").await["total"], 1);
    assert_error(
        bidder.get("/api/items?status=approved").await,
        403,
        "forbidden",
    )
    .await;
    // Search never reveals drafts either.
    assert_eq!(c.guest.json("/api/items?q=rack").await["total"], 0);
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn search_ranks_title_over_tags_over_description_and_matches_prefixes(db: PgPool) {
    let c = catalog(db).await;
    // "quilt": in the title (A) of one, the tags (B, "quilting") of another, the
    // description (C) of a third and the donor notes (C) of a fourth.
    let page = c.guest.json("/api/items?q=quilt").await;
    let found = ids(&page);
    assert_eq!(page["total"], 4, "{found:?}");
    assert_eq!(found[0], "Handmade Quilt");
    assert_eq!(found[1], "Sewing Kit");
    let mut rest = found[2..].to_vec();
    rest.sort();
    assert_eq!(rest, ["Italian Dinner", "Weekend at the Lake Cabin"]);

    // Prefixes while typing, several words all required, stemming, case.
    assert_eq!(ids(&c.guest.json("/api/items?q=quil").await).len(), 4);
    assert_eq!(
        ids(&c.guest.json("/api/items?q=pian").await),
        ["Piano Lessons"]
    );
    assert_eq!(
        ids(&c.guest.json("/api/items?q=LAKE%20cab").await),
        ["Weekend at the Lake Cabin"]
    );
    assert_eq!(ids(&c.guest.json("/api/items?q=quilts").await).len(), 4);
    assert_eq!(c.guest.json("/api/items?q=quilt%20piano").await["total"], 0);
    // Operators are just noise, never an error.
    assert_eq!(
        ids(&c.guest.json("/api/items?q=pian%27%7C!%26").await),
        ["Piano Lessons"]
    );
    assert_eq!(c.guest.json("/api/items?q=%21%21").await["total"], 6);
    assert_error(
        c.guest
            .get(&format!("/api/items?q={}", "a".repeat(201)))
            .await,
        400,
        "invalid_query",
    )
    .await;
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn filters_and_sorting(db: PgPool) {
    let c = catalog(db).await;
    let guest = &c.guest;
    async fn get(b: &Browser, q: &str) -> Value {
        b.json(&format!("/api/items?{q}")).await
    }
    assert_eq!(
        ids(&get(guest, "category=goods&sort=title").await),
        ["Handmade Quilt", "Sewing Kit"]
    );
    assert_eq!(ids(&get(guest, "category=cat_4").await), ["Piano Lessons"]);
    assert_eq!(ids(&get(guest, "type=service").await), ["Piano Lessons"]);
    assert_eq!(
        ids(&get(guest, "tag=travel").await),
        ["Weekend at the Lake Cabin"]
    );
    assert_eq!(
        ids(&get(guest, "tag=Food&sort=title").await),
        ["Italian Dinner", "Sold Out Supper"]
    );
    assert_eq!(
        ids(&get(guest, "minPrice=30&maxPrice=100&sort=price_asc").await),
        [
            "Sold Out Supper",
            "Italian Dinner",
            "Piano Lessons",
            "Handmade Quilt"
        ]
    );
    // The current bid counts, not the opening bid, once there is one.
    sqlx::query("INSERT INTO item_bidding (item_id, current_price, bid_count) SELECT id, 50000, 1 FROM items WHERE title = 'Handmade Quilt'")
        .execute(&c.app.db)
        .await
        .unwrap();
    assert_eq!(ids(&get(guest, "minPrice=400").await), ["Handmade Quilt"]);
    assert_eq!(
        ids(&get(guest, "sort=price_desc&perPage=2").await),
        ["Handmade Quilt", "Weekend at the Lake Cabin"]
    );
    // Seats left: the dinner has 8 seats and 8 units; the supper is sold out.
    assert_eq!(ids(&get(guest, "seatsLeft=true").await), ["Italian Dinner"]);
    // Closing soon: one item closes in 10 minutes; the rest at the auction's close (2h).
    sqlx::query(
        "INSERT INTO item_bidding (item_id, closes_at) SELECT id, now() + interval '10 minutes' FROM items WHERE title = 'Sewing Kit'",
    )
    .execute(&c.app.db)
    .await
    .unwrap();
    assert_eq!(ids(&get(guest, "closingSoon=30").await), ["Sewing Kit"]);
    assert_eq!(get(guest, "closingSoon=180").await["total"], 6);
    assert_eq!(
        ids(&get(guest, "sort=closing&perPage=1").await),
        ["Sewing Kit"]
    );
    let newest = ids(&get(guest, "sort=newest&perPage=1").await);
    assert_eq!(newest, ["Sold Out Supper"]);
    assert_eq!(get(guest, "featured=true").await["total"], 0);

    for bad in [
        "minPrice=-1",
        "maxPrice=1.005",
        "type=raffle",
        "sort=random",
        "category=nope",
        "closingSoon=0",
        "status=lost",
        "seatsLeft=maybe",
        "perPage=101",
        "page=0",
        "offset=-1",
        "page=1&limit=5",
        "colour=red",
    ] {
        assert_error(
            c.guest.get(&format!("/api/items?{bad}")).await,
            400,
            "invalid_query",
        )
        .await;
    }
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn paging_by_page_or_by_offset(db: PgPool) {
    let c = catalog(db).await;
    let p1 = c.guest.json("/api/items?sort=title&page=1&perPage=4").await;
    let p2 = c.guest.json("/api/items?sort=title&page=2&perPage=4").await;
    assert_eq!(p1["total"], 6);
    assert_eq!(p1["items"].as_array().unwrap().len(), 4);
    assert_eq!(ids(&p2), ["Sold Out Supper", "Weekend at the Lake Cabin"]);
    assert_eq!(
        (
            p2["page"].as_i64(),
            p2["perPage"].as_i64(),
            p2["offset"].as_i64()
        ),
        (Some(2), Some(4), Some(4))
    );
    let by_offset = c.guest.json("/api/items?sort=title&limit=4&offset=4").await;
    assert_eq!(ids(&by_offset), ids(&p2));
    let past = c.guest.json("/api/items?page=9&perPage=4").await;
    assert_eq!(past["total"], 6);
    assert_eq!(past["items"], json!([]));
}
