//! The notification outbox's queries: claiming due rows for a worker (with a lease, the
//! outbid quiet window applied), and recording how each send ended.
//!
//! A worker owns a row from its claim (`status = 'sending'`, `lease_until` in the future)
//! until it records the outcome. Every outcome is written only where the row is still the
//! worker's claim (`status = 'sending'` and the `attempts` it claimed): a worker that was
//! too slow and lost its lease to another cannot overwrite the other's result.
//!
//! Time is the database's (`now()`) throughout: the rows' `scheduled_for` is written by its
//! default wherever a notification is queued, so due-ness, leases, backoff and the quiet
//! window are all measured on that one clock, whatever the clock of the node claiming.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;

/// The notification types a person may turn off (`users.muted_notifications`, whose CHECK
/// lists the same). The others concern what they won, bought or asked for, and always go.
pub const OPTIONAL_TYPES: [&str; 2] = ["outbid", "reoffer_announcement"];

/// A row claimed for sending, with what the mail needs of its recipient.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub id: i64,
    pub user_id: i64,
    pub channel: String,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub template_key: String,
    pub payload: Value,
    pub related_entity_type: Option<String>,
    pub related_entity_id: Option<i64>,
    /// This claim's attempt number (1 for the first): the fence for recording its outcome.
    pub attempts: i32,
    pub message_id: String,
    pub email: String,
    pub name: String,
    pub pref_email: bool,
    pub pref_sms: bool,
    pub phone: Option<String>,
    /// The optional types this person turned off.
    pub muted_notifications: Vec<String>,
}

fn interval(d: Duration) -> sqlx::postgres::types::PgInterval {
    sqlx::postgres::types::PgInterval {
        months: 0,
        days: 0,
        microseconds: d.as_micros().min(i64::MAX as u128) as i64,
    }
}

/// Claims up to `batch` rows: scheduled ones that are due, and claimed ones whose worker's
/// lease has run out (it died or hung). `FOR UPDATE SKIP LOCKED`: workers claiming at the
/// same moment take different rows, and none waits for another.
///
/// Outbid rows are held to the quiet window: a due one whose bidder got (or is getting) an
/// outbid mail for the same item within `outbid_quiet` is moved to the window's end instead
/// of claimed. It stays `scheduled`, so the bid journal keeps folding later outbids (their
/// prices) into it until then.
pub async fn claim(
    db: &PgPool,
    batch: i64,
    lease: Duration,
    outbid_quiet: Duration,
    max_attempts: i32,
    message_id_domain: &str,
) -> sqlx::Result<Vec<Claimed>> {
    let mut tx = db.begin().await?;
    // One instant for the whole claim (now() is the transaction's start).
    let now: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&mut *tx)
        .await?;
    let due: Vec<(i64, String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT id, type, user_id, related_entity_id FROM notifications
          WHERE status = 'scheduled' AND scheduled_for <= $1
          ORDER BY scheduled_for
          LIMIT $2
          FOR UPDATE SKIP LOCKED",
    )
    .bind(now)
    .bind(batch)
    .fetch_all(&mut *tx)
    .await?;
    let abandoned: Vec<(i64, i32)> = sqlx::query_as(
        "SELECT id, attempts FROM notifications
          WHERE status = 'sending' AND lease_until <= $1
          ORDER BY lease_until
          LIMIT $2
          FOR UPDATE SKIP LOCKED",
    )
    .bind(now)
    .bind(batch)
    .fetch_all(&mut *tx)
    .await?;
    // A row whose every attempt ended with its worker gone (a message that kills the
    // worker, a server that hangs) is not taken up forever: it fails like one refused.
    let spent: Vec<i64> = abandoned
        .iter()
        .filter(|(_, attempts)| *attempts >= max_attempts)
        .map(|(id, _)| *id)
        .collect();
    let abandoned = abandoned
        .into_iter()
        .filter(|(_, attempts)| *attempts < max_attempts);
    if !spent.is_empty() {
        sqlx::query(
            "UPDATE notifications
                SET status = 'failed', lease_until = NULL,
                    last_error = 'gave up after ' || attempts || ' attempts: the worker sending it stopped each time'
              WHERE id = ANY($1)",
        )
        .bind(&spent)
        .execute(&mut *tx)
        .await?;
    }

    // The quiet window: when each due outbid row may go, if not now.
    let (mut ids, mut users, mut items) = (Vec::new(), Vec::new(), Vec::new());
    for (id, kind, user, item) in &due {
        if kind == "outbid" {
            if let Some(item) = item {
                ids.push(*id);
                users.push(*user);
                items.push(*item);
            }
        }
    }
    let held: Vec<(i64, DateTime<Utc>)> = if ids.is_empty() {
        Vec::new()
    } else {
        sqlx::query_as(
            "SELECT u.id, max(COALESCE(o.sent_at, $4)) + $5
               FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[]) AS u(id, user_id, item_id)
               JOIN notifications o
                 ON o.type = 'outbid' AND o.status IN ('sending', 'sent')
                AND o.user_id = u.user_id AND o.related_entity_id = u.item_id
                AND o.id <> u.id
                AND (o.status = 'sending' OR o.sent_at > $4 - $5)
              GROUP BY u.id",
        )
        .bind(&ids)
        .bind(&users)
        .bind(&items)
        .bind(now)
        .bind(interval(outbid_quiet))
        .fetch_all(&mut *tx)
        .await?
    };
    if !held.is_empty() {
        let (held_ids, until): (Vec<i64>, Vec<DateTime<Utc>>) = held.iter().cloned().unzip();
        sqlx::query(
            "UPDATE notifications n SET scheduled_for = h.until
               FROM UNNEST($1::bigint[], $2::timestamptz[]) AS h(id, until)
              WHERE n.id = h.id",
        )
        .bind(&held_ids)
        .bind(&until)
        .execute(&mut *tx)
        .await?;
    }
    let mut take: Vec<i64> = due
        .iter()
        .map(|(id, ..)| *id)
        .filter(|id| !held.iter().any(|(h, _)| h == id))
        .collect();
    take.extend(abandoned.map(|(id, _)| id));
    if take.is_empty() {
        tx.commit().await?;
        return Ok(Vec::new());
    }
    // The Message-ID names the row and its creation time (so two databases, a restored
    // copy, never reuse one), and is kept for every later attempt.
    let claimed = sqlx::query_as(
        "UPDATE notifications n
            SET status = 'sending', lease_until = $2 + $3, attempts = n.attempts + 1,
                message_id = COALESCE(n.message_id,
                    '<notification-' || n.id || '.' || floor(extract(epoch FROM n.created_at))::bigint
                    || '@' || $4 || '>')
           FROM users u
          WHERE n.id = ANY($1) AND u.id = n.user_id
      RETURNING n.id, n.user_id, n.channel::text AS channel, n.type::text AS type, n.template_key,
                n.payload, n.related_entity_type, n.related_entity_id, n.attempts, n.message_id,
                u.email, u.name, u.pref_email, u.pref_sms, u.phone, u.muted_notifications",
    )
    .bind(&take)
    .bind(now)
    .bind(interval(lease))
    .bind(message_id_domain)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(claimed)
}

/// Records the sends that succeeded, in one statement. Returns how many rows were still
/// this worker's claim.
pub async fn mark_sent(db: &PgPool, sent: &[(i64, i32)]) -> sqlx::Result<u64> {
    if sent.is_empty() {
        return Ok(0);
    }
    let (ids, attempts): (Vec<i64>, Vec<i32>) = sent.iter().cloned().unzip();
    Ok(sqlx::query(
        "UPDATE notifications n
            SET status = 'sent', sent_at = now(), lease_until = NULL, last_error = NULL
           FROM UNNEST($1::bigint[], $2::int[]) AS d(id, attempts)
          WHERE n.id = d.id AND n.attempts = d.attempts AND n.status = 'sending'",
    )
    .bind(&ids)
    .bind(&attempts)
    .execute(db)
    .await?
    .rows_affected())
}

/// Ends a row without another attempt: `failed` or `skipped`, with the reason.
pub async fn finish(
    db: &PgPool,
    id: i64,
    attempts: i32,
    status: &str,
    reason: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE notifications
            SET status = $3, last_error = $4, lease_until = NULL
          WHERE id = $1 AND attempts = $2 AND status = 'sending'",
    )
    .bind(id)
    .bind(attempts)
    .bind(status)
    .bind(reason)
    .execute(db)
    .await?;
    Ok(())
}

/// Puts a row back in the queue for another attempt `after` from now. An outbid row whose bidder
/// has since been outbid again on the item (a newer row waits) is folded into that one
/// instead: it carries the later price, and one mail is enough.
pub async fn retry_at(
    db: &PgPool,
    id: i64,
    attempts: i32,
    after: Duration,
    reason: &str,
) -> sqlx::Result<()> {
    let requeued = sqlx::query(
        "UPDATE notifications
            SET status = 'scheduled', scheduled_for = now() + $3, last_error = $4, lease_until = NULL
          WHERE id = $1 AND attempts = $2 AND status = 'sending'",
    )
    .bind(id)
    .bind(attempts)
    .bind(interval(after))
    .bind(reason)
    .execute(db)
    .await;
    match requeued {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            finish(
                db,
                id,
                attempts,
                "skipped",
                "folded into a newer outbid notice",
            )
            .await
        }
        Err(e) => Err(e),
    }
}

/// What an item's mail says about it, read once per batch.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ItemFacts {
    pub id: i64,
    pub title: String,
    pub auction_id: i64,
    pub auction_name: String,
    pub current_price: Option<i64>,
    pub leader_id: Option<i64>,
    pub closes_at: Option<DateTime<Utc>>,
    pub closed: bool,
}

pub async fn item_facts(db: &PgPool, items: &[i64]) -> sqlx::Result<Vec<ItemFacts>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_as(
        "SELECT i.id, i.title, i.auction_id, a.name AS auction_name, b.current_price,
                b.leader_id, b.closes_at, (b.closed_at IS NOT NULL OR i.status = 'closed') AS closed
           FROM items i
           JOIN auctions a ON a.id = i.auction_id
           LEFT JOIN item_bidding b ON b.item_id = i.id
          WHERE i.id = ANY($1)",
    )
    .bind(items)
    .fetch_all(db)
    .await
}

/// Auction names by id, for announcements.
pub async fn auction_names(db: &PgPool, auctions: &[i64]) -> sqlx::Result<Vec<(i64, String)>> {
    if auctions.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_as("SELECT id, name FROM auctions WHERE id = ANY($1)")
        .bind(auctions)
        .fetch_all(db)
        .await
}

/// Rows waiting to go out now, and how long the oldest of them has waited (seconds).
pub async fn queue_depth(db: &PgPool) -> sqlx::Result<(i64, f64)> {
    sqlx::query_as(
        "SELECT count(*), COALESCE(extract(epoch FROM now() - min(scheduled_for))::float8, 0)
           FROM notifications
          WHERE status = 'scheduled' AND scheduled_for <= now()",
    )
    .fetch_one(db)
    .await
}

/// A notification row as its owner's list shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NotificationRow {
    pub id: i64,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub channel: String,
    pub status: String,
    pub payload: Value,
    pub scheduled_for: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub read_at: Option<DateTime<Utc>>,
}

/// The newest `limit` notifications of `user`.
pub async fn of_user(db: &PgPool, user: i64, limit: i64) -> sqlx::Result<Vec<NotificationRow>> {
    sqlx::query_as(
        "SELECT id, type::text AS type, channel::text AS channel, status::text AS status, payload,
                scheduled_for, sent_at, attempts, last_error, read_at
           FROM notifications
          WHERE user_id = $1
          ORDER BY created_at DESC, id DESC
          LIMIT $2",
    )
    .bind(user)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Queues the welcome (`registration`) of a newly verified account, once per account.
pub async fn queue_welcome(db: impl sqlx::PgExecutor<'_>, user: i64) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO notifications (user_id, channel, type, template_key, payload, related_entity_type, related_entity_id)
         SELECT u.id, 'email', 'registration', 'registration',
                jsonb_build_object('paddleNumber', u.paddle_number), 'user', u.id
           FROM users u
          WHERE u.id = $1
            AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.user_id = $1 AND n.type = 'registration')",
    )
    .bind(user)
    .execute(db)
    .await?;
    Ok(())
}

/// Queues a `custom` message (a subject and plain-text paragraphs) for `user` on
/// `channel` (`email` or `sms`); its id.
pub async fn queue_custom(
    db: &PgPool,
    user: i64,
    channel: &str,
    subject: &str,
    body: &str,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO notifications (user_id, channel, type, template_key, payload)
         VALUES ($1, $4, 'custom', 'custom', jsonb_build_object('subject', $2::text, 'body', $3::text))
         RETURNING id",
    )
    .bind(user)
    .bind(subject)
    .bind(body)
    .bind(channel)
    .fetch_one(db)
    .await
}

/// How many rows each status holds (and, for `scheduled`, how many are due now).
pub async fn status_counts(db: &PgPool) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as(
        "SELECT CASE WHEN status = 'scheduled' AND scheduled_for <= now() THEN 'due'
                     ELSE status::text END AS status,
                count(*)
           FROM notifications
          GROUP BY 1
          ORDER BY 1",
    )
    .fetch_all(db)
    .await
}

/// A row of the staff's queue page: the person by name and paddle only.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct QueueRow {
    pub id: i64,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub status: String,
    pub name: String,
    pub paddle_number: i32,
    pub scheduled_for: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub attempts: i32,
    pub last_error: Option<String>,
}

/// The newest `limit` rows with `status` (`scheduled`: the soonest due first).
pub async fn queue(db: &PgPool, status: &str, limit: i64) -> sqlx::Result<Vec<QueueRow>> {
    let order = if status == "scheduled" {
        "n.scheduled_for, n.id"
    } else {
        "n.id DESC"
    };
    sqlx::query_as(&format!(
        "SELECT n.id, n.type::text AS type, n.status::text AS status, u.name, u.paddle_number,
                n.scheduled_for, n.sent_at, n.attempts, n.last_error
           FROM notifications n JOIN users u ON u.id = n.user_id
          WHERE n.status = $1
          ORDER BY {order}
          LIMIT $2"
    ))
    .bind(status)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// What "retry now" found.
#[derive(Debug, PartialEq, Eq)]
pub enum Requeued {
    /// Waiting again, due now, with a fresh count of attempts.
    Done,
    /// No such row, or one being sent or already sent: nothing to retry.
    NotRetryable,
    /// An outbid whose bidder has a newer notice waiting for the item.
    Superseded,
}

/// Puts a failed (or skipped, or waiting) row back in the queue, due now.
pub async fn requeue_now(db: impl sqlx::PgExecutor<'_>, id: i64) -> sqlx::Result<Requeued> {
    let done = sqlx::query(
        "UPDATE notifications
            SET status = 'scheduled', scheduled_for = now(), attempts = 0, lease_until = NULL
          WHERE id = $1 AND status IN ('failed', 'skipped', 'scheduled')",
    )
    .bind(id)
    .execute(db)
    .await;
    match done {
        Ok(r) if r.rows_affected() == 1 => Ok(Requeued::Done),
        Ok(_) => Ok(Requeued::NotRetryable),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(Requeued::Superseded),
        Err(e) => Err(e),
    }
}

/// How many of `user`'s notifications are unread (those skipped on purpose never count).
pub async fn unread(db: &PgPool, user: i64) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM notifications
          WHERE user_id = $1 AND read_at IS NULL AND status <> 'skipped'",
    )
    .bind(user)
    .fetch_one(db)
    .await
}

/// Marks `user`'s notifications read: those in `ids`, or all of them (`None`). Another
/// person's ids are ignored.
pub async fn mark_read(db: &PgPool, user: i64, ids: Option<&[i64]>) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "UPDATE notifications SET read_at = now()
          WHERE user_id = $1 AND read_at IS NULL AND ($2::bigint[] IS NULL OR id = ANY($2))",
    )
    .bind(user)
    .bind(ids)
    .execute(db)
    .await?
    .rows_affected())
}

/// What the system told these users lately (`since` on, skipped ones left out), newest
/// first: (user, type, created, status).
pub async fn recent_for_users(
    db: &PgPool,
    users: &[i64],
    since: DateTime<Utc>,
) -> sqlx::Result<Vec<(i64, String, DateTime<Utc>, String)>> {
    sqlx::query_as(
        "SELECT user_id, type, created_at, status FROM notifications
          WHERE user_id = ANY($1) AND created_at >= $2 AND status <> 'skipped'
          ORDER BY created_at DESC, id DESC",
    )
    .bind(users)
    .bind(since)
    .fetch_all(db)
    .await
}
