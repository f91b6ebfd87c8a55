//! Donor pages: my items (`/donor/items`), submit an item or hosted event
//! (`/donor/items/new`), edit it, add and remove photos (`/donor/items/{id}/edit`), submit it for
//! review, and the reoffer settings (`/donor/items/{id}/reoffer`).
//!
//! Every write is a service the API calls too (`services::items::create_item`,
//! `update_item`, `apply_step`, `services::images::add_image`, `remove_image`,
//! `services::events::write_event`, `services::reoffer::save_settings`), so the rules and
//! the audit trail are the same whether a donor uses these pages or a script.

use axum::{
    extract::{multipart::MultipartRejection, DefaultBodyLimit, Multipart, Path},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
    Router,
};
use minijinja::{context, Value};

use crate::{
    domain::{
        catalog::{ItemType, Transition},
        hosted_event::validate_event,
        ids::ImageId,
        ItemId, Role,
    },
    error::AppError,
    media::{read_upload, UPLOAD_BODY_LIMIT},
    pages::{
        catalog::type_label,
        donor_form::{FieldErrors, ItemForm},
        error::PageError,
        PageCtx, PageForm,
    },
    services::{
        catalog::{catalog_page, ListQuery, PER_PAGE_MAX},
        events::write_event,
        images::{add_image, ensure_editable, remove_image},
        item_view::{one_item_view, ItemView, Viewer},
        items::{apply_step, create_item, edit_access, find_visible, update_item},
    },
    state::AppState,
    store::{categories, events},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/donor/items", get(my_items))
        .route("/donor/items/new", get(new_form).post(new_submit))
        .route("/donor/items/{id}/edit", get(edit_form).post(edit_submit))
        .route(
            "/donor/items/{id}/images",
            post(upload).layer(DefaultBodyLimit::max(UPLOAD_BODY_LIMIT)),
        )
        .route(
            "/donor/items/{id}/images/{image_id}/remove",
            post(remove_photo),
        )
        .route("/donor/items/{id}/submit", post(submit))
        .merge(crate::pages::reoffer::router())
}

/// Shorthand: the signed-in donor (admins hold every role), or the login page / a 403.
macro_rules! donor {
    ($ctx:expr) => {
        match $ctx.require_role(&[Role::Donor]) {
            Ok(user) => user,
            Err(denied) => return Ok(denied.into_response()),
        }
    };
}
pub(crate) use donor;

fn parse_id(id: &str) -> Result<ItemId, PageError> {
    id.parse()
        .map_err(|_| PageError::from(AppError::not_found("Item")))
}

async fn my_items(ctx: PageCtx) -> Result<Response, PageError> {
    let user = donor!(ctx);
    let query = ListQuery {
        mine: Some(true),
        per_page: Some(PER_PAGE_MAX),
        sort: Some("newest".into()),
        ..ListQuery::default()
    };
    let page = catalog_page(&ctx.state, Some(user), query).await?;
    let rows: Vec<Value> = page
        .items
        .iter()
        .map(|v| {
            context! {
                id => v.id.to_string(), title => &v.title, kind_label => type_label(v.item_type),
                status => v.status.as_str(), review_note => &v.review_note,
                price => v.opening_bid.to_string(), images => v.images.len(),
                editable => !v.status.is_public() && v.status.as_str() != "approved",
                can_submit => v.status.as_str() == "draft",
            }
        })
        .collect();
    ctx.render(
        "donor/items.html",
        "My items",
        context! { items => rows, total => page.total },
    )
}

/// The form page, new or edit, with the errors to show (`photo_errors`: the photo form's).
async fn render_form(
    ctx: &PageCtx,
    status: StatusCode,
    form: &ItemForm,
    errors: &FieldErrors,
    photo_errors: Option<&FieldErrors>,
    item: Option<&ItemView>,
) -> Result<Response, PageError> {
    let item = item.map(|v| {
        let images: Vec<Value> = v
            .images
            .iter()
            .map(|i| context! { id => i.id.to_string(), thumb_url => &i.thumb_url, alt => &i.alt })
            .collect();
        context! {
            id => v.id.to_string(), status => v.status.as_str(), review_note => &v.review_note,
            images => images, title => &v.title,
        }
    });
    let title = if item.is_some() {
        "Edit item"
    } else {
        "Offer an item"
    };
    ctx.render_status(
        status,
        "donor/item_form.html",
        title,
        context! {
            form => Value::from_serialize(form), errors => Value::from_serialize(errors),
            photo_errors => photo_errors.map(Value::from_serialize),
            categories => categories_value(ctx).await?, types => types_value(), item => item,
        },
    )
}

/// Moves a workflow error onto the form: a field's error beside the field, anything else
/// (a conflict, say) in the summary under `form`.
fn into_errors(e: AppError, errors: &mut FieldErrors) -> Result<StatusCode, PageError> {
    if !e.status.is_client_error() || e.status == StatusCode::NOT_FOUND {
        return Err(e.into());
    }
    errors.insert(e.field.unwrap_or("form"), e.message.to_string());
    Ok(e.status)
}

async fn new_form(ctx: PageCtx) -> Result<Response, PageError> {
    donor!(ctx);
    let form = ItemForm {
        item_type: "competitive".into(),
        quantity_total: "1".into(),
        address_privacy: "show_city_only".into(),
        ..ItemForm::default()
    };
    render_form(&ctx, StatusCode::OK, &form, &FieldErrors::new(), None, None).await
}

async fn new_submit(
    ctx: PageCtx,
    PageForm(form): PageForm<ItemForm>,
) -> Result<Response, PageError> {
    let user = donor!(ctx);
    let mut errors = FieldErrors::new();
    let request = form.item_request(&mut errors);
    let is_event = form.item_type() == Some(ItemType::FixedPriceEvent);
    let event = if is_event {
        form.event_input(ctx.state.config.time_zone, &mut errors)
    } else {
        None
    };
    // The event's own rules first, so a bad date does not leave a half-made item behind.
    if let Some(e) = &event {
        if let Err(fe) = validate_event(e.clone()) {
            errors.insert(fe.field, fe.message);
        }
    }
    let (Some(request), true) = (request, errors.is_empty()) else {
        return render_form(
            &ctx,
            StatusCode::UNPROCESSABLE_ENTITY,
            &form,
            &errors,
            None,
            None,
        )
        .await;
    };
    let row = match create_item(&ctx.state, user, &request).await {
        Ok(row) => row,
        Err(e) => {
            let status = into_errors(e, &mut errors)?;
            return render_form(&ctx, status, &form, &errors, None, None).await;
        }
    };
    if let Some(e) = event {
        write_event(&ctx.state, user, row.item_id(), e, false).await?;
    }
    ctx.set_flash("Saved as a draft. Add a photo or two, then submit it for review.")
        .await;
    Ok(Redirect::to(&format!("/donor/items/{}/edit", row.item_id())).into_response())
}

/// The item as this user may edit it, or the page that says why not.
async fn editable(ctx: &PageCtx, id: ItemId) -> Result<Result<ItemView, Response>, PageError> {
    let Some(user) = ctx.user.as_ref() else {
        return Err(AppError::unauthenticated().into());
    };
    let viewer = Viewer(Some(user));
    let row = find_visible(&ctx.state, viewer, id).await?;
    if let Err(e) = edit_access(user, &row) {
        if e.status == StatusCode::CONFLICT {
            let page = ctx.render_status(
                StatusCode::CONFLICT,
                "message.html",
                "This item can no longer be changed",
                context! {
                    heading => "This item can no longer be changed", message => e.message.to_string(),
                    link => context! { href => format!("/items/{id}"), label => "See the item" },
                },
            )?;
            return Ok(Err(page));
        }
        return Err(e.into());
    }
    Ok(Ok(one_item_view(&ctx.state, viewer, &row).await?))
}

async fn edit_form(ctx: PageCtx, Path(id): Path<String>) -> Result<Response, PageError> {
    donor!(ctx);
    let id = parse_id(&id)?;
    let view = match editable(&ctx, id).await? {
        Ok(v) => v,
        Err(page) => return Ok(page),
    };
    let form = ItemForm::from_view(&view, ctx.state.config.time_zone);
    render_form(
        &ctx,
        StatusCode::OK,
        &form,
        &FieldErrors::new(),
        None,
        Some(&view),
    )
    .await
}

async fn edit_submit(
    ctx: PageCtx,
    Path(id): Path<String>,
    PageForm(form): PageForm<ItemForm>,
) -> Result<Response, PageError> {
    let user = donor!(ctx);
    let id = parse_id(&id)?;
    let view = match editable(&ctx, id).await? {
        Ok(v) => v,
        Err(page) => return Ok(page),
    };
    let mut errors = FieldErrors::new();
    let request = form.item_request(&mut errors);
    let event = if form.item_type() == Some(ItemType::FixedPriceEvent) {
        form.event_input(ctx.state.config.time_zone, &mut errors)
    } else {
        None
    };
    if let Some(e) = &event {
        if let Err(fe) = validate_event(e.clone()) {
            errors.insert(fe.field, fe.message);
        }
    }
    let (Some(request), true) = (request, errors.is_empty()) else {
        return render_form(
            &ctx,
            StatusCode::UNPROCESSABLE_ENTITY,
            &form,
            &errors,
            None,
            Some(&view),
        )
        .await;
    };
    if let Err(e) = update_item(&ctx.state, user, id, &request).await {
        let status = into_errors(e, &mut errors)?;
        return render_form(&ctx, status, &form, &errors, None, Some(&view)).await;
    }
    if let Some(e) = event {
        let exists = events::by_item(&ctx.state.db, id).await?.is_some();
        write_event(&ctx.state, user, id, e, exists).await?;
    }
    ctx.set_flash("Your changes are saved.").await;
    Ok(Redirect::to(&format!("/donor/items/{id}/edit")).into_response())
}

/// The photo form posts multipart (the CSRF token rides in the action's query string).
/// A refused file is explained on the edit page, with the status the API would give.
async fn upload(
    ctx: PageCtx,
    Path(id): Path<String>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, PageError> {
    let user = donor!(ctx);
    let id = parse_id(&id)?;
    let view = match editable(&ctx, id).await? {
        Ok(v) => v,
        Err(page) => return Ok(page),
    };
    let result = async {
        ensure_editable(&ctx.state, user, id).await?;
        let multipart = multipart.map_err(|_| {
            AppError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Please choose a photo with the form on this page.",
            )
        })?;
        add_image(&ctx.state, user, id, read_upload(multipart).await?).await
    }
    .await;
    match result {
        Ok(_) => {
            ctx.set_flash("Photo added.").await;
            Ok(Redirect::to(&format!("/donor/items/{id}/edit")).into_response())
        }
        Err(e) => {
            let mut errors = FieldErrors::new();
            let status = into_errors(e, &mut errors)?;
            // The photo form's own fields are `file` and `alt`; anything else is the form's.
            let errors: FieldErrors = errors
                .into_iter()
                .map(|(k, v)| (if k == "alt" { "alt" } else { "file" }, v))
                .collect();
            let form = ItemForm::from_view(&view, ctx.state.config.time_zone);
            render_form(
                &ctx,
                status,
                &form,
                &FieldErrors::new(),
                Some(&errors),
                Some(&view),
            )
            .await
        }
    }
}

async fn categories_value(ctx: &PageCtx) -> Result<Vec<Value>, PageError> {
    Ok(categories::list(&ctx.state.db, false)
        .await?
        .iter()
        .map(|c| context! { id => c.category_id().to_string(), name => &c.name })
        .collect())
}

fn types_value() -> Vec<Value> {
    ItemType::ALL
        .iter()
        .map(|t| context! { value => t.as_str(), label => type_label(*t) })
        .collect()
}

/// The "Remove" button under a photo on the edit page. An item that can no longer be changed
/// gets the edit page's explanation; a photo already gone is not an error (a double click).
async fn remove_photo(
    ctx: PageCtx,
    Path((id, image)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let user = donor!(ctx);
    let id = parse_id(&id)?;
    // An item the donor may not see or no longer change gets the same pages as its edit.
    if let Err(page) = editable(&ctx, id).await? {
        return Ok(page);
    }
    let image: ImageId = image
        .parse()
        .map_err(|_| PageError::from(AppError::not_found("Photo")))?;
    match remove_image(&ctx.state, user, id, image).await {
        Ok(()) => ctx.set_flash("Photo removed.").await,
        // The item is there (checked above): it is the photo that is gone already.
        Err(e) if e.status == StatusCode::NOT_FOUND => {
            ctx.set_flash("That photo was already removed.").await
        }
        Err(e) if e.status.is_client_error() => ctx.set_flash(&e.message).await,
        Err(e) => return Err(e.into()),
    }
    Ok(Redirect::to(&format!("/donor/items/{id}/edit")).into_response())
}

/// Into the review queue. A refusal (an event without its details, say) comes back as the
/// flash message on the edit page, where it can be fixed.
async fn submit(ctx: PageCtx, Path(id): Path<String>) -> Result<Response, PageError> {
    let user = donor!(ctx);
    let id = parse_id(&id)?;
    match apply_step(&ctx.state, user, id, Transition::Submit, None).await {
        Ok(_) => {
            ctx.set_flash("Thank you! Your item is waiting for an auction manager's review.")
                .await;
            Ok(Redirect::to("/donor/items").into_response())
        }
        Err(e) if e.status.is_client_error() && e.status != StatusCode::NOT_FOUND => {
            ctx.set_flash(&e.message).await;
            Ok(Redirect::to(&format!("/donor/items/{id}/edit")).into_response())
        }
        Err(e) => Err(e.into()),
    }
}
