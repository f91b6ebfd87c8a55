//! The notification outbox: rows queued by the app go out through a real SMTP server on
//! loopback (`helpers::SmtpSink`), once, retried when the server says "later", failed with
//! the reason when it says "never", taken up again when a worker dies, and outbid mails
//! held to one per bidder and item per quiet window.
// Money literals are written dollars_cents (`125_00` is $125.00), like prices.
#![allow(clippy::inconsistent_digit_grouping)]

use std::{collections::HashSet, time::Duration};

use auuction::{domain::Role, notify};
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::helpers::{SmtpSink, TestApp, Verdict};

/// The app sending through `sink`, with `workers` outbox workers (0: the test runs passes
/// itself) and short delays so retries and leases play out in a test's time.
async fn app_with_sink(db: PgPool, sink: &SmtpSink, workers: usize) -> TestApp {
    let url = sink.url();
    TestApp::builder()
        .with_config(|c| {
            c.smtp_url = Some(url);
            c.notify.workers = workers;
            c.notify.poll = Duration::from_millis(20);
            c.notify.retry_base = Duration::from_millis(50);
            c.notify.retry_max = Duration::from_millis(200);
            c.notify.lease = Duration::from_secs(1);
        })
        .spawn(db)
        .await
}

/// Queues a custom message for `user`, as staff would.
async fn queue_custom(db: &PgPool, user: i64, subject: &str, body: &str) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO notifications (user_id, channel, type, template_key, payload)
         VALUES ($1, 'email', 'custom', 'custom', $2) RETURNING id",
    )
    .bind(user)
    .bind(json!({ "subject": subject, "body": body }))
    .fetch_one(db)
    .await
    .unwrap()
}

#[derive(Debug, sqlx::FromRow)]
struct Row {
    status: String,
    attempts: i32,
    last_error: Option<String>,
    message_id: Option<String>,
}

async fn row(db: &PgPool, id: i64) -> Row {
    sqlx::query_as("SELECT status::text AS status, attempts, last_error, message_id FROM notifications WHERE id = $1")
        .bind(id)
        .fetch_one(db)
        .await
        .unwrap()
}

/// Waits (up to 10 s) until row `id` has `status`.
async fn wait_status(db: &PgPool, id: i64, status: &str) -> Row {
    for _ in 0..500 {
        let r = row(db, id).await;
        if r.status == status {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "notification {id} never became {status}: {:?}",
        row(db, id).await
    );
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn a_queued_message_is_sent_over_smtp_once_with_a_stable_message_id(db: PgPool) {
    let sink = SmtpSink::start().await;
    let app = app_with_sink(db, &sink, 1).await;
    let ann = app.create_user("ann@example.org", &[Role::Bidder]).await;
    let id = queue_custom(
        &app.db,
        ann,
        "Parking tonight",
        "Park behind the hall.\n\nThank you!",
    )
    .await;

    let row = wait_status(&app.db, id, "sent").await;
    let mails = sink.wait_delivered(1, Duration::from_secs(5)).await;
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.to, vec!["<ann@example.org>"]);
    assert_eq!(mail.header("Subject").as_deref(), Some("Parking tonight"));
    assert_eq!(
        mail.header("Message-ID"),
        row.message_id,
        "the row records the id it sent"
    );
    assert!(row
        .message_id
        .unwrap()
        .starts_with(&format!("<notification-{id}.")));
    assert!(mail.data.contains("Park behind the hall."), "{}", mail.data);
    assert!(
        mail.data.contains("text/html"),
        "an HTML part too: {}",
        mail.data
    );
    assert_eq!(row.attempts, 1);
    // Nothing more goes out for it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.received().len(), 1);
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn a_server_answering_try_later_is_retried_until_it_takes_the_message(db: PgPool) {
    let sink = SmtpSink::start().await;
    sink.script([
        Verdict::Refuse("451 4.3.0 try again later"),
        Verdict::Refuse("421 4.7.0 too busy"),
    ]);
    let app = app_with_sink(db, &sink, 1).await;
    let ann = app.create_user("ann@example.org", &[Role::Bidder]).await;
    let id = queue_custom(&app.db, ann, "Hello", "Body").await;

    let row = wait_status(&app.db, id, "sent").await;
    assert_eq!(row.attempts, 3);
    let received = sink.received();
    assert_eq!(received.len(), 3, "two refusals, then the delivery");
    assert!(received[2].accepted);
    let ids: HashSet<_> = received.iter().map(|m| m.header("Message-ID")).collect();
    assert_eq!(ids.len(), 1, "every attempt is the same message: {ids:?}");
    let text = app.anonymous().get("/metrics").await.text().await.unwrap();
    assert!(
        text.contains(
            r#"auuction_notifications_total{kind="custom",channel="email",outcome="retried"} 2"#
        ),
        "{text}"
    );
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn a_permanent_refusal_ends_failed_with_the_reason(db: PgPool) {
    let sink = SmtpSink::start().await;
    sink.script([Verdict::Refuse("550 5.1.1 no such mailbox here")]);
    let app = app_with_sink(db, &sink, 1).await;
    let ann = app.create_user("ann@example.org", &[Role::Bidder]).await;
    let id = queue_custom(&app.db, ann, "Hello", "Body").await;

    let row = wait_status(&app.db, id, "failed").await;
    assert_eq!(row.attempts, 1, "a 5xx is not retried");
    let reason = row.last_error.unwrap();
    assert!(reason.contains("no such mailbox"), "{reason}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.received().len(), 1);
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn a_server_that_keeps_saying_later_ends_failed_after_the_last_attempt(db: PgPool) {
    let sink = SmtpSink::start().await;
    sink.script(std::iter::repeat_n(Verdict::Refuse("451 4.3.0 later"), 10));
    let url = sink.url();
    let app = TestApp::builder()
        .with_config(|c| {
            c.smtp_url = Some(url);
            c.notify.workers = 1;
            c.notify.poll = Duration::from_millis(20);
            c.notify.retry_base = Duration::from_millis(20);
            c.notify.max_attempts = 3;
        })
        .spawn(db)
        .await;
    let ann = app.create_user("ann@example.org", &[Role::Bidder]).await;
    let id = queue_custom(&app.db, ann, "Hello", "Body").await;

    let row = wait_status(&app.db, id, "failed").await;
    assert_eq!(row.attempts, 3);
    let reason = row.last_error.unwrap();
    assert!(reason.starts_with("gave up after 3 attempts"), "{reason}");
    assert_eq!(sink.received().len(), 3);
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn concurrent_workers_never_send_the_same_row(db: PgPool) {
    const MAILS: usize = 400;
    let sink = SmtpSink::start().await;
    let app = app_with_sink(db, &sink, 0).await;
    let users = app.bidders(4).await;
    for n in 0..MAILS {
        queue_custom(&app.db, users[n % 4].0, &format!("Message {n}"), "Body").await;
    }
    let stop = CancellationToken::new();
    let started = std::time::Instant::now();
    let workers: Vec<_> = (0..4)
        .map(|n| tokio::spawn(notify::run_worker(app.state.clone(), n == 0, stop.clone())))
        .collect();
    sink.wait_delivered(MAILS, Duration::from_secs(60)).await;
    let took = started.elapsed();
    // Time for a duplicate to show up if a row had been claimed twice.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.cancel();
    for w in workers {
        w.await.unwrap();
    }
    let delivered = sink.delivered();
    assert_eq!(delivered.len(), MAILS);
    let ids: HashSet<_> = delivered
        .iter()
        .map(|m| m.header("Message-ID").unwrap())
        .collect();
    assert_eq!(ids.len(), MAILS, "each row was sent once");
    let sent: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM notifications WHERE status = 'sent' AND attempts = 1",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(sent, MAILS as i64);
    eprintln!(
        "{MAILS} emails through SMTP by 4 workers in {took:?}: {:.0}/s",
        MAILS as f64 / took.as_secs_f64()
    );
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn a_worker_killed_mid_send_is_taken_over_after_its_lease(db: PgPool) {
    let sink = SmtpSink::start().await;
    sink.script([Verdict::Hang]);
    let app = app_with_sink(db, &sink, 0).await;
    let ann = app.create_user("ann@example.org", &[Role::Bidder]).await;
    let id = queue_custom(&app.db, ann, "Hello", "Body").await;

    // The worker that dies is another process's: its own SMTP connections die with it.
    let doomed = auuction::AppState {
        mailer: std::sync::Arc::new(
            auuction::mail::Mailer::new(
                Some(&sink.url()),
                app.dir.join("unused"),
                "a <a@localhost>",
            )
            .unwrap(),
        ),
        ..app.state.clone()
    };
    let first = tokio::spawn(notify::run_worker(doomed, false, CancellationToken::new()));
    let hung = sink.wait_received(1, Duration::from_secs(5)).await;
    assert_eq!(
        hung.len(),
        1,
        "the first worker got as far as the message's data"
    );
    first.abort();
    let _ = first.await;
    assert_eq!(
        row(&app.db, id).await.status,
        "sending",
        "left claimed by the dead worker"
    );

    let stop = CancellationToken::new();
    let second = tokio::spawn(notify::run_worker(app.state.clone(), false, stop.clone()));
    let row = wait_status(&app.db, id, "sent").await;
    stop.cancel();
    second.await.unwrap();
    assert_eq!(row.attempts, 2);
    let delivered = sink.delivered();
    assert_eq!(delivered.len(), 1);
    assert_eq!(
        delivered[0].header("Message-ID"),
        hung[0].header("Message-ID"),
        "the resend is recognisably the same message"
    );
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn a_name_with_line_breaks_cannot_add_headers(db: PgPool) {
    let sink = SmtpSink::start().await;
    let app = app_with_sink(db, &sink, 1).await;
    let eve: i64 = sqlx::query_scalar(
        "INSERT INTO users (email, name, password_hash, email_verified_at)
         VALUES ('eve@example.org', E'Eve\r\nBcc: victim@example.org\r\nX-Evil: 1', 'x', now()) RETURNING id",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    let id = queue_custom(&app.db, eve, "Hi\r\nBcc: other@example.org", "Body").await;

    wait_status(&app.db, id, "sent").await;
    let mail = &sink.delivered()[0];
    assert_eq!(mail.to, vec!["<eve@example.org>"], "no other recipient");
    let head = mail.data.split("\r\n\r\n").next().unwrap();
    for line in head.split("\r\n") {
        let lower = line.to_ascii_lowercase();
        assert!(
            !lower.starts_with("bcc:") && !lower.starts_with("x-evil:"),
            "injected header {line:?} in\n{head}"
        );
    }
}

/// An item in bidding, bidders Ann and Bob signed in, and the app sending through `sink`
/// (no workers: the test runs the passes).
async fn bidding_setup(
    db: PgPool,
    sink: &SmtpSink,
) -> (
    TestApp,
    i64,
    crate::helpers::Browser,
    crate::helpers::Browser,
    i64,
) {
    let app = app_with_sink(db, sink, 0).await;
    let (_, item) = app
        .item_up_for_bids(100_00, chrono::Duration::hours(2))
        .await;
    let ann = app.login_as("ann@example.org", &[Role::Bidder]).await;
    let bob = app.login_as("bob@example.org", &[Role::Bidder]).await;
    let ann_id = sqlx::query_scalar("SELECT id FROM users WHERE email = 'ann@example.org'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    (app, item, ann, bob, ann_id)
}

async fn leading(b: &crate::helpers::Browser, item: i64, cents: i64) {
    let r: Value = b.bid(item, cents).await.json().await.unwrap();
    assert_eq!(r["leading"], true, "{r}");
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn outbid_mails_are_one_per_quiet_window_with_the_latest_price(db: PgPool) {
    let sink = SmtpSink::start().await;
    let (app, item, ann, bob, ann_id) = bidding_setup(db, &sink).await;

    leading(&ann, item, 100_00).await;
    leading(&bob, item, 150_00).await;
    notify::run_once(&app.state).await.unwrap();
    let mails = sink.wait_delivered(1, Duration::from_secs(5)).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, vec!["<ann@example.org>"]);
    assert!(mails[0].data.contains("$150.00"), "{}", mails[0].data);
    assert!(
        mails[0].header("Subject").unwrap().contains("outbid"),
        "{:?}",
        mails[0].header("Subject")
    );

    // Within the window Ann is outbid twice more: nothing goes out now...
    leading(&ann, item, 200_00).await;
    leading(&bob, item, 250_00).await;
    leading(&ann, item, 300_00).await;
    leading(&bob, item, 400_00).await;
    notify::run_once(&app.state).await.unwrap();
    notify::run_once(&app.state).await.unwrap();
    let to_ann = |mails: Vec<crate::helpers::Received>| {
        mails
            .into_iter()
            .filter(|m| m.to == vec!["<ann@example.org>".to_string()])
            .collect::<Vec<_>>()
    };
    assert_eq!(
        to_ann(sink.delivered()).len(),
        1,
        "held by the quiet window"
    );
    let waiting: Vec<(String, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "SELECT status::text, scheduled_for FROM notifications
          WHERE user_id = $1 AND type = 'outbid' AND status = 'scheduled'",
    )
    .bind(ann_id)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(
        waiting.len(),
        1,
        "one mail waits, whatever the number of outbids"
    );
    assert!(waiting[0].1 > chrono::Utc::now() + chrono::Duration::seconds(100));

    // ...and once the window has passed, one mail with the latest price.
    sqlx::query(
        "UPDATE notifications SET sent_at = sent_at - interval '200 seconds',
                scheduled_for = scheduled_for - interval '200 seconds'
          WHERE user_id = $1 AND type = 'outbid'",
    )
    .bind(ann_id)
    .execute(&app.db)
    .await
    .unwrap();
    notify::run_once(&app.state).await.unwrap();
    let mails = to_ann(sink.wait_delivered(3, Duration::from_secs(5)).await);
    assert_eq!(mails.len(), 2, "{mails:?}");
    assert!(mails[1].data.contains("$400.00"), "{}", mails[1].data);
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn a_bidder_who_took_the_lead_back_gets_no_outbid_mail(db: PgPool) {
    let sink = SmtpSink::start().await;
    let (app, item, ann, bob, ann_id) = bidding_setup(db, &sink).await;

    leading(&ann, item, 100_00).await;
    leading(&bob, item, 150_00).await;
    leading(&ann, item, 200_00).await;
    notify::run_once(&app.state).await.unwrap();

    let mails = sink.wait_delivered(1, Duration::from_secs(5)).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, vec!["<bob@example.org>"], "only Bob is behind");
    let (status, reason): (String, Option<String>) = sqlx::query_as(
        "SELECT status::text, last_error FROM notifications WHERE user_id = $1 AND type = 'outbid'",
    )
    .bind(ann_id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(status, "skipped");
    assert_eq!(reason.as_deref(), Some("the bidder took the lead back"));
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn email_notices_turned_off_stop_outbid_mails_but_not_a_win(db: PgPool) {
    let sink = SmtpSink::start().await;
    let (app, item, ann, bob, ann_id) = bidding_setup(db, &sink).await;
    sqlx::query("UPDATE users SET pref_email = false WHERE id = $1")
        .bind(ann_id)
        .execute(&app.db)
        .await
        .unwrap();
    leading(&ann, item, 100_00).await;
    leading(&bob, item, 150_00).await;
    sqlx::query(
        "INSERT INTO notifications (user_id, channel, type, template_key, payload, related_entity_type, related_entity_id)
         VALUES ($1, 'email', 'win', 'win', $2, 'item', $3)",
    )
    .bind(ann_id)
    .bind(json!({ "itemId": item, "amountCents": 150_00 }))
    .bind(item)
    .execute(&app.db)
    .await
    .unwrap();
    notify::run_once(&app.state).await.unwrap();

    let mails = sink.wait_delivered(1, Duration::from_secs(5)).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].header("Subject").unwrap().starts_with("You won"));
    let outbid: String = sqlx::query_scalar(
        "SELECT status::text FROM notifications WHERE user_id = $1 AND type = 'outbid'",
    )
    .bind(ann_id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(outbid, "skipped");
}

/// The `sig` query parameter of an unsubscribe link, and the link as a path.
fn unsubscribe_path(link: &str) -> String {
    let start = link.find("/unsubscribe?").expect("an unsubscribe link");
    link[start..]
        .trim_end_matches('>')
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn the_unsubscribe_link_works_without_login_and_only_for_its_user(db: PgPool) {
    let sink = SmtpSink::start().await;
    let (app, item, ann, bob, ann_id) = bidding_setup(db, &sink).await;
    leading(&ann, item, 100_00).await;
    leading(&bob, item, 150_00).await;
    notify::run_once(&app.state).await.unwrap();
    let mail = &sink.wait_delivered(1, Duration::from_secs(5)).await[0];
    let header = mail
        .header("List-Unsubscribe")
        .expect("a List-Unsubscribe header");
    assert!(
        header.starts_with("<http://127.0.0.1/unsubscribe?user="),
        "{header}"
    );
    let path = unsubscribe_path(&header);
    assert!(mail.data.contains(&path), "the link is in the text too");

    // Someone else's id with Ann's signature: refused, nothing changes.
    let bob_id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE email = 'bob@example.org'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let stranger = app.browser();
    let forged = path.replace(&format!("user={ann_id}"), &format!("user={bob_id}"));
    let (status, _) = stranger.html(&forged).await;
    assert_eq!(status, 400);
    let csrf = stranger.page_csrf("/login").await;
    let query = forged.split_once('?').unwrap().1.to_string();
    let mut fields: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    fields.push(("csrf_token".into(), csrf.clone()));
    let refs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(stranger.form("/unsubscribe", &refs).await.status(), 400);

    // Ann's own link, opened without logging in: a page to confirm, then done.
    let (status, page) = stranger.html(&path).await;
    assert_eq!(status, 200);
    assert!(page.contains("someone bids more than you"), "{page}");
    let query = path.split_once('?').unwrap().1.to_string();
    let mut fields: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    fields.push(("csrf_token".into(), csrf));
    let refs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let r = stranger.form("/unsubscribe", &refs).await;
    assert_eq!(r.status(), 200);
    let muted = |id: i64| {
        let db = app.db.clone();
        async move {
            sqlx::query_scalar::<_, Vec<String>>(
                "SELECT muted_notifications FROM users WHERE id = $1",
            )
            .bind(id)
            .fetch_one(&db)
            .await
            .unwrap()
        }
    };
    assert_eq!(muted(ann_id).await, vec!["outbid"]);
    assert!(muted(bob_id).await.is_empty());

    // Her next outbid is not sent.
    leading(&ann, item, 200_00).await;
    leading(&bob, item, 250_00).await;
    sqlx::query("UPDATE notifications SET scheduled_for = now() - interval '1 hour', sent_at = sent_at - interval '1 hour' WHERE user_id = $1")
        .bind(ann_id)
        .execute(&app.db)
        .await
        .unwrap();
    notify::run_once(&app.state).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let to_ann = sink
        .delivered()
        .into_iter()
        .filter(|m| m.to == vec!["<ann@example.org>".to_string()])
        .count();
    assert_eq!(to_ann, 1, "only the one before she unsubscribed");
    let last: (String, Option<String>) = sqlx::query_as(
        "SELECT status::text, last_error FROM notifications WHERE user_id = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(ann_id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(
        last,
        (
            "skipped".into(),
            Some("outbid notices are turned off".into())
        )
    );
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn notification_types_are_set_by_api_and_on_the_account_page(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let ann = app.login_as("ann@example.org", &[Role::Bidder]).await;
    let me = ann.json("/api/users/me").await;
    assert_eq!(
        me["notifications"],
        json!({ "outbid": true, "reoffer_announcement": true })
    );

    let r = ann
        .put(
            "/api/users/me",
            json!({ "notifications": { "outbid": false } }),
        )
        .await;
    assert_eq!(r.status(), 200);
    let me: Value = r.json().await.unwrap();
    assert_eq!(
        me["notifications"],
        json!({ "outbid": false, "reoffer_announcement": true })
    );
    crate::helpers::assert_error(
        ann.put(
            "/api/users/me",
            json!({ "notifications": { "win": false } }),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;

    // The account page shows them, and its form sets them (unchecked: off).
    let (_, page) = ann.html("/account").await;
    assert!(
        page.contains(r#"id="notice_outbid" name="notice_outbid" value="on">"#),
        "{page}"
    );
    assert!(page.contains(r#"name="notice_reoffer_announcement" value="on" checked>"#));
    let (status, _, _) = ann
        .submit_form(
            "/account",
            &[
                ("name", "Ann"),
                ("pref_email", "on"),
                ("notice_outbid", "on"),
            ],
        )
        .await;
    assert_eq!(status, 200);
    let me = ann.json("/api/users/me").await;
    assert_eq!(
        me["notifications"],
        json!({ "outbid": true, "reoffer_announcement": false })
    );
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn the_inbox_lists_my_notifications_and_staff_see_anyones(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let ann_id = app.create_user("ann@example.org", &[Role::Bidder]).await;
    let bob_id = app.create_user("bob@example.org", &[Role::Bidder]).await;
    queue_custom(&app.db, ann_id, "For Ann", "Hello Ann").await;
    let failed = queue_custom(&app.db, bob_id, "For Bob", "Hello Bob").await;
    sqlx::query("UPDATE notifications SET status = 'failed', last_error = '550 no such mailbox' WHERE id = $1")
        .bind(failed)
        .execute(&app.db)
        .await
        .unwrap();

    let ann = app.log_in("ann@example.org").await;
    let mine = ann.json("/api/notifications").await;
    let list = mine["notifications"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{mine}");
    assert_eq!(list[0]["type"], "custom");
    assert_eq!(list[0]["status"], "scheduled");
    assert_eq!(list[0]["payload"]["subject"], "For Ann");
    assert_eq!(mine["unread"], 1);
    assert_eq!(list[0]["readAt"], Value::Null);

    // Marking read: her own only, whatever ids she names.
    let r = ann
        .post("/api/notifications/read", json!({ "ids": [failed] }))
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["unread"], 1);
    let r = ann.post("/api/notifications/read", json!({})).await;
    assert_eq!(r.json::<Value>().await.unwrap()["unread"], 0);
    let mine = ann.json("/api/notifications").await;
    assert_eq!(mine["unread"], 0);
    assert!(mine["notifications"][0]["readAt"].is_string(), "{mine}");
    crate::helpers::assert_error(
        ann.get(&format!("/api/notifications?userId=u_{bob_id}"))
            .await,
        403,
        "forbidden",
    )
    .await;

    let manager = app.login_as("manager@example.org", &[Role::Manager]).await;
    let bobs = manager
        .json(&format!("/api/notifications?userId=u_{bob_id}"))
        .await;
    let list = bobs["notifications"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{bobs}");
    assert_eq!(list[0]["status"], "failed");
    assert_eq!(list[0]["lastError"], "550 no such mailbox");
    assert_eq!(bobs["unread"], 1, "Ann's marking did not touch Bob's");
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn the_close_and_the_reoffer_send_what_they_queue(db: PgPool) {
    let sink = SmtpSink::start().await;
    let clock = std::sync::Arc::new(auuction::clock::ManualClock::new(chrono::Utc::now()));
    let url = sink.url();
    let app = TestApp::builder()
        .with_clock(clock.clone())
        .with_config(|c| {
            c.smtp_url = Some(url);
            c.notify.workers = 1;
            c.notify.poll = Duration::from_millis(20);
        })
        .spawn(db)
        .await;
    let (auction, item) = app
        .item_up_for_bids(100_00, chrono::Duration::minutes(30))
        .await;
    let ann = app.login_as("ann@example.org", &[Role::Bidder]).await;
    let bob = app.login_as("bob@example.org", &[Role::Bidder]).await;
    leading(&ann, item, 100_00).await;
    leading(&bob, item, 175_00).await;
    let outbid = sink.wait_delivered(1, Duration::from_secs(5)).await;
    assert_eq!(outbid.len(), 1);
    assert_eq!(outbid[0].to, vec!["<ann@example.org>"]);

    // The close writes Bob's win; the worker sends it.
    let (close, reoffer_open): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) =
        sqlx::query_as("SELECT bidding_close_at, reoffer_open_at FROM auctions WHERE id = $1")
            .bind(auction)
            .fetch_one(&app.db)
            .await
            .unwrap();
    clock.set(close + chrono::Duration::seconds(1));
    let mails = sink.wait_delivered(2, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 2, "{mails:?}");
    assert_eq!(mails[1].to, vec!["<bob@example.org>"]);
    assert_eq!(
        mails[1].header("Subject").as_deref(),
        Some("You won \"Handmade Quilt\"")
    );
    assert!(mails[1].data.contains("$175.00"), "{}", mails[1].data);
    assert!(
        mails[1].header("List-Unsubscribe").is_none(),
        "a win is not optional"
    );

    // The reoffer's opening announces it to every bidder, dates in the auction's zone.
    clock.set(reoffer_open + chrono::Duration::seconds(1));
    let mails = sink.wait_delivered(4, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 4, "{mails:?}");
    let zone = auuction::local_time::LocalTime::default();
    for mail in &mails[2..] {
        assert_eq!(
            mail.header("Subject").as_deref(),
            Some("Items left from Test auction are for sale now")
        );
        assert!(
            mail.data.contains(&zone.long(reoffer_open)),
            "the opening in the auction's zone: {}",
            mail.data
        );
        assert!(mail.header("List-Unsubscribe").is_some());
    }
}

/// The issue's storm: 20,000 outbid events over 2,000 bidders and two items, written as the
/// bid journal writes them (its upsert folds each into the bidder's waiting row) while two
/// workers send. Each bidder gets one mail per item within the quiet window, and the newest
/// row of each keeps the latest price.
#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn an_outbid_storm_becomes_one_mail_per_bidder_and_item(db: PgPool) {
    const BIDDERS: i64 = 2_000;
    const EVENTS: usize = 20_000;
    const BATCH: usize = 200;
    let sink = SmtpSink::start().await;
    let app = app_with_sink(db, &sink, 2).await;
    let (auction, first) = app
        .item_up_for_bids(100_00, chrono::Duration::hours(2))
        .await;
    let donor: i64 = sqlx::query_scalar("SELECT id FROM users WHERE email = 'donor@example.org'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let second =
        crate::helpers::published_item(&app.db, auction, donor, 50_00, "competitive").await;
    let items = [first, second];
    let users: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO users (email, name, password_hash, email_verified_at)
         SELECT 'storm' || g || '@example.org', 'Bidder ' || g, 'x', now()
           FROM generate_series(1, $1::bigint) g
         RETURNING id",
    )
    .bind(BIDDERS)
    .fetch_all(&app.db)
    .await
    .unwrap();

    // A fixed pseudo-random sequence (no seed to chase when it fails).
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let mut latest: std::collections::HashMap<(i64, i64), i64> = Default::default();
    let started = std::time::Instant::now();
    let mut price = 100_00i64;
    for _ in 0..EVENTS / BATCH {
        let mut batch: std::collections::HashMap<(i64, i64), i64> = Default::default();
        for _ in 0..BATCH {
            price += 1_00;
            let pair = (users[next(users.len())], items[next(items.len())]);
            batch.insert(pair, price);
            latest.insert(pair, price);
        }
        let (mut who, mut what, mut payloads) = (Vec::new(), Vec::new(), Vec::new());
        for ((user, item), cents) in batch {
            who.push(user);
            what.push(item);
            payloads.push(json!({ "itemId": item, "currentBidCents": cents }));
        }
        sqlx::query(
            "INSERT INTO notifications (user_id, channel, type, template_key, payload, related_entity_type, related_entity_id)
             SELECT u.user_id, 'email', 'outbid', 'outbid', u.payload, 'item', u.item_id
               FROM UNNEST($1::bigint[], $2::jsonb[], $3::bigint[]) AS u(user_id, payload, item_id)
             ON CONFLICT (user_id, related_entity_id) WHERE type = 'outbid' AND status = 'scheduled'
             DO UPDATE SET payload = EXCLUDED.payload",
        )
        .bind(&who)
        .bind(&payloads)
        .bind(&what)
        .execute(&app.db)
        .await
        .unwrap();
    }

    // Every pair's first mail goes at once; what came after waits for the window.
    let delivered = sink
        .wait_delivered(latest.len(), Duration::from_secs(120))
        .await;
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let delivered_now = sink.delivered();
    assert_eq!(
        delivered_now.len(),
        delivered.len(),
        "nothing more within the window"
    );
    let mut per_pair: std::collections::HashMap<(String, String), usize> = Default::default();
    for mail in &delivered_now {
        let item = mail
            .data
            .split("/items/")
            .nth(1)
            .unwrap()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>();
        *per_pair.entry((mail.to[0].clone(), item)).or_default() += 1;
    }
    assert_eq!(
        per_pair.len(),
        latest.len(),
        "every bidder and item outbid got a mail"
    );
    assert!(
        per_pair.values().all(|n| *n == 1),
        "one mail per bidder and item"
    );

    let newest: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT DISTINCT ON (user_id, related_entity_id) user_id, related_entity_id,
                (payload->>'currentBidCents')::bigint
           FROM notifications WHERE type = 'outbid'
          ORDER BY user_id, related_entity_id, id DESC",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(newest.len(), latest.len());
    for (user, item, cents) in newest {
        assert_eq!(
            latest[&(user, item)],
            cents,
            "the newest row has the latest price"
        );
    }
    eprintln!(
        "{EVENTS} outbid events over {BIDDERS} bidders: {} mails in {took:?} ({:.0} mails/s)",
        delivered_now.len(),
        delivered_now.len() as f64 / took.as_secs_f64()
    );
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn an_admin_sends_a_test_message_through_the_outbox(db: PgPool) {
    let sink = SmtpSink::start().await;
    let app = app_with_sink(db, &sink, 1).await;
    let ann_id = app.create_user("ann@example.org", &[Role::Bidder]).await;
    let admin = app.login_as("admin@example.org", &[Role::Admin]).await;
    let ann = app.log_in("ann@example.org").await;

    crate::helpers::assert_error(
        ann.post("/api/notifications/test", json!({})).await,
        403,
        "forbidden",
    )
    .await;
    let r = admin.post("/api/notifications/test", json!({})).await;
    assert_eq!(r.status(), 202);
    let r = admin
        .post(
            "/api/notifications/test",
            json!({ "userId": format!("u_{ann_id}") }),
        )
        .await;
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    wait_status(&app.db, id, "sent").await;
    let mails = sink.wait_delivered(2, Duration::from_secs(5)).await;
    let mut to: Vec<_> = mails.iter().map(|m| m.to[0].clone()).collect();
    to.sort();
    assert_eq!(to, vec!["<admin@example.org>", "<ann@example.org>"]);
    assert!(mails
        .iter()
        .all(|m| m.header("Subject").as_deref() == Some("A test message from the auction")));
    crate::helpers::assert_error(
        admin
            .post("/api/notifications/test", json!({ "userId": "u_999999" }))
            .await,
        404,
        "not_found",
    )
    .await;
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn a_verified_newcomer_is_welcomed_with_their_paddle_number(db: PgPool) {
    let sink = SmtpSink::start().await;
    let app = app_with_sink(db, &sink, 1).await;
    assert_eq!(app.register("ruth@example.org").await.status(), 201);
    let verify = sink.wait_delivered(1, Duration::from_secs(5)).await;
    let link = verify[0]
        .data
        .split_whitespace()
        .find(|w| w.contains("/verify?token="))
        .expect("a verify link")
        .to_string();
    let path = &link[link.find("/verify").unwrap()..];
    let (status, _) = app.browser().html(path).await;
    assert_eq!(status, 200);
    // Opening the link again (or a second link) does not welcome twice.
    let _ = app.browser().html(path).await;

    let mails = sink.wait_delivered(2, Duration::from_secs(5)).await;
    assert_eq!(mails.len(), 2);
    assert_eq!(
        mails[1].header("Subject").as_deref(),
        Some("Welcome to the church auction")
    );
    let paddle: i32 =
        sqlx::query_scalar("SELECT paddle_number FROM users WHERE email = 'ruth@example.org'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(
        mails[1]
            .data
            .contains(&format!("Your paddle number is {paddle}.")),
        "{}",
        mails[1].data
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.delivered().len(), 2);
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn staff_see_the_queue_and_send_a_failed_one_again(db: PgPool) {
    let sink = SmtpSink::start().await;
    sink.script([Verdict::Refuse("554 5.7.1 mailbox full forever")]);
    let app = app_with_sink(db, &sink, 1).await;
    let ann_id = app.create_user("ann@example.org", &[Role::Bidder]).await;
    sqlx::query("UPDATE users SET name = 'Ann Smith' WHERE id = $1")
        .bind(ann_id)
        .execute(&app.db)
        .await
        .unwrap();
    let id = queue_custom(&app.db, ann_id, "Hello", "Body").await;
    wait_status(&app.db, id, "failed").await;

    let ann = app.log_in("ann@example.org").await;
    let (status, _) = ann.html("/manage/notifications").await;
    assert!(status == 403 || status.is_redirection(), "{status}");
    crate::helpers::assert_error(
        ann.post(&format!("/api/notifications/{id}/retry"), json!({}))
            .await,
        403,
        "forbidden",
    )
    .await;

    let manager = app.login_as("manager@example.org", &[Role::Manager]).await;
    let (status, page) = manager.html("/manage/notifications").await;
    assert_eq!(status, 200);
    assert!(page.contains("mailbox full forever"), "{page}");
    assert!(
        page.contains("Could not be sent: <strong>1</strong>"),
        "{page}"
    );
    assert!(
        !page.contains("ann@example.org"),
        "staff see the name and paddle, not the address"
    );

    let (status, location, _) = manager
        .submit_form(&format!("/manage/notifications/{id}/retry"), &[])
        .await;
    assert_eq!(
        (status.as_u16(), location.as_str()),
        (303, "/manage/notifications")
    );
    let row = wait_status(&app.db, id, "sent").await;
    assert_eq!(row.attempts, 1, "a fresh count of attempts");
    assert_eq!(sink.delivered().len(), 1);
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'notification.retried' AND entity_id = $1",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(audited, 1);
    // A sent one is not sent again.
    crate::helpers::assert_error(
        manager
            .post(&format!("/api/notifications/{id}/retry"), json!({}))
            .await,
        409,
        "not_retryable",
    )
    .await;
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn text_messages_go_through_the_sms_provider_retried_and_refused_like_mail(db: PgPool) {
    let api = crate::helpers::FakeSmsApi::start().await;
    api.script([503, 201, 400]);
    let sink = SmtpSink::start().await;
    let (smtp, sms_url) = (sink.url(), api.url.clone());
    let app = TestApp::builder()
        .with_config(|c| {
            c.smtp_url = Some(smtp);
            c.notify.workers = 1;
            c.notify.poll = Duration::from_millis(20);
            c.notify.retry_base = Duration::from_millis(20);
            c.sms = Some(auuction::config::SmsConfig {
                api_url: sms_url,
                account: "AC123".into(),
                token: "secret-token".into(),
                from: "+15550000000".into(),
            });
        })
        .spawn(db)
        .await;
    let ann_id = app.create_user("ann@example.org", &[Role::Bidder]).await;
    let bob_id = app.create_user("bob@example.org", &[Role::Bidder]).await;
    sqlx::query("UPDATE users SET phone = '+15551234567', pref_sms = true WHERE id = $1")
        .bind(ann_id)
        .execute(&app.db)
        .await
        .unwrap();
    let admin = app.login_as("admin@example.org", &[Role::Admin]).await;
    let send = |user: i64| {
        let admin = &admin;
        async move {
            let r = admin
                .post(
                    "/api/notifications/test",
                    json!({ "userId": format!("u_{user}"), "channel": "sms" }),
                )
                .await;
            assert_eq!(r.status(), 202);
            r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
        }
    };

    // The provider's 503 is retried; its 400 (a number it refuses) is final.
    let first = send(ann_id).await;
    let row = wait_status(&app.db, first, "sent").await;
    assert_eq!(row.attempts, 2);
    let second = send(ann_id).await;
    let row = wait_status(&app.db, second, "failed").await;
    assert!(row.last_error.unwrap().contains("400"));
    // Bob has no phone: nothing is sent to him.
    let third = send(bob_id).await;
    let row = wait_status(&app.db, third, "skipped").await;
    assert_eq!(row.last_error.as_deref(), Some("no phone number"));

    let got = api.received();
    assert_eq!(got.len(), 3, "{got:?}");
    let sent = &got[1];
    assert_eq!(sent.account, "AC123");
    use base64::Engine as _;
    let expected_auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("AC123:secret-token")
    );
    assert_eq!(sent.authorization, expected_auth);
    assert_eq!(sent.field("To"), Some("+15551234567"));
    assert_eq!(sent.field("From"), Some("+15550000000"));
    assert!(sent
        .field("Body")
        .unwrap()
        .starts_with("Church auction: A test message from the auction."));
    assert!(sink.received().is_empty(), "no email for a text message");
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn a_row_whose_worker_died_on_every_attempt_ends_failed(db: PgPool) {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let app = TestApp::builder()
        .with_config(|c| {
            c.smtp_url = Some(url);
            c.notify.max_attempts = 3;
        })
        .spawn(db)
        .await;
    let ann = app.create_user("ann@example.org", &[Role::Bidder]).await;
    let id = queue_custom(&app.db, ann, "Hello", "Body").await;
    // Claimed three times, each claim's worker gone before it finished.
    sqlx::query(
        "UPDATE notifications SET status = 'sending', attempts = 3, lease_until = now() - interval '1 second'
          WHERE id = $1",
    )
    .bind(id)
    .execute(&app.db)
    .await
    .unwrap();
    notify::run_once(&app.state).await.unwrap();
    let row = row(&app.db, id).await;
    assert_eq!(row.status, "failed");
    assert!(
        row.last_error
            .as_deref()
            .unwrap()
            .contains("the worker sending it stopped"),
        "{row:?}"
    );
    assert!(sink.received().is_empty());
}

/// Someone for whom email is hard asks to be phoned (API) or written to (account page);
/// each needs what staff need to do it; managers see them, with what the system emailed
/// them lately, on one list; bidders may not.
#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn people_who_ask_to_be_phoned_or_written_to_are_listed_for_staff(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let ruth = app.login_as("ruth@example.org", &[Role::Bidder]).await;
    // A phone call needs a number; an unknown way is refused by name.
    let r = ruth
        .put("/api/users/me", json!({ "alternateContact": "phoneCall" }))
        .await;
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "validation_failed");
    assert_eq!(body["field"], "phone");
    let r = ruth
        .put(
            "/api/users/me",
            json!({ "alternateContact": "carrierPigeon" }),
        )
        .await;
    assert_eq!(r.status(), 422);
    let r = ruth
        .put(
            "/api/users/me",
            json!({ "phone": "555 010 2000", "alternateContact": "phoneCall" }),
        )
        .await;
    assert_eq!(r.status(), 200);
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["alternateContact"], "phoneCall");

    // Walt chooses a printed letter on the account page, with his address.
    let walt = app.login_as("walt@example.org", &[Role::Bidder]).await;
    let (status, _, _) = walt
        .submit_form(
            "/account",
            &[
                ("name", "Walt Whitby"),
                ("address", "12 Church Lane\nSpringfield"),
                ("pref_email", "on"),
                ("alternate_contact", "printed_mail"),
            ],
        )
        .await;
    assert_eq!(status, 200);
    let (_, html) = walt.html("/account").await;
    assert!(html.contains(r#"value="printed_mail" checked"#), "{html}");
    // Someone content with email is not on the list.
    app.login_as("emma@example.org", &[Role::Bidder]).await;

    // Ruth won something: the list says so, so the caller can tell her.
    let ruth_id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE email = 'ruth@example.org'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO notifications (user_id, channel, type, template_key, status)
         VALUES ($1, 'email', 'win', 'win', 'sent')",
    )
    .bind(ruth_id)
    .execute(&app.db)
    .await
    .unwrap();

    let (status, _) = ruth.html("/manage/contacts").await;
    assert_eq!(status, 403, "bidders may not see who asked to be phoned");
    let manager = app.login_as("manager@example.org", &[Role::Manager]).await;
    let (status, html) = manager.html("/manage/contacts").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("555 010 2000") && html.contains("Phone call"),
        "{html}"
    );
    assert!(
        html.contains("12 Church Lane") && html.contains("Printed letter"),
        "{html}"
    );
    assert!(html.contains("You won"), "what Ruth was emailed: {html}");
    assert!(!html.contains("emma@example.org") && !html.contains(">Emma"));
}
