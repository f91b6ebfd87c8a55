//! Accounts as people change them: one's own profile, and an admin's role changes
//! (audited). Registration, login and reset are `services::accounts`.

use serde_json::json;

use crate::{
    domain::{validate, Role, Roles, UserId},
    error::{AppError, AppResult},
    session::Actor,
    state::AppState,
    store::{
        audit,
        notifications::OPTIONAL_TYPES,
        users::{self, AlternateContact, Preferences, ProfileUpdate, UserRow},
    },
};

/// A change to one's own profile. `None` keeps a field; for the optional ones,
/// `Some(None)` clears it.
#[derive(Default)]
pub struct ProfileChange<'a> {
    pub name: Option<&'a str>,
    pub phone: Option<Option<&'a str>>,
    pub address: Option<Option<&'a str>>,
    pub household: Option<Option<&'a str>>,
    pub preferences: Option<Preferences>,
    /// Optional notification types switched on (true) or off; the ones not named keep
    /// their setting.
    pub notifications: Option<Vec<(String, bool)>>,
    /// How to reach them if email is hard: `none`, `phoneCall` or `printedMail`.
    pub alternate_contact: Option<&'a str>,
}

/// Applies a patch to the stored profile, validating every field that is given.
fn apply_patch(current: &UserRow, change: ProfileChange<'_>) -> AppResult<ProfileUpdate> {
    let ProfileChange {
        name,
        phone,
        address,
        household,
        preferences,
        notifications,
        alternate_contact,
    } = change;
    let alternate_contact = match alternate_contact {
        Some(value) => AlternateContact::parse(value).ok_or_else(|| {
            AppError::validation("alternateContact must be one of none, phoneCall, printedMail.")
                .on_field("alternateContact")
        })?,
        None => AlternateContact::from_stored(&current.alternate_contact),
    };
    let mut muted = current.muted_notifications.clone();
    for (kind, on) in notifications.unwrap_or_default() {
        if !OPTIONAL_TYPES.contains(&kind.as_str()) {
            return Err(AppError::validation(format!(
                "{kind:?} is not a notification you can turn off; these are: {}.",
                OPTIONAL_TYPES.join(", ")
            ))
            .on_field("notifications"));
        }
        muted.retain(|m| *m != kind);
        if !on {
            muted.push(kind);
        }
    }
    muted.sort();
    Ok(ProfileUpdate {
        name: match name {
            Some(n) => validate::name(n)?,
            None => current.name.clone(),
        },
        phone: match phone {
            Some(p) => validate::phone(p)?,
            None => current.phone.clone(),
        },
        address: match address {
            Some(a) => validate::optional_text("address", a, 500)?,
            None => current.address.clone(),
        },
        household: match household {
            Some(h) => validate::optional_text("household", h, 200)?,
            None => current.household.clone(),
        },
        preferences: preferences.unwrap_or(Preferences {
            email: current.pref_email,
            sms: current.pref_sms,
        }),
        muted_notifications: muted,
        alternate_contact,
    })
}

/// Changes the actor's own profile: every given field validated, and text messages only
/// with a phone number to send them to. The one path for the API and the account page.
pub async fn update_profile(
    state: &AppState,
    actor: &Actor,
    change: ProfileChange<'_>,
) -> AppResult<UserRow> {
    let update = apply_patch(&actor.row, change)?;
    if update.preferences.sms && update.phone.is_none() {
        return Err(AppError::validation("Text messages need a phone number.").on_field("phone"));
    }
    // Staff can only call a number, or post to an address, they have.
    match update.alternate_contact {
        AlternateContact::PhoneCall if update.phone.is_none() => {
            return Err(
                AppError::validation("To be phoned, please give your phone number.")
                    .on_field("phone"),
            );
        }
        AlternateContact::PrintedMail if update.address.is_none() => {
            return Err(AppError::validation(
                "To get printed letters, please give your mailing address.",
            )
            .on_field("address"));
        }
        _ => {}
    }
    Ok(users::update_profile(&state.db, actor.id(), &update).await?)
}

/// Changes a user's roles and writes the audit entry in the same transaction.
pub async fn change_roles(
    state: &AppState,
    actor: &Actor,
    target: UserId,
    names: &[String],
) -> AppResult<UserRow> {
    actor.require(&[Role::Admin])?;
    let mut roles = Vec::new();
    for name in names {
        roles.push(Role::parse(name).ok_or_else(|| AppError {
            field: Some("roles"),
            ..AppError::validation(format!(
                "Unknown role {name:?}; roles are bidder, donor, manager, admin, finance."
            ))
        })?);
    }
    let roles = Roles::new(roles);
    if target == actor.id() && !roles.has(Role::Admin) {
        // Otherwise the last admin could lock everyone out of the admin pages.
        return Err(AppError::conflict(
            "cannot_demote_self",
            "You cannot remove your own admin role; ask another admin.",
        ));
    }
    let mut tx = state.db.begin().await?;
    let before = users::by_id_for_update(&mut *tx, target)
        .await?
        .ok_or_else(|| AppError::not_found("User"))?;
    let after = users::set_roles(&mut *tx, target, &roles).await?;
    audit::record(
        &mut *tx,
        Some(actor.id()),
        "user.roles_changed",
        "user",
        Some(target.0),
        Some(json!({ "roles": before.roles().as_strings() })),
        Some(json!({ "roles": after.roles().as_strings() })),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(actor = actor.id().0, target = target.0, roles = ?after.roles, "roles changed");
    Ok(after)
}

/// What `user` owes, for their account page: each win, reoffer purchase and fixed-price
/// signup, oldest first. Only their own: nobody sees another bidder's commitments here.
pub async fn my_commitments(
    state: &AppState,
    user: &Actor,
) -> AppResult<Vec<crate::store::commitments::CommitmentLine>> {
    Ok(crate::store::commitments::of_user(&state.db, user.id().0).await?)
}
