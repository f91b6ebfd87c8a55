//! Users: accounts, roles, profiles.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgExecutor, PgPool};

use crate::domain::{Roles, UserId};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub phone: Option<String>,
    pub address: Option<String>,
    pub household: Option<String>,
    pub roles: Vec<String>,
    pub pref_email: bool,
    pub pref_sms: bool,
    /// Optional notification types turned off (`store::notifications::OPTIONAL_TYPES`).
    pub muted_notifications: Vec<String>,
    /// `none`, `phone_call` or `printed_mail`: how to reach someone for whom email is hard.
    pub alternate_contact: String,
    pub password_hash: String,
    pub email_verified_at: Option<DateTime<Utc>>,
    pub paddle_number: i32,
    pub created_at: DateTime<Utc>,
}

impl UserRow {
    pub fn user_id(&self) -> UserId {
        UserId(self.id)
    }
    pub fn roles(&self) -> Roles {
        Roles::from_strings(&self.roles)
    }
    pub fn verified(&self) -> bool {
        self.email_verified_at.is_some()
    }
}

/// The full account view: the owner and admins see this, nobody else.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub phone: Option<String>,
    pub address: Option<String>,
    pub household: Option<String>,
    pub preferences: Preferences,
    /// Each optional notification type (`outbid`, `reoffer_announcement`): on or off.
    pub notifications: std::collections::BTreeMap<String, bool>,
    /// `none`, `phoneCall` or `printedMail`.
    pub alternate_contact: &'static str,
    pub roles: Vec<String>,
    pub verified: bool,
    pub paddle_number: i32,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Preferences {
    pub email: bool,
    pub sms: bool,
}

impl From<&UserRow> for AccountView {
    fn from(u: &UserRow) -> AccountView {
        AccountView {
            id: u.user_id(),
            email: u.email.clone(),
            name: u.name.clone(),
            phone: u.phone.clone(),
            address: u.address.clone(),
            household: u.household.clone(),
            preferences: Preferences {
                email: u.pref_email,
                sms: u.pref_sms,
            },
            notifications: crate::store::notifications::OPTIONAL_TYPES
                .iter()
                .map(|t| (t.to_string(), !u.muted_notifications.iter().any(|m| m == t)))
                .collect(),
            alternate_contact: AlternateContact::from_stored(&u.alternate_contact).api_name(),
            roles: u.roles().as_strings(),
            verified: u.verified(),
            paddle_number: u.paddle_number,
            created_at: u.created_at,
        }
    }
}

const COLUMNS: &str = "id, email, name, phone, address, household, roles, pref_email, pref_sms, muted_notifications, \
                       alternate_contact, password_hash, email_verified_at, paddle_number, created_at";

pub struct NewUser<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub password_hash: &'a str,
    pub roles: &'a Roles,
    pub preferences: Preferences,
    pub verified: bool,
}

/// Inserts a user. A taken email comes back as `Ok(None)`, not as an error.
pub async fn insert(db: impl PgExecutor<'_>, new: NewUser<'_>) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as(&format!(
        "INSERT INTO users (email, name, password_hash, roles, pref_email, pref_sms, email_verified_at)
         VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $7 THEN now() END)
         ON CONFLICT (email) DO NOTHING
         RETURNING {COLUMNS}"
    ))
    .bind(new.email)
    .bind(new.name)
    .bind(new.password_hash)
    .bind(new.roles.as_strings())
    .bind(new.preferences.email)
    .bind(new.preferences.sms)
    .bind(new.verified)
    .fetch_optional(db)
    .await
}

pub async fn by_id(db: impl PgExecutor<'_>, id: UserId) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
        .bind(id.0)
        .fetch_optional(db)
        .await
}

/// Locks the row for the rest of the transaction (role changes read before they write).
pub async fn by_id_for_update(
    db: impl PgExecutor<'_>,
    id: UserId,
) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM users WHERE id = $1 FOR UPDATE"
    ))
    .bind(id.0)
    .fetch_optional(db)
    .await
}

pub async fn by_email(db: impl PgExecutor<'_>, email: &str) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE email = $1"))
        .bind(email)
        .fetch_optional(db)
        .await
}

/// Admin search by name, email or paddle number; newest first.
pub async fn search(
    db: &PgPool,
    query: Option<&str>,
    limit: i64,
    offset: i64,
) -> sqlx::Result<(Vec<UserRow>, i64)> {
    let pattern = query.map(str::trim).filter(|q| !q.is_empty()).map(|q| {
        format!(
            "%{}%",
            q.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        )
    });
    let paddle: Option<i32> = query.and_then(|q| q.trim().parse().ok());
    let filter = "($1::text IS NULL OR name ILIKE $1 OR email ILIKE $1 OR paddle_number = $2)";
    let rows = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM users WHERE {filter} ORDER BY id DESC LIMIT $3 OFFSET $4"
    ))
    .bind(&pattern)
    .bind(paddle)
    .bind(limit)
    .bind(offset)
    .fetch_all(db)
    .await?;
    let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM users WHERE {filter}"))
        .bind(&pattern)
        .bind(paddle)
        .fetch_one(db)
        .await?;
    Ok((rows, total))
}

pub struct ProfileUpdate {
    pub name: String,
    pub phone: Option<String>,
    pub address: Option<String>,
    pub household: Option<String>,
    pub preferences: Preferences,
    pub muted_notifications: Vec<String>,
    pub alternate_contact: AlternateContact,
}

/// How to reach someone for whom email is hard, besides what they read on the site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlternateContact {
    /// Email (and text messages, if chosen) are enough.
    None,
    PhoneCall,
    PrintedMail,
}

impl AlternateContact {
    pub const ALL: [AlternateContact; 3] = [
        AlternateContact::None,
        AlternateContact::PhoneCall,
        AlternateContact::PrintedMail,
    ];

    /// The column's value.
    pub fn stored(self) -> &'static str {
        match self {
            AlternateContact::None => "none",
            AlternateContact::PhoneCall => "phone_call",
            AlternateContact::PrintedMail => "printed_mail",
        }
    }

    /// The API's (camelCase) name.
    pub fn api_name(self) -> &'static str {
        match self {
            AlternateContact::None => "none",
            AlternateContact::PhoneCall => "phoneCall",
            AlternateContact::PrintedMail => "printedMail",
        }
    }

    pub fn from_stored(value: &str) -> AlternateContact {
        Self::ALL
            .into_iter()
            .find(|c| c.stored() == value)
            .unwrap_or(AlternateContact::None)
    }

    /// From the API's name or the column's (the account form posts the column's).
    pub fn parse(value: &str) -> Option<AlternateContact> {
        Self::ALL
            .into_iter()
            .find(|c| c.api_name() == value || c.stored() == value)
    }
}

pub async fn update_profile(
    db: impl PgExecutor<'_>,
    id: UserId,
    p: &ProfileUpdate,
) -> sqlx::Result<UserRow> {
    sqlx::query_as(&format!(
        "UPDATE users SET name = $2, phone = $3, address = $4, household = $5,
                pref_email = $6, pref_sms = $7, muted_notifications = $8, alternate_contact = $9,
                updated_at = now()
          WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id.0)
    .bind(&p.name)
    .bind(&p.phone)
    .bind(&p.address)
    .bind(&p.household)
    .bind(p.preferences.email)
    .bind(p.preferences.sms)
    .bind(&p.muted_notifications)
    .bind(p.alternate_contact.stored())
    .fetch_one(db)
    .await
}

pub async fn set_roles(
    db: impl PgExecutor<'_>,
    id: UserId,
    roles: &Roles,
) -> sqlx::Result<UserRow> {
    sqlx::query_as(&format!(
        "UPDATE users SET roles = $2, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id.0)
    .bind(roles.as_strings())
    .fetch_one(db)
    .await
}

pub async fn set_password(db: impl PgExecutor<'_>, id: UserId, hash: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1")
        .bind(id.0)
        .bind(hash)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn mark_verified(db: impl PgExecutor<'_>, id: UserId) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET email_verified_at = COALESCE(email_verified_at, now()), updated_at = now() WHERE id = $1")
        .bind(id.0)
        .execute(db)
        .await?;
    Ok(())
}

/// Someone who asked to be phoned or written to, and where.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AlternateContactRow {
    pub id: i64,
    pub name: String,
    pub paddle_number: i32,
    pub alternate_contact: String,
    pub phone: Option<String>,
    pub address: Option<String>,
}

/// Everyone who asked to be phoned or sent printed letters, by name.
pub async fn with_alternate_contact(db: &PgPool) -> sqlx::Result<Vec<AlternateContactRow>> {
    sqlx::query_as(
        "SELECT id, name, paddle_number, alternate_contact, phone, address FROM users
          WHERE alternate_contact <> 'none' ORDER BY lower(name), id",
    )
    .fetch_all(db)
    .await
}
