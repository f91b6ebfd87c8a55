//! Accounts over HTTP: register, verify, login, logout, password reset, rate limits.

use crate::helpers::{assert_error, TestApp, PASSWORD};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn register_answers_the_spec_shape_hashes_with_argon2id_and_emails_a_working_link(
    db: PgPool,
) {
    let app = TestApp::spawn(db).await;
    let anon = app.anonymous();
    let r = app.register("Jane@Example.org").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["email"], "jane@example.org");
    assert!(body["id"].as_str().unwrap().starts_with("u_"));
    assert_eq!(
        body.as_object().unwrap().len(),
        2,
        "exactly the spec's fields: {body}"
    );

    let (hash, verified): (String, Option<chrono::DateTime<chrono::Utc>>) = sqlx::query_as(
        "SELECT password_hash, email_verified_at FROM users WHERE email = 'jane@example.org'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(
        hash.starts_with("$argon2id$"),
        "stored hash is argon2id: {hash}"
    );
    assert!(!hash.contains(PASSWORD));
    assert!(verified.is_none());

    // The email file is really written, and its link is BASE_URL/verify?token=...
    let mails = app.emails_to("jane@example.org");
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0].contains("http://127.0.0.1/verify?token="),
        "{}",
        mails[0]
    );
    let token = app.token_from_email("jane@example.org", "/verify");
    assert_eq!(token.len(), 64);

    let r = anon
        .post("/api/auth/verify", json!({ "token": token }))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["verified"], true);
    let verified: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT email_verified_at FROM users WHERE email = 'jane@example.org'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(verified.is_some());

    // A token works once.
    assert_error(
        anon.post("/api/auth/verify", json!({ "token": token }))
            .await,
        400,
        "token_used",
    )
    .await;
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn the_emailed_link_verifies_in_the_browser(db: PgPool) {
    let app = TestApp::spawn(db).await;
    app.register("page@example.org").await;
    let token = app.token_from_email("page@example.org", "/verify");
    let r = app.browser().get(&format!("/verify?token={token}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("confirmed"));
    let r = app.browser().get("/verify?token=nonsense").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn register_refuses_bad_input_with_clear_errors(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let anon = app.anonymous();
    assert_error(
        anon.post_raw("/api/auth/register", "application/json", "{\"name\": ")
            .await,
        400,
        "malformed_json",
    )
    .await;
    assert_error(
        anon.post_raw("/api/auth/register", "text/plain", "{}")
            .await,
        415,
        "unsupported_media_type",
    )
    .await;
    assert_error(
        anon.post(
            "/api/auth/register",
            json!({ "name": "Jane", "password": PASSWORD }),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_error(
        anon.post(
            "/api/auth/register",
            json!({ "name": "Jane", "email": 5, "password": PASSWORD }),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_error(
        anon.post(
            "/api/auth/register",
            json!({ "name": "Jane", "email": "a@b.org", "password": PASSWORD, "isAdmin": true }),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    let body = assert_error(
        anon.post(
            "/api/auth/register",
            json!({ "name": "x".repeat(201), "email": "a@b.org", "password": PASSWORD }),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(body["field"], "name");
    let body = assert_error(
        anon.post(
            "/api/auth/register",
            json!({ "name": "Jane", "email": "not-an-email", "password": PASSWORD }),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(body["field"], "email");
    let body = assert_error(anon.post("/api/auth/register", json!({ "name": "Jane", "email": format!("{}@example.org", "a".repeat(300)), "password": PASSWORD })).await, 422, "validation_failed").await;
    assert_eq!(body["field"], "email");
    let body = assert_error(
        anon.post(
            "/api/auth/register",
            json!({ "name": "Jane", "email": "a@b.org", "password": "short" }),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(body["field"], "password");
    assert_error(
        anon.post(
            "/api/auth/register",
            json!({ "name": "Jane", "email": "a@b.org", "password": "p".repeat(129) }),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    // Nothing was half-written by all of that.
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(count, 0);

    assert_eq!(
        app.register("dup@example.org").await.status(),
        StatusCode::CREATED
    );
    assert_error(app.register("DUP@example.org").await, 409, "email_taken").await;
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn bad_and_expired_tokens_are_refused(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let anon = app.anonymous();
    assert_error(
        anon.post("/api/auth/verify", json!({ "token": "0".repeat(64) }))
            .await,
        400,
        "invalid_token",
    )
    .await;
    assert_error(
        anon.post(
            "/api/auth/verify",
            json!({ "token": "'; drop table users; --" }),
        )
        .await,
        400,
        "invalid_token",
    )
    .await;
    assert_error(
        anon.post("/api/auth/verify", json!({})).await,
        422,
        "validation_failed",
    )
    .await;

    app.register("late@example.org").await;
    let token = app.token_from_email("late@example.org", "/verify");
    sqlx::query("UPDATE email_tokens SET expires_at = now() - interval '1 minute'")
        .execute(&app.db)
        .await
        .unwrap();
    assert_error(
        anon.post("/api/auth/verify", json!({ "token": token }))
            .await,
        400,
        "token_expired",
    )
    .await;

    // A fresh link can be asked for; the answer does not reveal whether the account exists.
    let r = anon
        .post(
            "/api/auth/verify/resend",
            json!({ "email": "late@example.org" }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r2 = anon
        .post(
            "/api/auth/verify/resend",
            json!({ "email": "nobody@example.org" }),
        )
        .await;
    assert_eq!(r2.status(), StatusCode::ACCEPTED);
    assert_eq!(r.text().await.unwrap(), r2.text().await.unwrap());
    let token = app.token_from_email("late@example.org", "/verify");
    assert_eq!(
        anon.post("/api/auth/verify", json!({ "token": token }))
            .await
            .status(),
        StatusCode::OK
    );
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn login_sets_a_safe_cookie_returns_a_token_and_hides_which_part_was_wrong(db: PgPool) {
    let app = TestApp::spawn(db).await;
    app.create_user("ann@example.org", &[auuction::domain::Role::Bidder])
        .await;
    let anon = app.anonymous();
    let r = anon
        .post(
            "/api/auth/login",
            json!({ "email": "ANN@example.org", "password": PASSWORD }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = r
        .headers()
        .get("set-cookie")
        .expect("session cookie")
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.starts_with("auuction_session="));
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain http base URL: no Secure flag: {cookie}"
    );
    let body: Value = r.json().await.unwrap();
    let token = body["token"].as_str().unwrap().to_string();
    assert!(body["csrfToken"].as_str().unwrap().len() >= 32);
    assert_eq!(body["user"]["email"], "ann@example.org");
    assert!(body["user"].get("passwordHash").is_none());

    // The bearer token authenticates API clients.
    let mut api = app.api_client(&token);
    let me: Value = api.get("/api/users/me").await.json().await.unwrap();
    assert_eq!(me["email"], "ann@example.org");

    let wrong_password = anon
        .post(
            "/api/auth/login",
            json!({ "email": "ann@example.org", "password": "wrong password" }),
        )
        .await;
    let unknown_email = anon
        .post(
            "/api/auth/login",
            json!({ "email": "nobody@example.org", "password": "wrong password" }),
        )
        .await;
    assert_eq!(wrong_password.status(), 401);
    assert_eq!(unknown_email.status(), 401);
    assert_eq!(
        wrong_password.text().await.unwrap(),
        unknown_email.text().await.unwrap(),
        "same answer for both"
    );

    // Logging out ends the bearer session too.
    assert_eq!(
        api.post("/api/auth/logout", json!({})).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_error(api.get("/api/users/me").await, 401, "invalid_token").await;
    api.token = Some("not-a-session".into());
    assert_error(api.get("/api/users/me").await, 401, "invalid_token").await;
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn cookie_logout_ends_the_session(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let b = app
        .login_as("bob@example.org", &[auuction::domain::Role::Bidder])
        .await;
    assert_eq!(b.get("/api/users/me").await.status(), StatusCode::OK);
    assert_eq!(
        b.post("/api/auth/logout", json!({})).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_error(b.get("/api/users/me").await, 401, "unauthenticated").await;
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn password_reset_request_and_confirm(db: PgPool) {
    let app = TestApp::spawn(db).await;
    app.create_user("forgetful@example.org", &[auuction::domain::Role::Bidder])
        .await;
    let anon = app.anonymous();
    let known = anon
        .post(
            "/api/auth/password/reset",
            json!({ "email": "forgetful@example.org" }),
        )
        .await;
    let unknown = anon
        .post(
            "/api/auth/password/reset",
            json!({ "email": "nobody@example.org" }),
        )
        .await;
    assert_eq!(known.status(), StatusCode::ACCEPTED);
    assert_eq!(unknown.status(), StatusCode::ACCEPTED);
    assert_eq!(known.text().await.unwrap(), unknown.text().await.unwrap());
    assert!(app.emails_to("nobody@example.org").is_empty());
    assert_error(
        anon.post(
            "/api/auth/password/reset",
            json!({ "email": "not an email" }),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;

    let token = app.token_from_email("forgetful@example.org", "/password-reset/confirm");
    assert_error(
        anon.post(
            "/api/auth/password/reset",
            json!({ "token": token, "password": "short" }),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_error(
        anon.post(
            "/api/auth/password/reset",
            json!({ "token": "f".repeat(64), "password": "a new password" }),
        )
        .await,
        400,
        "invalid_token",
    )
    .await;
    let r = anon
        .post(
            "/api/auth/password/reset",
            json!({ "token": token, "password": "a new password" }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_error(
        anon.post(
            "/api/auth/password/reset/confirm",
            json!({ "token": token, "password": "another password" }),
        )
        .await,
        400,
        "token_used",
    )
    .await;

    let mut b = app.browser();
    assert_eq!(b.login("forgetful@example.org", PASSWORD).await.0, 401);
    assert_eq!(
        b.login("forgetful@example.org", "a new password").await.0,
        200
    );

    // Reset links expire after an hour.
    anon.post(
        "/api/auth/password/reset",
        json!({ "email": "forgetful@example.org" }),
    )
    .await;
    let token = app.token_from_email("forgetful@example.org", "/password-reset/confirm");
    sqlx::query(
        "UPDATE email_tokens SET expires_at = now() - interval '1 second' WHERE purpose = 'reset'",
    )
    .execute(&app.db)
    .await
    .unwrap();
    assert_error(
        anon.post(
            "/api/auth/password/reset/confirm",
            json!({ "token": token, "password": "a third password" }),
        )
        .await,
        400,
        "token_expired",
    )
    .await;
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn auth_endpoints_are_rate_limited_per_address_with_retry_after(db: PgPool) {
    let app = TestApp::builder()
        .with_config(|c| c.rate_limits.auth_per_ip = 3)
        .spawn(db)
        .await;
    let anon = app.anonymous();
    for _ in 0..3 {
        assert_eq!(
            anon.post(
                "/api/auth/login",
                json!({ "email": "x@example.org", "password": "wrong password" })
            )
            .await
            .status(),
            401
        );
    }
    let r = anon
        .post(
            "/api/auth/login",
            json!({ "email": "x@example.org", "password": "wrong password" }),
        )
        .await;
    let retry: u64 = r
        .headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    assert_error(r, 429, "rate_limited").await;
    // Reads are not limited.
    assert_eq!(anon.get("/api/auctions").await.status(), StatusCode::OK);
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn login_attempts_are_rate_limited_per_account_across_addresses(db: PgPool) {
    let app = TestApp::builder()
        .with_config(|c| {
            c.rate_limits.auth_per_account = 2;
            c.trust_proxy = true;
        })
        .spawn(db)
        .await;
    let client = reqwest::Client::new();
    let attempt = |ip: &'static str| {
        client
            .post(app.url("/api/auth/login"))
            .header("x-forwarded-for", ip)
            .json(&json!({ "email": "target@example.org", "password": "guess guess guess" }))
            .send()
    };
    assert_eq!(attempt("10.0.0.1").await.unwrap().status(), 401);
    assert_eq!(attempt("10.0.0.2").await.unwrap().status(), 401);
    assert_error(attempt("10.0.0.3").await.unwrap(), 429, "rate_limited").await;
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn writes_are_rate_limited_per_account(db: PgPool) {
    let app = TestApp::builder()
        .with_config(|c| c.rate_limits.write_per_account = 2)
        .spawn(db)
        .await;
    let b = app
        .login_as("busy@example.org", &[auuction::domain::Role::Bidder])
        .await;
    for _ in 0..2 {
        assert_eq!(
            b.put("/api/users/me", json!({ "household": "Doe" }))
                .await
                .status(),
            200
        );
    }
    assert_error(
        b.put("/api/users/me", json!({ "household": "Doe" })).await,
        429,
        "rate_limited",
    )
    .await;
}

/// Emails leave through the mailer the app is given (the builder's swap), not the default.
#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn emails_go_through_the_mailer_the_app_is_given(db: PgPool) {
    let elsewhere = std::env::temp_dir().join(format!("auuction-mail-{}", uuid::Uuid::new_v4()));
    let mailer =
        auuction::mail::Mailer::new(None, elsewhere.clone(), "Test <test@example.org>").unwrap();
    let app = TestApp::builder().with_mailer(mailer).spawn(db).await;
    let r = app.register("jane@example.org").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert!(
        app.emails_to("jane@example.org").is_empty(),
        "not the default"
    );
    let sent: Vec<String> = std::fs::read_dir(&elsewhere)
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .collect();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].contains("jane@example.org") && sent[0].contains("/verify?token="));
    let _ = std::fs::remove_dir_all(&elsewhere);
}
