//! The winners bidding's close recorded for an item: who won each unit and at what price.

use sqlx::PgExecutor;

/// One winner of an item. The user id is for telling the viewer "you won"; pages show the
/// paddle number only, never who it is.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ItemWinner {
    pub user_id: i64,
    pub paddle_number: i32,
    pub amount: i64,
    pub quantity: i32,
}

/// The winners of `item`, highest amount first (the top winner first).
pub async fn of_item(db: impl PgExecutor<'_>, item: i64) -> sqlx::Result<Vec<ItemWinner>> {
    sqlx::query_as(
        "SELECT w.user_id, u.paddle_number, w.amount, w.quantity
           FROM winners w JOIN users u ON u.id = w.user_id
          WHERE w.item_id = $1
          ORDER BY w.amount DESC, w.id",
    )
    .bind(item)
    .fetch_all(db)
    .await
}
