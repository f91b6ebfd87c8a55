//! Profiles, the admin's user directory, role changes and their audit trail, CSRF, and the
//! `auuction user add` command.

use crate::helpers::{assert_error, auuction, TestApp, PASSWORD};
use auuction::domain::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn my_profile_reads_and_updates(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let b = app.login_as("me@example.org", &[Role::Bidder]).await;
    let me: Value = b.get("/api/users/me").await.json().await.unwrap();
    assert_eq!(me["email"], "me@example.org");
    assert_eq!(me["preferences"], json!({ "email": true, "sms": false }));
    assert!(me["paddleNumber"].as_i64().unwrap() >= 101);
    assert_eq!(me["roles"], json!(["bidder"]));

    let r = b.put("/api/users/me", json!({ "name": "Me Myself", "phone": "+1 555 123 4567", "household": "The Myselfs", "preferences": { "email": false, "sms": true } })).await;
    assert_eq!(r.status(), StatusCode::OK);
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["name"], "Me Myself");
    assert_eq!(me["phone"], "+1 555 123 4567");
    assert_eq!(me["household"], "The Myselfs");
    assert_eq!(me["preferences"], json!({ "email": false, "sms": true }));

    // Absent fields stay, null clears.
    let me: Value = b
        .put(
            "/api/users/me",
            json!({ "household": null, "preferences": { "email": true, "sms": false } }),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["name"], "Me Myself");
    assert_eq!(me["household"], Value::Null);
    assert_eq!(me["phone"], "+1 555 123 4567");
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn my_profile_refuses_bad_input_and_keeps_the_old_values(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let b = app.login_as("me@example.org", &[Role::Bidder]).await;
    assert_error(
        b.put("/api/users/me", json!({ "name": "" })).await,
        422,
        "validation_failed",
    )
    .await;
    assert_error(
        b.put("/api/users/me", json!({ "name": "n".repeat(201) }))
            .await,
        422,
        "validation_failed",
    )
    .await;
    assert_error(
        b.put("/api/users/me", json!({ "household": "h".repeat(201) }))
            .await,
        422,
        "validation_failed",
    )
    .await;
    assert_error(
        b.put("/api/users/me", json!({ "phone": "call me maybe" }))
            .await,
        422,
        "validation_failed",
    )
    .await;
    assert_error(
        b.put("/api/users/me", json!({ "name": 42 })).await,
        422,
        "validation_failed",
    )
    .await;
    assert_error(
        b.put("/api/users/me", json!({ "roles": ["admin"] })).await,
        422,
        "validation_failed",
    )
    .await;
    let body = assert_error(
        b.put(
            "/api/users/me",
            json!({ "preferences": { "email": true, "sms": true } }),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(body["field"], "phone");
    assert_error(
        b.post_raw("/api/users/me", "application/json", "{}").await,
        405,
        "method_not_allowed",
    )
    .await;
    let me: Value = b.get("/api/users/me").await.json().await.unwrap();
    assert_eq!(me["name"], "User me@example.org");
    assert_eq!(me["roles"], json!(["bidder"]));
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn no_session_is_401_everywhere_it_matters(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let anon = app.anonymous();
    assert_error(anon.get("/api/users/me").await, 401, "unauthenticated").await;
    assert_error(
        anon.put("/api/users/me", json!({ "name": "x" })).await,
        401,
        "unauthenticated",
    )
    .await;
    assert_error(anon.get("/api/users").await, 401, "unauthenticated").await;
    assert_error(anon.get("/api/users/u_1").await, 401, "unauthenticated").await;
    assert_error(
        anon.put("/api/users/u_1/roles", json!({ "roles": ["admin"] }))
            .await,
        401,
        "unauthenticated",
    )
    .await;
    assert_error(anon.get("/api/audit").await, 401, "unauthenticated").await;
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn cookie_writes_need_the_csrf_token_but_bearer_writes_do_not(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let mut b = app.login_as("me@example.org", &[Role::Bidder]).await;
    let token = b.csrf.take().unwrap();
    assert_error(
        b.put("/api/users/me", json!({ "name": "Forged" })).await,
        403,
        "csrf_failed",
    )
    .await;
    b.csrf = Some("0".repeat(64));
    assert_error(
        b.put("/api/users/me", json!({ "name": "Forged" })).await,
        403,
        "csrf_failed",
    )
    .await;
    let me: Value = b.get("/api/users/me").await.json().await.unwrap();
    assert_eq!(me["name"], "User me@example.org", "nothing changed");
    b.csrf = Some(token);
    assert_eq!(
        b.put("/api/users/me", json!({ "name": "Real" }))
            .await
            .status(),
        StatusCode::OK
    );

    // An API client with a bearer token and no cookie has no ambient authority to forge.
    let login: Value = app
        .anonymous()
        .post(
            "/api/auth/login",
            json!({ "email": "me@example.org", "password": PASSWORD }),
        )
        .await
        .json()
        .await
        .unwrap();
    let api = app.api_client(login["token"].as_str().unwrap());
    assert_eq!(
        api.put("/api/users/me", json!({ "name": "Via API" }))
            .await
            .status(),
        StatusCode::OK
    );
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn admins_search_users_and_others_are_refused(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let admin = app.login_as("admin@example.org", &[Role::Admin]).await;
    let bidder = app.login_as("zed@example.org", &[Role::Bidder]).await;
    let manager = app.login_as("manager@example.org", &[Role::Manager]).await;
    let zed_id = app.create_user("zed2@example.org", &[Role::Bidder]).await;

    let found: Value = admin
        .get("/api/users?query=zed")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found["total"], 2);
    let emails: Vec<&str> = found["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert!(emails.contains(&"zed@example.org") && emails.contains(&"zed2@example.org"));
    // LIKE wildcards in the query are literal.
    let none: Value = admin
        .get("/api/users?query=%25")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(none["total"], 0);

    let one: Value = admin
        .get(&format!("/api/users/u_{zed_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["email"], "zed2@example.org");
    assert_error(admin.get("/api/users/u_999999").await, 404, "not_found").await;
    assert_error(admin.get("/api/users/it_1").await, 404, "not_found").await;
    assert_error(admin.get("/api/users?limit=0").await, 400, "invalid_query").await;
    assert_error(
        admin.get("/api/users?limit=abc").await,
        400,
        "invalid_query",
    )
    .await;

    for other in [&bidder, &manager] {
        assert_error(other.get("/api/users?query=zed").await, 403, "forbidden").await;
        assert_error(
            other.get(&format!("/api/users/u_{zed_id}")).await,
            403,
            "forbidden",
        )
        .await;
        assert_error(other.get("/api/audit").await, 403, "forbidden").await;
    }
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn role_changes_are_admin_only_and_audited_with_before_and_after(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let admin = app.login_as("admin@example.org", &[Role::Admin]).await;
    let bidder = app.login_as("bidder@example.org", &[Role::Bidder]).await;
    let target = app.create_user("target@example.org", &[Role::Bidder]).await;
    let path = format!("/api/users/u_{target}/roles");

    assert_error(
        bidder.put(&path, json!({ "roles": ["admin"] })).await,
        403,
        "forbidden",
    )
    .await;
    assert_error(
        admin.put(&path, json!({ "roles": ["pope"] })).await,
        422,
        "validation_failed",
    )
    .await;
    assert_error(
        admin.put(&path, json!({ "roles": "donor" })).await,
        422,
        "validation_failed",
    )
    .await;
    assert_error(
        admin
            .put("/api/users/u_424242/roles", json!({ "roles": ["donor"] }))
            .await,
        404,
        "not_found",
    )
    .await;

    let r = admin
        .put(&path, json!({ "roles": ["bidder", "donor", "donor"] }))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let user: Value = r.json().await.unwrap();
    assert_eq!(user["roles"], json!(["bidder", "donor"]));

    let audit: Value = admin
        .get(&format!("/api/audit?entityType=user&entityId=u_{target}"))
        .await
        .json()
        .await
        .unwrap();
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["action"], "user.roles_changed");
    assert_eq!(entries[0]["before"], json!({ "roles": ["bidder"] }));
    assert_eq!(entries[0]["after"], json!({ "roles": ["bidder", "donor"] }));
    assert_eq!(entries[0]["actorName"], "User admin@example.org");

    // The refused attempts left no trace and no change.
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE entity_type = 'user'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(count, 1);

    // An admin cannot remove their own admin role (someone must stay able to fix things).
    let me: Value = admin.get("/api/users/me").await.json().await.unwrap();
    let my_path = format!("/api/users/{}/roles", me["id"].as_str().unwrap());
    assert_error(
        admin.put(&my_path, json!({ "roles": ["bidder"] })).await,
        409,
        "cannot_demote_self",
    )
    .await;
}

/// `auuction user add` makes a verified account; without --password-stdin it prints one.
#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn the_user_add_command_creates_a_verified_admin_who_can_log_in(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let url = app.database_url();

    let out = auuction()
        .args([
            "user",
            "add",
            "--email",
            "Root@Example.org",
            "--name",
            "Root",
            "--role",
            "admin,finance",
        ])
        .env("DATABASE_URL", &url)
        .env("SECRET_KEY", "x".repeat(40))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let password = stdout
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .expect("prints a password")
        .trim()
        .to_string();
    assert!(password.len() >= 20);

    let mut b = app.browser();
    let (status, body) = b.login("root@example.org", &password).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["roles"], json!(["admin", "finance"]));
    assert_eq!(body["user"]["verified"], true);

    // With --password-stdin, the given password is used; a duplicate email fails clearly.
    use std::io::Write;
    let mut child = auuction()
        .args([
            "user",
            "add",
            "--email",
            "host@example.org",
            "--name",
            "Host",
            "--role",
            "donor",
            "--password-stdin",
        ])
        .env("DATABASE_URL", &url)
        .env("SECRET_KEY", "x".repeat(40))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a chosen password\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("password:"));
    assert_eq!(
        app.browser()
            .login("host@example.org", "a chosen password")
            .await
            .0,
        200
    );

    let out = auuction()
        .args([
            "user",
            "add",
            "--email",
            "host@example.org",
            "--name",
            "Again",
            "--role",
            "nonsense",
        ])
        .env("DATABASE_URL", &url)
        .env("SECRET_KEY", "x".repeat(40))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown role"));
}

/// The load tester's setup: verified bidders in bulk, with tokens, for admins only.
#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn admins_create_verified_test_bidders_in_bulk_with_tokens(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let admin = app.login_as("admin@example.org", &[Role::Admin]).await;
    let manager = app.login_as("manager@example.org", &[Role::Manager]).await;
    let request = json!({ "count": 25, "emailPrefix": "lt-", "domain": "loadtest.example", "password": "load test password" });
    assert_error(
        manager.post("/api/users/bulk", request.clone()).await,
        403,
        "forbidden",
    )
    .await;
    assert_error(
        app.anonymous()
            .post("/api/users/bulk", request.clone())
            .await,
        401,
        "unauthenticated",
    )
    .await;
    assert_error(admin.post("/api/users/bulk", json!({ "count": 0, "emailPrefix": "lt-", "domain": "x.org", "password": "load test password" })).await, 422, "validation_failed").await;
    assert_error(admin.post("/api/users/bulk", json!({ "count": 5, "emailPrefix": "Bad Prefix", "domain": "x.org", "password": "load test password" })).await, 422, "validation_failed").await;

    let r = admin.post("/api/users/bulk", request.clone()).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    let users = body["users"].as_array().unwrap();
    assert_eq!(users.len(), 25);
    // Each token is a working session of a verified bidder.
    let api = app.api_client(users[3]["token"].as_str().unwrap());
    let me: Value = api.get("/api/users/me").await.json().await.unwrap();
    assert_eq!(me["email"], users[3]["email"]);
    assert_eq!(me["verified"], true);
    assert_eq!(me["roles"], json!(["bidder"]));
    // The password works too, and a second call with the same prefix is refused whole.
    assert_eq!(
        app.browser()
            .login(users[0]["email"].as_str().unwrap(), "load test password")
            .await
            .0,
        200
    );
    assert_error(
        admin.post("/api/users/bulk", request).await,
        409,
        "email_taken",
    )
    .await;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE email LIKE 'lt-%'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(count, 25);
    let audit: Value = admin
        .get("/api/audit?entityType=user")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit["entries"][0]["action"], "user.bulk_created");
}
