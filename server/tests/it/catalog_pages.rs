//! The catalog pages: browse, search and filter at /catalog, the item page's details
//! (photos, restrictions, fair market value, the event as its privacy allows), featured
//! items on the home page, and the wishlist shell.

use crate::helpers::{
    event_body, item_body, png_bytes, publish_item, publish_new_item, Browser, TestApp,
};
use auuction::domain::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

/// A published item: the standard body with `extra` fields merged in; returns its id.
async fn published(donor: &Browser, manager: &Browser, title: &str, extra: Value) -> String {
    let mut body = item_body(title);
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    publish_new_item(donor, manager, body).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn guests_browse_search_and_filter_the_catalog_without_javascript(db: PgPool) {
    let app = TestApp::spawn(db).await;
    app.create_auction().await;
    let donor = app.login_as("d@example.org", &[Role::Donor]).await;
    let manager = app.login_as("m@example.org", &[Role::Manager]).await;
    let mut body = item_body("Handmade Quilt");
    body["openingBid"] = json!(150);
    let quilt = donor.create_item(body).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = donor
        .upload_image(
            &quilt,
            png_bytes(64, 48),
            "q.png",
            Some("A blue quilt on a bed"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    publish_item(&donor, &manager, &quilt).await;
    published(
        &donor,
        &manager,
        "Piano Lessons",
        json!({ "type": "service", "categoryId": "cat_4", "openingBid": 200 }),
    )
    .await;
    let draft = donor.create_item(item_body("Secret Draft Quilt")).await;
    let guest = app.anonymous();

    let (status, page) = guest.html("/catalog").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Handmade Quilt") && page.contains("Piano Lessons"));
    assert!(page.contains("2 items"));
    assert!(
        page.contains("alt=\"A blue quilt on a bed\""),
        "thumbnail with alt text"
    );
    assert!(
        page.contains("Opening bid:</span> $150.00"),
        "price as text, two decimals"
    );
    assert!(
        page.contains("<label for=\"q\">Search</label>"),
        "labelled search"
    );
    assert!(
        !page.contains("Secret Draft"),
        "drafts never listed to guests"
    );
    assert!(!page.contains(draft["id"].as_str().unwrap()));

    // Search by a word prefix, as typed.
    let (_, page) = guest
        .html("/catalog?q=quil&category=&type=&sort=relevance")
        .await;
    assert!(page.contains("Handmade Quilt") && !page.contains("Piano Lessons"));
    assert!(page.contains("1 item"));
    // Filters: category, type, price range (typed with a dollar sign).
    let (_, page) = guest.html("/catalog?category=services").await;
    assert!(page.contains("Piano Lessons") && !page.contains("Handmade Quilt"));
    let (_, page) = guest.html("/catalog?type=competitive").await;
    assert!(page.contains("Handmade Quilt") && !page.contains("Piano Lessons"));
    let (_, page) = guest.html("/catalog?min_price=%24175&max_price=250").await;
    assert!(page.contains("Piano Lessons") && !page.contains("Handmade Quilt"));
    let (_, page) = guest.html("/catalog?seats_left=on").await;
    assert!(page.contains("0 items"));
    let (_, page) = guest.html("/catalog?sort=price_desc").await;
    assert!(page.find("Piano Lessons").unwrap() < page.find("Handmade Quilt").unwrap());

    // Bad input is explained on the page, with the form kept.
    for bad in [
        "/catalog?min_price=lots",
        "/catalog?min_price=1.234",
        "/catalog?page=two",
        "/catalog?type=bicycle",
        "/catalog?sort=random",
        "/catalog?closing_soon=999999",
    ] {
        let (status, page) = guest.html(bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(
            page.contains("error-summary") && page.contains("role=\"alert\""),
            "{bad}"
        );
        assert!(page.contains("<form"), "{bad}: the form stays");
    }
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn the_catalog_pages_through_results_keeping_the_search(db: PgPool) {
    let app = TestApp::spawn(db).await;
    app.create_auction().await;
    let donor = app.login_as("d@example.org", &[Role::Donor]).await;
    let manager = app.login_as("m@example.org", &[Role::Manager]).await;
    for n in 0..26 {
        published(&donor, &manager, &format!("Pie number {n:02}"), json!({})).await;
    }
    let guest = app.anonymous();
    let (_, page) = guest.html("/catalog?q=pie&sort=title").await;
    assert!(page.contains("26 items, page 1 of 2"));
    assert!(
        page.contains("q=pie&amp;sort=title&amp;page=2\" rel=\"next\""),
        "the next page keeps the search"
    );
    assert!(page.contains("Pie number 00") && !page.contains("Pie number 25"));
    let (_, page) = guest.html("/catalog?q=pie&sort=title&page=2").await;
    assert!(page.contains("Pie number 25") && !page.contains("Pie number 00"));
    assert!(page.contains("rel=\"prev\""));
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn the_item_page_shows_photos_details_and_the_event_as_privacy_allows(db: PgPool) {
    let app = TestApp::spawn(db).await;
    app.create_auction().await;
    let donor = app.login_as("host@example.org", &[Role::Donor]).await;
    let manager = app.login_as("m@example.org", &[Role::Manager]).await;
    let item = donor
        .create_item(json!({
            "type": "fixed_price_event", "title": "Garden Supper", "description": "Dinner outside.",
            "categoryId": "cat_1", "openingBid": 60, "quantityTotal": 8, "fairMarketValue": 25,
            "restrictions": "Not on July 4th; parties of up to 4.", "donorNotes": "We grow the vegetables.",
            "tags": ["dinner", "garden"],
        }))
        .await;
    let id = item["id"].as_str().unwrap().to_string();
    let r = donor
        .post(
            &format!("/api/items/{id}/event"),
            event_body("show_full_to_attendees"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    for alt in ["The garden table", "Dessert"] {
        let r = donor
            .upload_image(&id, png_bytes(80, 60), "g.png", Some(alt))
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }

    // Before publishing: the donor and managers see it, guests get a 404.
    let (status, _) = app.anonymous().html(&format!("/items/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, page) = donor.html(&format!("/items/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("not published yet"));
    publish_item(&donor, &manager, &id).await;

    let (status, page) = app.anonymous().html(&format!("/items/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("alt=\"The garden table\"") && page.contains("alt=\"Dessert\""));
    assert!(
        page.contains("gallery-thumbs"),
        "a thumbnail strip for more than one photo"
    );
    assert!(page.contains("Dinner outside.") && page.contains("We grow the vegetables."));
    assert!(page.contains("Not on July 4th; parties of up to 4."));
    assert!(page.contains("Fair market value: <strong>$25.00</strong>"));
    assert!(page.contains("$60.00") && page.contains("per seat"));
    assert!(page.contains(">dinner<") && page.contains("Hosted Events"));
    assert!(page.contains("8 of 8 left"));
    assert!(page.contains("Three steps at the door") && page.contains("Adults only"));
    // Address privacy: a guest sees the city, never the street or the host's notes.
    assert!(page.contains("Knoxville"));
    assert!(!page.contains("12 Elm Street") && !page.contains("Apt 3"));
    assert!(!page.contains("Door code 4321"));
    assert!(page.contains("The full address is sent to confirmed guests."));
    // The host and managers see everything.
    for who in [&donor, &manager] {
        let (_, page) = who.html(&format!("/items/{id}")).await;
        assert!(page.contains("12 Elm Street") && page.contains("Door code 4321"));
    }
    // A signed-in bidder without a seat sees what a guest sees.
    let bidder = app.login_as("b@example.org", &[Role::Bidder]).await;
    let (_, page) = bidder.html(&format!("/items/{id}")).await;
    assert!(!page.contains("12 Elm Street") && !page.contains("Door code"));
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn hide_all_hides_even_the_city_on_the_item_page(db: PgPool) {
    let app = TestApp::spawn(db).await;
    app.create_auction().await;
    let donor = app.login_as("host@example.org", &[Role::Donor]).await;
    let manager = app.login_as("m@example.org", &[Role::Manager]).await;
    let item = donor
        .create_item(
            json!({ "type": "fixed_price_event", "title": "Secret Supper",
            "categoryId": "cat_1", "openingBid": 40, "quantityTotal": 4 }),
        )
        .await;
    let id = item["id"].as_str().unwrap().to_string();
    donor
        .post(&format!("/api/items/{id}/event"), event_body("hide_all"))
        .await;
    publish_item(&donor, &manager, &id).await;
    let (_, page) = app.anonymous().html(&format!("/items/{id}")).await;
    assert!(!page.contains("Knoxville") && !page.contains("Elm Street"));
    assert!(page.contains("keeps the location private"));
    // The catalog card shows seats, not places.
    let (_, page) = app.anonymous().html("/catalog?seats_left=on").await;
    assert!(page.contains("Secret Supper") && page.contains("4 seats left"));
    assert!(!page.contains("Knoxville"));
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn featured_items_appear_on_the_home_page(db: PgPool) {
    let app = TestApp::spawn(db).await;
    app.create_auction().await;
    let donor = app.login_as("d@example.org", &[Role::Donor]).await;
    let manager = app.login_as("m@example.org", &[Role::Manager]).await;
    let star = published(&donor, &manager, "Star Quilt", json!({})).await;
    published(&donor, &manager, "Plain Pie", json!({})).await;
    let (_, page) = app.anonymous().html("/").await;
    assert!(
        !page.contains("Featured items"),
        "no block without featured items"
    );
    let r = manager
        .post(
            &format!("/api/items/{star}/featured"),
            json!({ "featured": true }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let (_, page) = app.anonymous().html("/").await;
    assert!(page.contains("Featured items"));
    assert!(page.contains("Star Quilt") && !page.contains("Plain Pie"));
    assert!(page.contains("/js/wishlist.js"));
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn the_wishlist_page_explains_itself_without_javascript(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let (status, page) = app.anonymous().html("/wishlist").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("<h1>My saved list</h1>"));
    assert!(page.contains("needs JavaScript") && page.contains("data-wishlist-items"));
    assert!(page.contains("<script type=\"module\" src=\"/js/wishlist.js\">"));
    assert!(!page.contains("<script>"), "no inline scripts (CSP)");
    // The save buttons start hidden, so without scripts there is no dead button.
    app.create_auction().await;
    let donor = app.login_as("d@example.org", &[Role::Donor]).await;
    let manager = app.login_as("m@example.org", &[Role::Manager]).await;
    published(&donor, &manager, "Quilt", json!({})).await;
    let (_, page) = app.anonymous().html("/catalog").await;
    assert!(
        page.contains("data-wishlist-toggle") && page.contains("aria-pressed=\"false\" hidden")
    );
}
