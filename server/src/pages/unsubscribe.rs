//! The unsubscribe link of an optional email: `GET /unsubscribe?user=&type=&sig=` asks to
//! confirm (a link opened by a mail scanner changes nothing), `POST /unsubscribe` turns that
//! type off. No login: the signature (`services::notifications`) says whose it is.

use axum::{extract::Query, response::Response, routing::get, Router};
use minijinja::context;
use serde::Deserialize;

use crate::{
    services::notifications::{check_unsubscribe, describe, unsubscribe},
    state::AppState,
};

use super::{error::PageError, PageCtx, PageForm};

pub fn router() -> Router<AppState> {
    Router::new().route("/unsubscribe", get(confirm).post(submit))
}

#[derive(Deserialize)]
struct Link {
    #[serde(default)]
    user: i64,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    sig: String,
}

async fn confirm(ctx: PageCtx, Query(link): Query<Link>) -> Result<Response, PageError> {
    let checked = check_unsubscribe(&ctx.state.config, link.user, &link.kind, &link.sig)?;
    ctx.render(
        "unsubscribe.html",
        "Stop these emails",
        context! {
            what => describe(checked.kind),
            user => checked.user, kind => checked.kind, sig => link.sig,
        },
    )
}

async fn submit(ctx: PageCtx, PageForm(link): PageForm<Link>) -> Result<Response, PageError> {
    let checked = check_unsubscribe(&ctx.state.config, link.user, &link.kind, &link.sig)?;
    unsubscribe(&ctx.state, &checked).await?;
    ctx.message(
        "You will not get these emails any more",
        &format!(
            "Done: no more {}. You can turn them back on at any time on your account page.",
            describe(checked.kind)
        ),
        Some(("/account", "Go to my account")),
    )
}
