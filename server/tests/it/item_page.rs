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
