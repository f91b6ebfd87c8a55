//! Pages: server-rendered, working without JavaScript; security headers; static files.

use crate::helpers::{calendar_json, TestApp, PASSWORD};
use auuction::domain::Role;
use reqwest::StatusCode;
use sqlx::PgPool;

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn the_home_page_shows_the_current_auction_and_counts_down_to_its_next_date(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let html = app.browser().get("/").await.text().await.unwrap();
    assert!(
        html.contains("No auction"),
        "friendly text when nothing is scheduled"
    );

    let admin = app.login_as("admin@example.org", &[Role::Admin]).await;
    admin.post("/api/auctions", calendar_json(2026, 2)).await;
    let r = app.browser().get("/").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let html = r.text().await.unwrap();
    assert!(html.contains("Auction 2026"));
    assert!(html.contains("Catalog preview"), "state label");
    assert!(html.contains("data-deadline="), "countdown element");
    assert!(html.contains("Bidding opens"));
    assert!(html.contains("href=\"#main\""), "skip link");
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn a_newcomer_registers_verifies_and_logs_in_without_javascript(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let b = app.browser();
    let csrf = b.page_csrf("/register").await;

    // A form post without the CSRF token is refused with a friendly page.
    let r = b
        .form(
            "/register",
            &[
                ("name", "Nina"),
                ("email", "nina@example.org"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));

    // Bad input re-renders the form with the field's error and keeps what was typed.
    let r = b
        .form(
            "/register",
            &[
                ("csrf_token", &csrf),
                ("name", "Nina"),
                ("email", "nina@example.org"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(html.contains("at least 10 characters"));
    assert!(html.contains("value=\"nina@example.org\""));

    let r = b
        .form(
            "/register",
            &[
                ("csrf_token", &csrf),
                ("name", "Nina"),
                ("email", "nina@example.org"),
                ("password", PASSWORD),
                ("pref_email", "on"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("nina@example.org"));

    let token = app.token_from_email("nina@example.org", "/verify");
    let html = b
        .get(&format!("/verify?token={token}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("confirmed"));

    let r = b
        .form(
            "/login",
            &[
                ("csrf_token", &csrf),
                ("email", "nina@example.org"),
                ("password", "wrong password"),
                ("next", "/account"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = b
        .form(
            "/login",
            &[
                ("csrf_token", &csrf),
                ("email", "nina@example.org"),
                ("password", PASSWORD),
                ("next", "//evil.example"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()["location"],
        "/account",
        "offsite next is ignored"
    );

    let html = b.get("/account").await.text().await.unwrap();
    assert!(html.contains("Nina"));
    assert!(html.contains("101"), "paddle number shown");

    // The session id changed at login, so the pre-login CSRF token is gone with it.
    let csrf = b.page_csrf("/account").await;
    let r = b
        .form(
            "/account",
            &[
                ("csrf_token", &csrf),
                ("name", "Nina N."),
                ("phone", "555 123 4567"),
                ("pref_email", "on"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Nina N."));
    let r = b
        .form(
            "/account",
            &[
                ("csrf_token", &csrf),
                ("name", ""),
                ("phone", "555 123 4567"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let r = b.form("/logout", &[("csrf_token", &csrf)]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = b.get("/account").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/login?next=%2Faccount");
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn password_reset_pages_work_end_to_end(db: PgPool) {
    let app = TestApp::spawn(db).await;
    app.create_user("pat@example.org", &[Role::Bidder]).await;
    let b = app.browser();
    let csrf = b.page_csrf("/password-reset").await;
    let r = b
        .form(
            "/password-reset",
            &[("csrf_token", &csrf), ("email", "pat@example.org")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let token = app.token_from_email("pat@example.org", "/password-reset/confirm");
    let page = b
        .get(&format!("/password-reset/confirm?token={token}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(&token));
    let r = b
        .form(
            "/password-reset/confirm",
            &[
                ("csrf_token", &csrf),
                ("token", &token),
                ("password", "new password 1"),
                ("password_confirm", "different"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = b
        .form(
            "/password-reset/confirm",
            &[
                ("csrf_token", &csrf),
                ("token", &token),
                ("password", "new password 1"),
                ("password_confirm", "new password 1"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        app.browser()
            .login("pat@example.org", "new password 1")
            .await
            .0,
        StatusCode::OK
    );
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn display_settings_persist_in_a_cookie_and_change_the_page(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let b = app.browser();
    let csrf = b.page_csrf("/").await;
    let r = b
        .form(
            "/display",
            &[
                ("csrf_token", &csrf),
                ("toggle", "large_text"),
                ("next", "/register"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/register");
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("Max-Age=31536000"));
    let html = b.get("/register").await.text().await.unwrap();
    assert!(html.contains("large-text"));
    assert!(!html.contains("class=\"high-contrast") && !html.contains(" high-contrast\""));

    let r = b
        .client
        .post(b.url("/display"))
        .header("accept", "application/json")
        .header("x-csrf-token", &csrf)
        .form(&[("toggle", "high_contrast")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({ "large_text": true, "high_contrast": true })
    );
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn admin_pages_change_roles_and_show_the_audit_log_and_refuse_others(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let target = app.create_user("target@example.org", &[Role::Bidder]).await;
    let admin = app.login_as("admin@example.org", &[Role::Admin]).await;
    let csrf = admin.page_csrf("/admin/users").await;
    let html = admin
        .get("/admin/users?query=target")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("target@example.org"));
    let r = admin
        .client
        .post(admin.url(&format!("/admin/users/u_{target}/roles")))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("roles", "bidder"),
            ("roles", "donor"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let roles: Vec<String> = sqlx::query_scalar("SELECT roles FROM users WHERE id = $1")
        .bind(target)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(roles, ["bidder", "donor"]);
    let html = admin.get("/admin/audit").await.text().await.unwrap();
    assert!(html.contains("user.roles_changed"));

    let bidder = app.login_as("bidder@example.org", &[Role::Bidder]).await;
    assert_eq!(
        bidder.get("/admin/users").await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        bidder.get("/admin/audit").await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.browser().get("/admin/users").await.status(),
        StatusCode::SEE_OTHER
    );
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn security_headers_and_friendly_error_pages(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let r = app.browser().get("/").await;
    let h = r.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'self'")
            && csp.contains("frame-ancestors 'none'")
            && csp.contains("script-src 'self'")
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "same-origin");
    assert!(
        h.get("strict-transport-security").is_none(),
        "no HSTS over plain http"
    );

    let r = app.browser().get("/no/such/page").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(r.text().await.unwrap().contains("Page not found"));
    let r = app.browser().get("/api/no/such").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"],
        "not_found"
    );

    // Oversized bodies are refused before anyone reads them.
    let big = "x".repeat(200 * 1024);
    let r = app
        .anonymous()
        .client
        .post(app.url("/api/auth/register"))
        .header("content-type", "application/json")
        .body(format!("{{\"name\":\"{big}\"}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // Static files carry cache headers.
    let r = app.browser().get("/static/css/site.css").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("max-age"));
    let r = app.browser().get("/js/countdown.js").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("javascript"));
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn over_https_cookies_are_secure_and_hsts_is_sent(db: PgPool) {
    let app = TestApp::builder()
        .with_config(|c| c.base_url = url::Url::parse("https://auuction.example").unwrap())
        .spawn(db)
        .await;
    app.create_user("s@example.org", &[Role::Bidder]).await;
    let r = app
        .anonymous()
        .post(
            "/api/auth/login",
            serde_json::json!({ "email": "s@example.org", "password": PASSWORD }),
        )
        .await;
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Secure"));
    assert!(r.headers()["strict-transport-security"]
        .to_str()
        .unwrap()
        .contains("max-age=31536000"));
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn operations_endpoints(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let b = app.anonymous();
    assert_eq!(b.get("/healthz").await.status(), StatusCode::OK);
    let ready: serde_json::Value = b.get("/readyz").await.json().await.unwrap();
    assert_eq!(ready["database"], "ok");
    let metrics = b.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("auuction_http_requests_total"),
        "{metrics}"
    );
    assert!(metrics.contains("route=\"/readyz\""));
    assert!(metrics.contains("auuction_process_resident_memory_bytes"));

    // With the database gone, readiness says so (and liveness does not).
    app.db.close().await;
    assert_eq!(
        b.get("/readyz").await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(b.get("/healthz").await.status(), StatusCode::OK);
}
