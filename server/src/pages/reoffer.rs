//! `/donor/items/{id}/reoffer`: the donor's settings for selling what is left after bidding
//! at a fixed price (spec 5.2). Reads and writes through `services::reoffer`, so the
//! defaults, the quantity cap and the lock once the reoffer opens are the API's.

use axum::{
    extract::Path,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    routing::get,
    Router,
};
use minijinja::context;
use serde::Deserialize;

use crate::{
    domain::{ItemId, Role},
    error::AppError,
    pages::{checked, donor::donor, donor_form, error::PageError, PageCtx, PageForm},
    services::reoffer::{save_settings, settings, ReofferRequest},
    state::AppState,
    store::items,
};

pub fn router() -> Router<AppState> {
    Router::new().route("/donor/items/{id}/reoffer", get(show).post(save))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ReofferForm {
    participate: Option<String>,
    price: String,
    quantity_override: String,
    notes: String,
}

async fn page(
    ctx: &PageCtx,
    status: StatusCode,
    id: ItemId,
    form: minijinja::Value,
    errors: &donor_form::FieldErrors,
) -> Result<Response, PageError> {
    let user = ctx
        .user
        .as_ref()
        .ok_or_else(|| PageError::from(AppError::unauthenticated()))?;
    let current = settings(&ctx.state, user, id).await?;
    let title = items::by_id(&ctx.state.db, id)
        .await?
        .map(|r| r.title)
        .unwrap_or_default();
    ctx.render_status(
        status,
        "donor/reoffer.html",
        "Reoffer settings",
        context! {
            item => context! { id => id.to_string(), title => title },
            terms => context! {
                participate => current.terms.participate,
                price => current.terms.price.to_string(),
                quantity => current.terms.quantity_effective,
            },
            form => form, errors => minijinja::Value::from_serialize(errors),
        },
    )
}

async fn show(ctx: PageCtx, Path(id): Path<String>) -> Result<Response, PageError> {
    let user = donor!(ctx);
    let id: ItemId = id
        .parse()
        .map_err(|_| PageError::from(AppError::not_found("Item")))?;
    let saved = settings(&ctx.state, user, id).await?;
    let form = context! {
        participate => saved.terms.participate,
        price => saved.price_set.map(|p| p.to_string()),
        quantity_override => saved.quantity_override,
        notes => saved.notes,
    };
    page(
        &ctx,
        StatusCode::OK,
        id,
        form,
        &donor_form::FieldErrors::new(),
    )
    .await
}

async fn save(
    ctx: PageCtx,
    Path(id): Path<String>,
    PageForm(form): PageForm<ReofferForm>,
) -> Result<Response, PageError> {
    let user = donor!(ctx);
    let id: ItemId = id
        .parse()
        .map_err(|_| PageError::from(AppError::not_found("Item")))?;
    let mut errors = donor_form::FieldErrors::new();
    let price = donor_form::money("price", &form.price, &mut errors);
    let quantity_override = match form.quantity_override.trim() {
        "" => None,
        q => q.parse::<i64>().ok().or_else(|| {
            errors.insert("quantityOverride", "Please enter a whole number.".into());
            None
        }),
    };
    let echo = context! {
        participate => checked(&form.participate), price => &form.price,
        quantity_override => &form.quantity_override, notes => &form.notes,
    };
    if !errors.is_empty() {
        return page(&ctx, StatusCode::UNPROCESSABLE_ENTITY, id, echo, &errors).await;
    }
    let request = ReofferRequest {
        participate: checked(&form.participate),
        price,
        quantity_override,
        notes: Some(form.notes.clone()).filter(|n| !n.trim().is_empty()),
    };
    match save_settings(&ctx.state, user, id, request).await {
        Ok(_) => {
            ctx.set_flash("Your reoffer settings are saved.").await;
            Ok(Redirect::to(&format!("/donor/items/{id}/reoffer")).into_response())
        }
        Err(e)
            if e.status.is_client_error()
                && e.status != StatusCode::NOT_FOUND
                && e.status != StatusCode::FORBIDDEN =>
        {
            errors.insert(e.field.unwrap_or("form"), e.message.to_string());
            page(&ctx, e.status, id, echo, &errors).await
        }
        Err(e) => Err(e.into()),
    }
}
