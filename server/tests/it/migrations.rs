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

/// 0005 moved the checks of `notifications` and `idempotency_keys` into domains and their
/// user references into a trigger (cheaper per statement, so per journal commit). Upgraded
/// with rows in both tables, the rows stay and the rules hold as before: bad values are
/// refused, and a user with such rows cannot be deleted or renumbered.
#[sqlx::test(migrations = false)]
async fn the_journal_tables_keep_their_rules_across_0005(db: PgPool) {
    let (before, dir) = migrations_up_to("0004_bid_journal_cost.sql").await;
    before.run(&db).await.unwrap();
    let mut users = Vec::new();
    for (email, paddle) in [
        ("ann@example.org", 7),
        ("bob@example.org", 8),
        ("cy@example.org", 9),
    ] {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (email, name, password_hash, paddle_number)
             VALUES ($1, 'Someone', 'x', $2) RETURNING id",
        )
        .bind(email)
        .bind(paddle)
        .fetch_one(&db)
        .await
        .unwrap();
        users.push(id);
    }
    let (ann, bob, cy) = (users[0], users[1], users[2]);
    let notice = "INSERT INTO notifications (user_id, channel, type, template_key, status)
                  VALUES ($1, $2, $3, 'outbid', $4)";
    let key = "INSERT INTO idempotency_keys (user_id, scope, key, request_hash, response_status, response_body)
               VALUES ($1, $2, $3, '\\x00', 201, '{}')";
    // Rows written before the upgrade.
    sqlx::query(notice)
        .bind(ann)
        .bind("email")
        .bind("outbid")
        .bind("scheduled")
        .execute(&db)
        .await
        .unwrap();
    sqlx::query(key)
        .bind(bob)
        .bind("bid")
        .bind("b-1")
        .execute(&db)
        .await
        .unwrap();

    auuction::store::MIGRATOR.run(&db).await.unwrap();

    // The cheaper shape is what 0005 is for: no CHECK nor foreign key left on either table
    // (a CHECK is parsed again by every insert), their rules held by domains instead.
    let left: Vec<String> = sqlx::query_scalar(
        "SELECT conname::text FROM pg_constraint
          WHERE conrelid IN ('notifications'::regclass, 'idempotency_keys'::regclass)
            AND contype IN ('c', 'f')",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert!(left.is_empty(), "constraints left: {left:?}");
    let domains: Vec<String> = sqlx::query_scalar(
        "SELECT format('%s.%s', c.relname, a.attname) FROM pg_attribute a
           JOIN pg_class c ON c.oid = a.attrelid JOIN pg_type t ON t.oid = a.atttypid
          WHERE c.relname IN ('notifications', 'idempotency_keys') AND t.typtype = 'd'
          ORDER BY 1",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(
        domains,
        [
            "idempotency_keys.key",
            "idempotency_keys.scope",
            "notifications.channel",
            "notifications.status",
            "notifications.type"
        ]
    );

    // The rows stayed, and read back as text, as before.
    let (channel, status): (String, String) =
        sqlx::query_as("SELECT channel, status FROM notifications WHERE user_id = $1")
            .bind(ann)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!((channel.as_str(), status.as_str()), ("email", "scheduled"));
    let stored: String = sqlx::query_scalar("SELECT key FROM idempotency_keys WHERE user_id = $1")
        .bind(bob)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(stored, "b-1");

    // Text values are assigned to the domain columns as to text ones; bad ones are refused.
    sqlx::query(key)
        .bind(bob)
        .bind("purchase")
        .bind("p-1")
        .execute(&db)
        .await
        .unwrap();
    let long_key = "k".repeat(201);
    let refused: [(&str, &str, Vec<&str>); 6] = [
        ("channel", notice, vec!["pigeon", "outbid", "scheduled"]),
        ("type", notice, vec!["email", "gossip", "scheduled"]),
        ("status", notice, vec!["email", "outbid", "lost"]),
        ("scope", key, vec!["refund", "b-2"]),
        ("empty key", key, vec!["bid", ""]),
        ("long key", key, vec!["bid", &long_key]),
    ];
    for (what, sql, values) in refused {
        let mut q = sqlx::query(sql).bind(cy);
        for v in values {
            q = q.bind(v);
        }
        let e = q.execute(&db).await.expect_err(what);
        let code = e.as_database_error().and_then(|d| d.code()).unwrap();
        assert_eq!(code, "23514", "{what} is a check violation: {e}");
    }

    for (who, id, kept) in [
        ("ann", ann, "notifications"),
        ("bob", bob, "idempotency keys"),
    ] {
        for sql in [
            "DELETE FROM users WHERE id = $1",
            // An identity column can still be renumbered this way.
            "UPDATE users SET id = DEFAULT WHERE id = $1",
        ] {
            let e = sqlx::query(sql).bind(id).execute(&db).await.expect_err(who);
            let d = e.as_database_error().unwrap();
            assert_eq!(d.code().unwrap(), "23503", "{who}, {sql}: {e}");
            assert!(d.message().contains(kept), "{who}: {e}");
        }
    }
    // A user without such rows can still be deleted.
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(cy)
        .execute(&db)
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(dir);
}
