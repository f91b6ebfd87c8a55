//! Donor pages (my items, submit an item or event, edit, photos, submit for review, reoffer
//! settings) and the managers' review queue, each with the roles that may and may not.

use crate::helpers::{item_body, png_bytes, Browser, TestApp};
use auuction::domain::Role;
use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;

async fn item_id(app: &TestApp, title: &str) -> i64 {
    sqlx::query_scalar("SELECT id FROM items WHERE title = $1")
        .bind(title)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

/// The photo form's fields: the file and its alt text.
fn photo_form(bytes: Vec<u8>, alt: &str) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name("photo.png"),
        )
        .text("alt", alt.to_string())
}

/// Posts the photo form as a browser does: multipart, the token in the action's query.
async fn upload_page(b: &Browser, item: i64, bytes: Vec<u8>, alt: &str) -> (StatusCode, String) {
    let csrf = b.csrf.clone().unwrap_or_default();
    let r = b
        .client
        .post(b.url(&format!("/donor/items/it_{item}/images?csrf_token={csrf}")))
        .multipart(photo_form(bytes, alt))
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn a_donor_submits_an_item_with_a_photo_and_a_manager_publishes_it(db: PgPool) {
    let app = TestApp::spawn(db).await;
    app.create_auction().await;
    let donor = app.login_as("d@example.org", &[Role::Donor]).await;
    let manager = app.login_as("m@example.org", &[Role::Manager]).await;

    let (status, page) = donor.html("/donor/items/new").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("<label for=\"title\">Title</label>"));
    let (status, location, _) = donor
        .submit_form(
            "/donor/items/new",
            &[
                ("type", "competitive"),
                ("title", "Handmade Quilt"),
                ("description", "Blue and green."),
                ("categoryId", "cat_3"),
                ("tags", "Quilt, handmade"),
                ("openingBid", "$1,200"),
                ("fairMarketValue", "900.50"),
                ("quantityTotal", "1"),
                ("restrictions", "Pick up by June 1."),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let id = item_id(&app, "Handmade Quilt").await;
    assert_eq!(location, format!("/donor/items/it_{id}/edit"));
    let row: (i64, Option<i64>, Vec<String>) =
        sqlx::query_as("SELECT opening_min_bid, fair_market_value, tags FROM items WHERE id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(
        row,
        (
            120_000,
            Some(90_050),
            vec!["quilt".into(), "handmade".into()]
        )
    );

    let (status, _) = upload_page(&donor, id, png_bytes(120, 90), "A blue and green quilt").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, page) = donor.html(&format!("/donor/items/it_{id}/edit")).await;
    assert!(page.contains("Photo added.") && page.contains("alt=\"A blue and green quilt\""));
    assert!(
        page.contains("value=\"1200.00\""),
        "money shown back as typed text"
    );

    let (status, location, _) = donor
        .submit_form(&format!("/donor/items/it_{id}/submit"), &[])
        .await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/donor/items")
    );
    let (_, page) = donor.html("/donor/items").await;
    assert!(page.contains("Handmade Quilt") && page.contains("Waiting for review"));

    // The manager's queue: approve, then publish, then feature.
    let (status, page) = manager.html("/manage/review").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Waiting for review (1)") && page.contains("Handmade Quilt"));
    for action in ["approve", "publish", "feature"] {
        let (status, location, _) = manager
            .submit_form(
                &format!("/manage/review/it_{id}"),
                &[("action", action), ("note", "")],
            )
            .await;
        assert_eq!(
            (status, location.as_str()),
            (StatusCode::SEE_OTHER, "/manage/review"),
            "{action}"
        );
    }
    let (status, featured): (String, bool) =
        sqlx::query_as("SELECT status, featured FROM items WHERE id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!((status.as_str(), featured), ("published", true));
    let (_, page) = app.anonymous().html("/catalog?q=quilt").await;
    assert!(page.contains("Handmade Quilt"));

    // Published: editing and new photos are refused, and say why.
    let (status, page) = donor.html(&format!("/donor/items/it_{id}/edit")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(page.contains("can no longer be changed"));
    let (status, _, _) = donor
        .submit_form(
            &format!("/donor/items/it_{id}/edit"),
            &[
                ("type", "competitive"),
                ("title", "Changed"),
                ("categoryId", "cat_3"),
                ("openingBid", "1"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = upload_page(&donor, id, png_bytes(10, 10), "late").await;
    assert_eq!(status, StatusCode::CONFLICT);
    let title: String = sqlx::query_scalar("SELECT title FROM items WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(title, "Handmade Quilt");
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn bad_input_is_explained_beside_its_field(db: PgPool) {
    let app = TestApp::spawn(db).await;
    app.create_auction().await;
    let donor = app.login_as("d@example.org", &[Role::Donor]).await;
    let (status, _, page) = donor
        .submit_form(
            "/donor/items/new",
            &[
                ("type", "competitive"),
                ("title", ""),
                ("categoryId", "cat_3"),
                ("openingBid", "12.345"),
                ("fairMarketValue", "-5"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("class=\"error-summary\"") && page.contains("href=\"#openingBid\""));
    assert!(page.contains("href=\"#fairMarketValue\""));
    assert!(page.contains("aria-invalid=\"true\""));
    // The domain rule (title required) once the typing is right; the form keeps what was typed.
    let (status, _, page) = donor
        .submit_form(
            "/donor/items/new",
            &[
                ("type", "fixed_price_item"),
                ("title", " "),
                ("categoryId", "cat_3"),
                ("openingBid", "10"),
                ("description", "Kept text"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("Please give the item a title.") && page.contains("Kept text"));
    // An inactive category is the API's refusal, shown on the form.
    sqlx::query("UPDATE categories SET active = false WHERE id = 2")
        .execute(&app.db)
        .await
        .unwrap();
    let (status, _, page) = donor
        .submit_form(
            "/donor/items/new",
            &[
                ("type", "service"),
                ("title", "Lessons"),
                ("categoryId", "cat_2"),
                ("openingBid", "10"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("no longer in use"));
    // A bid increment on a fixed-price item.
    let (status, _, page) = donor
        .submit_form(
            "/donor/items/new",
            &[
                ("type", "service"),
                ("title", "Lessons"),
                ("categoryId", "cat_4"),
                ("openingBid", "10"),
                ("bidIncrement", "5"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("Only competitive items take bids"));
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM items")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(count, 0, "nothing half-made");

    // A non-image through the photo form: refused with the API's status, explained.
    let draft = donor.create_item(item_body("Pie")).await;
    let id = TestApp::num(&draft["id"]);
    let (status, page) = upload_page(&donor, id, b"hello, I am text".to_vec(), "text").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(page.contains("Only JPEG, PNG and WebP images are accepted."));
    assert!(page.contains("The photo was not added"));
    // Missing alt text.
    let (status, page) = upload_page(&donor, id, png_bytes(10, 10), " ").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("alt text"));
    // Without the CSRF token in the action, the upload is refused.
    let r = donor
        .client
        .post(donor.url(&format!("/donor/items/it_{id}/images")))
        .multipart(photo_form(png_bytes(10, 10), "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let images: i64 = sqlx::query_scalar("SELECT count(*) FROM item_images")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(images, 0);
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn a_hosted_event_needs_its_details_and_keeps_them(db: PgPool) {
    let app = TestApp::spawn(db).await;
    app.create_auction().await;
    let donor = app.login_as("h@example.org", &[Role::Donor]).await;
    let base = [
        ("type", "fixed_price_event"),
        ("title", "Garden Supper"),
        ("categoryId", "cat_1"),
        ("openingBid", "60"),
        ("quantityTotal", "8"),
    ];
    let mut bad = base.to_vec();
    bad.extend([
        ("datetimeStart", "2026-06-12T18:00"),
        ("datetimeEnd", "2026-06-12T17:00"),
        ("capacity", "8"),
    ]);
    let (status, _, page) = donor.submit_form("/donor/items/new", &bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("The event must end after it starts."));
    let mut good = base.to_vec();
    good.extend([
        ("datetimeStart", "2026-06-12T18:00"),
        ("datetimeEnd", "2026-06-12T21:00"),
        ("capacity", "8"),
        ("addressLine1", "12 Elm Street"),
        ("city", "Knoxville"),
        ("addressPrivacy", "hide_all"),
        ("hostNotes", "Door code 4321"),
    ]);
    let (status, _, _) = donor.submit_form("/donor/items/new", &good).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let id = item_id(&app, "Garden Supper").await;
    let (_, page) = donor.html(&format!("/donor/items/it_{id}/edit")).await;
    assert!(page.contains("value=\"2026-06-12T18:00\"") && page.contains("12 Elm Street"));
    assert!(page.contains("value=\"hide_all\" checked"));
    // Editing moves the event, through the same write as the API.
    let mut moved = good.clone();
    moved.retain(|(k, _)| *k != "capacity");
    moved.push(("capacity", "10"));
    let (status, _, _) = donor
        .submit_form(&format!("/donor/items/it_{id}/edit"), &moved)
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let capacity: i32 = sqlx::query_scalar("SELECT capacity FROM events WHERE item_id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(capacity, 10);
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn each_role_reaches_only_its_pages(db: PgPool) {
    let app = TestApp::spawn(db).await;
    app.create_auction().await;
    let owner = app.login_as("d@example.org", &[Role::Donor]).await;
    let other = app.login_as("o@example.org", &[Role::Donor]).await;
    let bidder = app.login_as("b@example.org", &[Role::Bidder]).await;
    let manager = app.login_as("m@example.org", &[Role::Manager]).await;
    let admin = app.login_as("a@example.org", &[Role::Admin]).await;
    let draft = owner.create_item(item_body("Owner's Pie")).await;
    let id = TestApp::num(&draft["id"]);

    // Guests are sent to log in; bidders are refused.
    for path in ["/donor/items", "/donor/items/new", "/manage/review"] {
        let r = app.browser().get(path).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
        assert!(r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/login?next="));
        let (status, _) = bidder.html(path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
    let (status, _) = owner.html("/manage/review").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "donors do not review");
    // Another donor cannot see, edit or submit the draft: it does not exist for them.
    let (status, _) = other.html(&format!("/donor/items/it_{id}/edit")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = other
        .submit_form(&format!("/donor/items/it_{id}/submit"), &[])
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, page) = other.html("/donor/items").await;
    assert!(!page.contains("Owner's Pie"));
    // An admin may edit before publication (audited by the API's function).
    let (status, _) = admin.html(&format!("/donor/items/it_{id}/edit")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = admin
        .submit_form(
            &format!("/donor/items/it_{id}/edit"),
            &[
                ("type", "competitive"),
                ("title", "Owner's Pie (fixed)"),
                ("categoryId", "cat_3"),
                ("openingBid", "50"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let audits: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'item.updated_by_admin'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(audits, 1);

    // Review: returning needs a note; a draft cannot be approved.
    let (status, _, page) = manager
        .submit_form(&format!("/manage/review/it_{id}"), &[("action", "approve")])
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(page.contains("That cannot be done to an item that is draft."));
    owner
        .submit_form(&format!("/donor/items/it_{id}/submit"), &[])
        .await;
    let (status, _, page) = manager
        .submit_form(
            &format!("/manage/review/it_{id}"),
            &[("action", "return"), ("note", " ")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("Please tell the donor what to change."));
    let (status, _, _) = manager
        .submit_form(
            &format!("/manage/review/it_{id}"),
            &[("action", "return"), ("note", "Please add a photo.")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, page) = owner.html("/donor/items").await;
    assert!(page.contains("Please add a photo.") && page.contains("Draft"));
    // A bidder posting to the review action is refused.
    let (status, _, _) = bidder
        .submit_form(&format!("/manage/review/it_{id}"), &[("action", "approve")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn reoffer_settings_through_the_page(db: PgPool) {
    let app = TestApp::spawn(db).await;
    app.create_auction().await;
    let owner = app.login_as("d@example.org", &[Role::Donor]).await;
    let other = app.login_as("o@example.org", &[Role::Donor]).await;
    let mut body = item_body("Pies");
    body["quantityTotal"] = json!(3);
    let draft = owner.create_item(body).await;
    let id = TestApp::num(&draft["id"]);
    let path = format!("/donor/items/it_{id}/reoffer");
    let (status, page) = owner.html(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("3 left would be offered at <strong>$50.00</strong>"),
        "defaults"
    );
    let (status, _, page) = owner
        .submit_form(
            &path,
            &[
                ("participate", "on"),
                ("price", "40"),
                ("quantity_override", "5"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "more than remain");
    assert!(page.contains("error-summary"));
    let (status, _, _) = owner
        .submit_form(
            &path,
            &[
                ("participate", "on"),
                ("price", "$40"),
                ("quantity_override", "2"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, page) = owner.html(&path).await;
    assert!(page.contains("2 left would be offered at <strong>$40.00</strong>"));
    let (status, _) = other.html(&path).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another donor cannot see a draft's settings"
    );
}

/// A donor removes a wrong photo from the edit page (the Remove button under each photo):
/// its row and files go; a second click, another donor, a missing token and an item that can
/// no longer change are each answered plainly, and remove nothing.
#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn a_donor_removes_a_photo_from_the_edit_page(db: PgPool) {
    let app = TestApp::spawn(db).await;
    app.create_auction().await;
    let donor = app.login_as("d@example.org", &[Role::Donor]).await;
    let other = app.login_as("o@example.org", &[Role::Donor]).await;
    let draft = donor.create_item(item_body("Birdhouse")).await;
    let id = TestApp::num(&draft["id"]);
    for alt in ["The wrong birdhouse", "A red birdhouse"] {
        let (status, _) = upload_page(&donor, id, png_bytes(40, 30), alt).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
    }
    let rows: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT id, file_name, alt_text FROM item_images WHERE item_id = $1 ORDER BY position",
    )
    .bind(id)
    .fetch_all(&app.db)
    .await
    .unwrap();
    let (wrong, wrong_file, _) = rows[0].clone();
    let file = app.dir.join("media").join(&wrong_file);
    assert!(file.exists(), "{file:?}");
    let remove = format!("/donor/items/it_{id}/images/img_{wrong}/remove");

    // The edit page offers the button, named for screen readers.
    let (_, page) = donor.html(&format!("/donor/items/it_{id}/edit")).await;
    assert!(page.contains(&format!("action=\"{remove}\"")), "{page}");
    assert!(page.contains("Remove<span class=\"visually-hidden\"> the photo “The wrong birdhouse”"));

    // Without the token: refused, nothing removed.
    let r = donor.form(&remove, &[]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Another donor: the item is not theirs to see.
    let (status, _, _) = other.submit_form(&remove, &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let count = |app: &TestApp| {
        let db = app.db.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM item_images WHERE item_id = $1")
                .bind(id)
                .fetch_one(&db)
                .await
                .unwrap()
        }
    };
    assert_eq!(count(&app).await, 2);

    let (status, location, _) = donor.submit_form(&remove, &[]).await;
    assert_eq!(
        (status, location.as_str()),
        (
            StatusCode::SEE_OTHER,
            format!("/donor/items/it_{id}/edit").as_str()
        )
    );
    let (_, page) = donor.html(&format!("/donor/items/it_{id}/edit")).await;
    assert!(page.contains("Photo removed."));
    assert!(!page.contains("The wrong birdhouse") && page.contains("A red birdhouse"));
    assert_eq!(count(&app).await, 1);
    assert!(!file.exists(), "the file went with the row");
    // A second click on the same button.
    let (status, _, _) = donor.submit_form(&remove, &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, page) = donor.html(&format!("/donor/items/it_{id}/edit")).await;
    assert!(page.contains("That photo was already removed."));

    // Once published, photos are no longer the donor's to change.
    let (kept, _, _) = rows[1].clone();
    sqlx::query("UPDATE items SET status = 'published' WHERE id = $1")
        .bind(id)
        .execute(&app.db)
        .await
        .unwrap();
    let (status, _, page) = donor
        .submit_form(
            &format!("/donor/items/it_{id}/images/img_{kept}/remove"),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(page.contains("This item can no longer be changed"));
    assert_eq!(count(&app).await, 1);
}
