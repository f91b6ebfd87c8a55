//! Outages answered clearly: the database unreachable must look like an outage (503
//! `storage_unavailable` with `Retry-After`, a "we will be right back" page), never like a
//! crash (500), and no acknowledged bid may be lost. The database's connections are cut
//! for real (`TestApp::database_outage`), on REST, the socket and the plain form at once.
// Money literals are written dollars_cents (`125_00` is $125.00), like prices.
#![allow(clippy::inconsistent_digit_grouping)]

use std::{collections::HashSet, time::Duration};

use auuction::domain::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::helpers::{stored_bids, TestApp, Ws};

/// One answer of any channel: the HTTP status (or the socket's `status`), the error code,
/// and the seq of an accepted bid.
#[derive(Debug)]
struct Answer {
    channel: &'static str,
    status: u16,
    error: Option<String>,
    seq: Option<u64>,
}

fn answer(channel: &'static str, status: u16, body: &Value) -> Answer {
    Answer {
        channel,
        status,
        error: body["error"].as_str().map(str::to_string),
        seq: body["seq"].as_u64(),
    }
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn a_database_outage_mid_storm_is_answered_503_never_500_and_loses_no_ack(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let (_, item) = app.item_up_for_bids(5_00, chrono::Duration::hours(1)).await;
    let bidders = app.bidders(4).await;
    let rest = app.api_client(&bidders[0].1);
    let mut sockets = Vec::new();
    for (_, token) in &bidders[1..3] {
        sockets.push(Ws::connect(&app.base, Some(token)).await);
    }
    let form = app.login_as("form@example.org", &[Role::Bidder]).await;
    let form_csrf = form.page_csrf(&format!("/items/it_{item}")).await;
    let mut answers: Vec<Answer> = Vec::new();
    let mut amount = 10_00;
    let mut outage = None;
    let mut during = Vec::new();
    for round in 0..12 {
        if round == 4 {
            outage = Some(app.database_outage().await);
        }
        if round == 5 {
            // What else a person does while the database is away.
            // (Its own account it may still read: the session was verified moments ago.)
            let mine = app.api_client(&bidders[0].1).get("/api/users/me").await;
            assert_eq!(mine.status(), StatusCode::OK);
            let me = app
                .api_client(&bidders[0].1)
                .get("/api/users/me/bids")
                .await;
            during.push((
                "GET /api/users/me/bids",
                me.status(),
                me.headers().get("retry-after").is_some(),
                me.text().await.unwrap(),
            ));
            let page = app.browser().get("/").await;
            during.push((
                "GET /",
                page.status(),
                page.headers().get("retry-after").is_some(),
                page.text().await.unwrap(),
            ));
            let ready = app.anonymous().get("/readyz").await;
            during.push((
                "GET /readyz",
                ready.status(),
                false,
                ready.text().await.unwrap(),
            ));
            let alive = app.anonymous().get("/healthz").await;
            during.push((
                "GET /healthz",
                alive.status(),
                false,
                alive.text().await.unwrap(),
            ));
        }
        if round == 8 {
            if let Some(outage) = outage.take() {
                outage.end().await;
            }
        }
        // REST.
        amount += 1_00;
        let r = rest.bid(item, amount).await;
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        answers.push(answer("rest", status, &body));
        // The sockets.
        for (i, ws) in sockets.iter_mut().enumerate() {
            amount += 1_00;
            let reference = format!("r{round}-{i}");
            let r = ws
                .bid(&reference, item, &format!("{}", amount / 100), None)
                .await;
            answers.push(answer(
                "socket",
                r["status"].as_u64().unwrap() as u16,
                &r["body"],
            ));
        }
        // The plain form: a redirect back to the item with the outcome, or the outage page.
        amount += 1_00;
        let r = form
            .form(
                &format!("/items/it_{item}/bid"),
                &[
                    ("amount", &format!("{}", amount / 100)),
                    ("csrf_token", &form_csrf),
                ],
            )
            .await;
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        let error = (status == StatusCode::SERVICE_UNAVAILABLE).then(|| {
            assert!(text.contains("We will be right back"), "{text}");
            "storage_unavailable".to_string()
        });
        answers.push(Answer {
            channel: "form",
            status: status.as_u16(),
            error,
            seq: None,
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    for a in &answers {
        match a.status {
            201 | 303 | 409 => {}
            503 => assert_eq!(a.error.as_deref(), Some("storage_unavailable"), "{a:?}"),
            _ => panic!("not an answer an outage may give: {a:?}"),
        }
    }
    for channel in ["rest", "socket", "form"] {
        assert!(
            answers
                .iter()
                .any(|a| a.channel == channel && a.status == 503),
            "the outage reached {channel}: {answers:?}"
        );
        assert!(
            answers
                .iter()
                .rev()
                .take(8)
                .any(|a| a.channel == channel && a.status != 503),
            "{channel} works again after the outage: {answers:?}"
        );
    }
    // Acknowledged ⇒ recorded.
    let stored: HashSet<u64> = stored_bids(&app.db, item)
        .await
        .into_iter()
        .map(|(seq, ..)| seq as u64)
        .collect();
    for a in answers.iter().filter(|a| a.status == 201) {
        assert!(
            stored.contains(&a.seq.unwrap()),
            "acknowledged but not recorded: {a:?}"
        );
    }

    let (what, status, retry, body) = &during[0];
    assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE, "{what}: {body}");
    assert!(*retry, "{what} says when to retry");
    assert!(
        body.contains("\"error\":\"storage_unavailable\""),
        "{what}: {body}"
    );
    let (what, status, retry, body) = &during[1];
    assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE, "{what}");
    assert!(*retry, "{what} says when to retry");
    assert!(body.contains("We will be right back"), "{what}: {body}");
    assert_eq!(
        during[2].1,
        StatusCode::SERVICE_UNAVAILABLE,
        "readyz: not ready"
    );
    assert_eq!(during[3].1, StatusCode::OK, "healthz: still alive");
    assert_eq!(
        app.anonymous().get("/readyz").await.status(),
        StatusCode::OK
    );
    assert!(app.metric("auuction_outage_answers_total").await > 0.0);
}

/// A session this process verified recently keeps its live socket through an outage
/// (prices and snapshots come from memory); its bids are refused, since nothing can be
/// recorded. A session never seen here gets the outage answer, not a crash.
#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn a_known_session_keeps_its_socket_during_an_outage(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let (_, item) = app.item_up_for_bids(5_00, chrono::Duration::hours(1)).await;
    let bidders = app.bidders(2).await;
    // The first bidder's session is verified by a request; the second only logged in.
    let known = &bidders[0].1;
    assert_eq!(
        app.api_client(known).get("/api/users/me").await.status(),
        StatusCode::OK
    );
    let mut watcher = app.ws().await;
    watcher.subscribe(&format!("item:it_{item}")).await;

    let outage = app.database_outage().await;
    let mut ws = Ws::connect(&app.base, Some(known)).await;
    let snapshot = ws.subscribe(&format!("item:it_{item}")).await;
    assert_eq!(snapshot["seq"], 0);
    let r = ws.bid("during", item, "10", None).await;
    assert_eq!(r["status"], 503, "{r}");
    assert_eq!(r["body"]["error"], "storage_unavailable");

    let url = format!("{}/ws", app.base.replacen("http", "ws", 1));
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)
            .unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", bidders[1].1).parse().unwrap(),
    );
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
            let body: Value =
                serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
            assert_eq!(body["error"], "storage_unavailable", "{body}");
        }
        other => panic!("an unknown session must get the outage answer: {other:?}"),
    }
    // A write is never let through on a remembered session.
    let me = app
        .api_client(known)
        .put("/api/users/me", json!({ "name": "New Name" }))
        .await;
    assert_eq!(me.status(), StatusCode::SERVICE_UNAVAILABLE);
    outage.end().await;
}

/// The mail server down: the registration that sends the email still succeeds (the account
/// is made; the person can ask for another link), and nothing answers 500.
#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn the_mail_server_down_does_not_fail_the_page_that_sends(db: PgPool) {
    // Nothing listens on port 1: every send is refused at once.
    let mailer = auuction::mail::Mailer::new(
        Some("smtp://127.0.0.1:1"),
        std::env::temp_dir(),
        "A <a@example.org>",
    )
    .unwrap();
    let app = TestApp::builder().with_mailer(mailer).spawn(db).await;
    let r = app.register("jane@example.org").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = app
        .anonymous()
        .post(
            "/api/auth/verify/resend",
            json!({ "email": "jane@example.org" }),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.status());
}
