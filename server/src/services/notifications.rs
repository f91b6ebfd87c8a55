//! Notifications as people see and steer them: the unsubscribe link of an optional email
//! (signed, so it works without logging in and only for the person it was sent to), and
//! the list of one's notifications (`GET /api/notifications`). Sending is `crate::notify`.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use crate::{
    config::Config,
    domain::{Role, UserId},
    error::{AppError, AppResult},
    session::Actor,
    state::AppState,
    store::notifications::{self as store, Requeued, OPTIONAL_TYPES},
};

fn signer(config: &Config) -> Hmac<Sha256> {
    // HMAC takes a key of any length.
    Hmac::<Sha256>::new_from_slice(config.secret_key.as_bytes()).expect("any key length")
}

fn signed_text(user: i64, kind: &str) -> String {
    format!("unsubscribe:{user}:{kind}")
}

/// The signature of "stop `kind` emails for `user`", hex.
pub fn unsubscribe_signature(config: &Config, user: i64, kind: &str) -> String {
    let mut mac = signer(config);
    mac.update(signed_text(user, kind).as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The link in an optional email that turns that type off (a page asking to confirm).
pub fn unsubscribe_url(config: &Config, user: i64, kind: &str) -> String {
    config.url(&format!(
        "/unsubscribe?user={user}&type={kind}&sig={}",
        unsubscribe_signature(config, user, kind)
    ))
}

/// An optional type in words, for pages: "emails when ...".
pub fn describe(kind: &str) -> &'static str {
    match kind {
        "outbid" => "emails when someone bids more than you",
        "reoffer_announcement" => "emails when leftover items go on sale after bidding",
        _ => "these emails",
    }
}

/// What an unsubscribe link names, once its signature is checked.
#[derive(Debug, Clone)]
pub struct Unsubscribe {
    pub user: i64,
    pub kind: &'static str,
}

/// Checks an unsubscribe link's parts: a known optional type, signed for this user with
/// this server's key. Anything else is one plain refusal (which part was wrong says
/// nothing useful to a stranger).
pub fn check_unsubscribe(
    config: &Config,
    user: i64,
    kind: &str,
    sig: &str,
) -> AppResult<Unsubscribe> {
    let refused = || {
        AppError::bad_request(
            "invalid_link",
            "This unsubscribe link is not valid. You can choose which emails you get on your account page.",
        )
    };
    let kind = OPTIONAL_TYPES
        .iter()
        .find(|t| **t == kind)
        .ok_or_else(refused)?;
    let sig = hex::decode(sig).map_err(|_| refused())?;
    let mut mac = signer(config);
    mac.update(signed_text(user, kind).as_bytes());
    mac.verify_slice(&sig).map_err(|_| refused())?;
    Ok(Unsubscribe { user, kind })
}

/// Turns the link's type off for its user (doing it twice changes nothing).
pub async fn unsubscribe(state: &AppState, link: &Unsubscribe) -> AppResult<()> {
    sqlx::query(
        "UPDATE users SET muted_notifications = array_append(muted_notifications, $2), updated_at = now()
          WHERE id = $1 AND NOT ($2 = ANY(muted_notifications))",
    )
    .bind(link.user)
    .bind(link.kind)
    .execute(&state.db)
    .await?;
    tracing::info!(
        user = link.user,
        kind = link.kind,
        "unsubscribed by email link"
    );
    Ok(())
}

/// `POST /api/notifications/test` (admin): queues a test message (email or text) for the
/// admin, or for `to`, through the outbox like any other; returns its id (its status shows
/// in the list).
pub async fn send_test(
    state: &AppState,
    actor: &Actor,
    to: Option<UserId>,
    channel: &str,
) -> AppResult<i64> {
    actor.require(&[Role::Admin])?;
    if !matches!(channel, "email" | "sms") {
        return Err(AppError::validation("channel must be email or sms.").on_field("channel"));
    }
    let user = to.unwrap_or(actor.id());
    if crate::store::users::by_id(&state.db, user).await?.is_none() {
        return Err(AppError::not_found("User"));
    }
    let id = store::queue_custom(
        &state.db,
        user.0,
        channel,
        "A test message from the auction",
        "This is a test message, sent to check that the auction's emails arrive. There is nothing to do.",
    )
    .await?;
    tracing::info!(
        actor = actor.id().0,
        user = user.0,
        notification = id,
        "test notification queued"
    );
    Ok(id)
}

/// Staff (manager, admin) send a failed, skipped or waiting notification again, now, with a
/// fresh count of attempts; audited.
pub async fn retry_now(state: &AppState, actor: &Actor, id: i64) -> AppResult<()> {
    actor.require(&[Role::Manager, Role::Admin])?;
    let mut tx = state.db.begin().await?;
    match store::requeue_now(&mut *tx, id).await? {
        Requeued::Done => {}
        Requeued::NotRetryable => {
            return Err(AppError::conflict(
                "not_retryable",
                "That notification is being sent or was sent already (or does not exist).",
            ))
        }
        Requeued::Superseded => {
            return Err(AppError::conflict(
                "superseded",
                "A newer outbid notice for the same bidder and item is already waiting.",
            ))
        }
    }
    crate::store::audit::record(
        &mut *tx,
        Some(actor.id()),
        "notification.retried",
        "notification",
        Some(id),
        None,
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The staff's view of the outbox: counts by status, what waits (soonest first), what
/// failed (newest first).
pub struct QueueView {
    pub counts: Vec<(String, i64)>,
    pub waiting: Vec<store::QueueRow>,
    pub failed: Vec<store::QueueRow>,
}

pub async fn queue(state: &AppState, actor: &Actor) -> AppResult<QueueView> {
    actor.require(&[Role::Manager, Role::Admin])?;
    Ok(QueueView {
        counts: store::status_counts(&state.db).await?,
        waiting: store::queue(&state.db, "scheduled", 100).await?,
        failed: store::queue(&state.db, "failed", 100).await?,
    })
}

/// One notification as its owner (or staff) sees it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationView {
    pub id: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub channel: String,
    pub status: String,
    pub payload: serde_json::Value,
    pub scheduled_for: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub attempts: i32,
    pub read_at: Option<DateTime<Utc>>,
    /// Why it failed or was skipped: staff only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// A person's notifications, newest first, and how many are unread.
#[derive(Debug, Serialize)]
pub struct Inbox {
    pub notifications: Vec<NotificationView>,
    pub unread: i64,
}

/// The newest notifications of the actor, or (staff: manager, admin) of `of`.
pub async fn list(
    state: &AppState,
    actor: &Actor,
    of: Option<UserId>,
    limit: i64,
) -> AppResult<Inbox> {
    let staff = actor.require(&[Role::Manager, Role::Admin]).is_ok();
    let user = match of {
        Some(other) if other != actor.id() => {
            actor.require(&[Role::Manager, Role::Admin])?;
            other
        }
        _ => actor.id(),
    };
    if !(1..=200).contains(&limit) {
        return Err(AppError::bad_request(
            "invalid_query",
            "limit must be 1 to 200.",
        ));
    }
    let rows = store::of_user(&state.db, user.0, limit).await?;
    let unread = store::unread(&state.db, user.0).await?;
    let notifications = rows
        .into_iter()
        .map(|r| NotificationView {
            id: r.id,
            kind: r.kind,
            channel: r.channel,
            status: r.status,
            payload: r.payload,
            scheduled_for: r.scheduled_for,
            sent_at: r.sent_at,
            attempts: r.attempts,
            read_at: r.read_at,
            last_error: if staff { r.last_error } else { None },
        })
        .collect();
    Ok(Inbox {
        notifications,
        unread,
    })
}

/// Marks the actor's own notifications read (`ids`, or all); returns how many stay unread.
pub async fn mark_read(state: &AppState, actor: &Actor, ids: Option<&[i64]>) -> AppResult<i64> {
    store::mark_read(&state.db, actor.id().0, ids).await?;
    Ok(store::unread(&state.db, actor.id().0).await?)
}

/// Someone who asked to be phoned or written to, with what the system told them by email
/// lately: what staff should tell them another way.
pub struct AlternateContactView {
    pub person: crate::store::users::AlternateContactRow,
    /// (type, created) of their notifications of the last 30 days, newest first.
    pub recent: Vec<(String, chrono::DateTime<chrono::Utc>)>,
}

/// Everyone who asked to be phoned or sent letters (managers and admins).
pub async fn alternate_contacts(
    state: &AppState,
    actor: &Actor,
) -> AppResult<Vec<AlternateContactView>> {
    actor.require(&[Role::Manager, Role::Admin])?;
    let people = crate::store::users::with_alternate_contact(&state.db).await?;
    let ids: Vec<i64> = people.iter().map(|p| p.id).collect();
    let since = state.now() - chrono::Duration::days(30);
    let recent = store::recent_for_users(&state.db, &ids, since).await?;
    Ok(people
        .into_iter()
        .map(|person| AlternateContactView {
            recent: recent
                .iter()
                .filter(|(user, ..)| *user == person.id)
                .map(|(_, kind, at, _)| (kind.clone(), *at))
                .collect(),
            person,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_works_only_for_its_user_and_type() {
        let config = Config::for_tests("postgres://unused", &std::env::temp_dir());
        let sig = unsubscribe_signature(&config, 12, "outbid");
        assert!(check_unsubscribe(&config, 12, "outbid", &sig).is_ok());
        assert!(check_unsubscribe(&config, 13, "outbid", &sig).is_err());
        assert!(check_unsubscribe(&config, 12, "reoffer_announcement", &sig).is_err());
        assert!(check_unsubscribe(
            &config,
            12,
            "win",
            &unsubscribe_signature(&config, 12, "win")
        )
        .is_err());
        assert!(check_unsubscribe(&config, 12, "outbid", "zz").is_err());
        let mut other = config.clone();
        other.secret_key = "another-secret-another-secret-another-secret".into();
        assert!(check_unsubscribe(&other, 12, "outbid", &sig).is_err());
    }
}
