//! Migrations applied to a database that already holds data, as on a server being upgraded.

use std::path::{Path, PathBuf};

use sqlx::{migrate::Migrator, PgPool};

/// A migrator for the repository's migrations up to and including `last` (by file name).
async fn migrations_up_to(last: &str) -> (Migrator, PathBuf) {
    let dir = std::env::temp_dir().join(format!("auuction-migrations-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    let mut names: Vec<String> = std::fs::read_dir(&source)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".sql") && n.as_str() <= last)
        .collect();
    names.sort();
    for name in names {
        std::fs::copy(source.join(&name), dir.join(&name)).unwrap();
    }
    (Migrator::new(dir.as_path()).await.unwrap(), dir)
}

/// Before 0004 every outbid queued a row of its own; 0004 keeps one waiting email per bidder
/// and item (a unique index), so it must fold the rows already waiting, keeping the newest.
#[sqlx::test(migrations = false)]
async fn waiting_outbid_emails_are_folded_on_upgrade(db: PgPool) {
    let (before, dir) = migrations_up_to("0003_item_bidding.sql").await;
    before.run(&db).await.unwrap();
    let user: i64 = sqlx::query_scalar(
        "INSERT INTO users (email, name, password_hash, paddle_number)
         VALUES ('ann@example.org', 'Ann', 'x', 7) RETURNING id",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    for (item, price, status) in [
        (1_i64, 100, "scheduled"),
        (1, 200, "scheduled"),
        (1, 300, "scheduled"),
        (2, 100, "scheduled"),
        (1, 50, "sent"),
    ] {
        sqlx::query(
            "INSERT INTO notifications (user_id, channel, type, template_key, payload, status,
                                        related_entity_type, related_entity_id)
             VALUES ($1, 'email', 'outbid', 'outbid', jsonb_build_object('currentBidCents', $2::bigint), $3, 'item', $4)",
        )
        .bind(user)
        .bind(price)
        .bind(status)
        .bind(item)
        .execute(&db)
        .await
        .unwrap();
    }
    auuction::store::MIGRATOR.run(&db).await.unwrap();
    let left: Vec<(i64, String, i64)> = sqlx::query_as(
        "SELECT related_entity_id, status, (payload->>'currentBidCents')::bigint
           FROM notifications ORDER BY related_entity_id, status",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(
        left,
        vec![
            (1, "scheduled".to_string(), 300),
            (1, "sent".to_string(), 50),
            (2, "scheduled".to_string(), 100),
        ]
    );
    let _ = std::fs::remove_dir_all(dir);
}
