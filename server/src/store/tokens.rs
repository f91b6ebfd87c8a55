//! One-time email tokens (verification, password reset). The raw token only ever exists in
//! the email; the table keeps its SHA-256.

use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgExecutor;

use crate::domain::UserId;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    Verify,
    Reset,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Verify => "verify",
            Purpose::Reset => "reset",
        }
    }

    /// Verification links stay valid two days (people read email late); reset links one hour.
    pub fn lifetime(self) -> Duration {
        match self {
            Purpose::Verify => Duration::hours(48),
            Purpose::Reset => Duration::hours(1),
        }
    }
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// A new random token (256 bits, URL-safe) for `user`; returns the raw token for the email.
pub async fn issue(
    db: impl PgExecutor<'_>,
    user: UserId,
    purpose: Purpose,
    now: DateTime<Utc>,
) -> sqlx::Result<String> {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    sqlx::query("INSERT INTO email_tokens (user_id, purpose, token_hash, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(user.0)
        .bind(purpose.as_str())
        .bind(hash(&token))
        .bind(now + purpose.lifetime())
        .execute(db)
        .await?;
    Ok(token)
}

#[derive(Debug, PartialEq, Eq)]
pub enum Redeemed {
    Ok(UserId),
    Unknown,
    Expired,
    AlreadyUsed,
}

/// Marks the token used and returns its user. A token works once, before it expires.
pub async fn redeem(
    db: impl PgExecutor<'_>,
    token: &str,
    purpose: Purpose,
    now: DateTime<Utc>,
) -> sqlx::Result<Redeemed> {
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(Redeemed::Unknown);
    }
    // One statement: the UPDATE only succeeds for an unused, unexpired token, so two
    // concurrent redemptions cannot both succeed.
    // (user id, used at, expires at, redeemed now)
    type Found = (i64, Option<DateTime<Utc>>, DateTime<Utc>, bool);
    let row: Option<Found> = sqlx::query_as(
        "WITH t AS (SELECT id, user_id, used_at, expires_at FROM email_tokens
                     WHERE token_hash = $1 AND purpose = $2 FOR UPDATE),
              u AS (UPDATE email_tokens e SET used_at = $3 FROM t
                     WHERE e.id = t.id AND t.used_at IS NULL AND t.expires_at > $3
                     RETURNING e.id)
         SELECT t.user_id, t.used_at, t.expires_at, EXISTS (SELECT 1 FROM u) FROM t",
    )
    .bind(hash(token))
    .bind(purpose.as_str())
    .bind(now)
    .fetch_optional(db)
    .await?;
    Ok(match row {
        None => Redeemed::Unknown,
        Some((user, _, _, true)) => Redeemed::Ok(UserId(user)),
        Some((_, Some(_), _, false)) => Redeemed::AlreadyUsed,
        Some((_, None, _, false)) => Redeemed::Expired,
    })
}
