//! The item page's bid panel, and bidding with a plain form post (no JavaScript).
// Money literals are written dollars_cents (`125_00` is $125.00), like prices.
#![allow(clippy::inconsistent_digit_grouping)]

use crate::helpers::{stored_bids, TestApp, PASSWORD};
use auuction::domain::Role;
use reqwest::StatusCode;
use sqlx::PgPool;

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn a_bidder_bids_with_the_plain_form_and_a_double_submit_is_one_bid(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let (_, item) = app
        .item_up_for_bids(40_00, chrono::Duration::hours(1))
        .await;

    // Guests see the panel and are asked to log in.
    let html = app
        .browser()
        .get(&format!("/items/it_{item}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("data-bid-panel") && html.contains("No bids yet") && html.contains("$40.00")
    );
    assert!(html.contains("Log in to bid"));

    app.create_user("ann@example.org", &[Role::Bidder]).await;
    let b = app.browser();
    let csrf = b.page_csrf("/login").await;
    b.form(
        "/login",
        &[
            ("csrf_token", &csrf),
            ("email", "ann@example.org"),
            ("password", PASSWORD),
            ("next", "/"),
        ],
    )
    .await;
    let page = b
        .get(&format!("/items/it_{item}"))
        .await
        .text()
        .await
        .unwrap();
    let marker = "name=\"idempotency_key\" value=\"";
    let start = page.find(marker).expect("form has a key") + marker.len();
    let key: String = page[start..].chars().take_while(|c| *c != '"').collect();
    let csrf = b.page_csrf(&format!("/items/it_{item}")).await;

    for _ in 0..2 {
        let r = b
            .form(
                &format!("/items/it_{item}/bid"),
                &[
                    ("csrf_token", &csrf),
                    ("amount", "$45.50"),
                    ("max_proxy_amount", ""),
                    ("idempotency_key", &key),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(r.headers()["location"], format!("/items/it_{item}"));
    }
    let html = b
        .get(&format!("/items/it_{item}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Your bid is in. You are the highest bidder at $45.50."),
        "flash shown"
    );
    assert!(html.contains("You are the highest bidder."), "status line");
    assert!(html.contains("$45.50"));
    assert_eq!(
        stored_bids(&app.db, item).await.len(),
        1,
        "the double submit made one bid"
    );

    // A bad amount is explained, nothing is placed.
    let r = b
        .form(
            &format!("/items/it_{item}/bid"),
            &[("csrf_token", &csrf), ("amount", "45.555")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let html = b
        .get(&format!("/items/it_{item}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("at most 2 decimals"), "explains the refusal");
    let r = b
        .form(
            &format!("/items/it_{item}/bid"),
            &[("csrf_token", &csrf), ("amount", "46")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let html = b
        .get(&format!("/items/it_{item}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("least you can bid"),
        "too low: says the minimum"
    );
    assert_eq!(stored_bids(&app.db, item).await.len(), 1);

    // Without the CSRF token the form is refused.
    let r = b
        .form(&format!("/items/it_{item}/bid"), &[("amount", "100")])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Drafts do not exist for the public.
    sqlx::query("UPDATE items SET status = 'draft' WHERE id = $1")
        .bind(item)
        .execute(&app.db)
        .await
        .unwrap();
    assert_eq!(
        app.browser()
            .get(&format!("/items/it_{item}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

/// The phone's one-tap "Bid $next-minimum" without JavaScript: a GET form to a page that
/// says the amount and asks; its Yes button is the plain bid form, which places the bid.
#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn one_tap_bid_asks_with_the_amount_then_places_it(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let (_, item) = app
        .item_up_for_bids(40_00, chrono::Duration::hours(1))
        .await;
    let confirm_path = format!("/items/it_{item}/bid?amount=40.00");

    // A guest is sent to log in first, and comes back here.
    let r = app.browser().get(&confirm_path).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/login?next="));

    let ann = app.login_as("ann@example.org", &[Role::Bidder]).await;
    let (status, page) = ann.html(&format!("/items/it_{item}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("data-quick-bid")
            && page.contains(&format!("action=\"/items/it_{item}/bid\" data-quick-bid"))
            && page.contains("Bid <span data-quick-label>$40.00</span>"),
        "the panel offers a one-tap bid at the next minimum"
    );
    assert!(
        page.contains("inputmode=\"decimal\""),
        "the amount field opens the number keypad"
    );

    let (status, html) = ann.html(&confirm_path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Confirm your bid"));
    assert!(
        html.contains("Bid <strong>$40.00</strong> on"),
        "the question says the amount"
    );
    assert!(html.contains("Yes, bid $40.00"));
    assert_eq!(
        stored_bids(&app.db, item).await.len(),
        0,
        "asking places nothing"
    );
    let marker = "name=\"idempotency_key\" value=\"";
    let start = html.find(marker).expect("the form has a key") + marker.len();
    let key: String = html[start..].chars().take_while(|c| *c != '"').collect();
    let (status, location, _) = ann
        .submit_form(
            &format!("/items/it_{item}/bid"),
            &[("amount", "40.00"), ("idempotency_key", &key)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location, format!("/items/it_{item}"));
    let (_, html) = ann.html(&format!("/items/it_{item}")).await;
    assert!(html.contains("Your bid is in. You are the highest bidder at $40.00."));
    assert_eq!(stored_bids(&app.db, item).await.len(), 1);

    // An amount that is not money goes back to the item with the reason.
    let r = ann.get(&format!("/items/it_{item}/bid?amount=forty")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], format!("/items/it_{item}"));
    let (_, html) = ann.html(&format!("/items/it_{item}")).await;
    assert!(html.contains("Your bid was not placed"));
}
