//! Stored idempotency keys of bids (the journal writes them with the bids).

use std::{collections::HashMap, sync::Arc};

use futures_util::TryStreamExt;
use sqlx::PgPool;

use crate::{
    domain::UserId,
    engine::{
        answer::BidReply,
        idempotency::Scope,
        pg::store_error,
        ports::{KeyStore, StoreError, StoredAnswer},
    },
};

pub struct PgKeyStore {
    db: PgPool,
}

impl PgKeyStore {
    pub fn new(db: PgPool) -> PgKeyStore {
        PgKeyStore { db }
    }
}

impl KeyStore for PgKeyStore {
    async fn each_key<F>(&self, mut each: F) -> Result<usize, StoreError>
    where
        F: FnMut(UserId, Scope, &str) + Send,
    {
        let mut rows = sqlx::query_as::<_, (i64, String, String)>(
            "SELECT user_id, scope, key FROM idempotency_keys",
        )
        .fetch(&self.db);
        let mut n = 0;
        while let Some((user, scope, key)) = rows.try_next().await.map_err(store_error)? {
            if let Some(scope) = Scope::parse(&scope) {
                each(UserId(user), scope, &key);
                n += 1;
            }
        }
        Ok(n)
    }

    async fn lookup(
        &self,
        keys: &[(UserId, Scope, String)],
    ) -> Result<Vec<Option<StoredAnswer>>, StoreError> {
        let users: Vec<i64> = keys.iter().map(|(u, _, _)| u.0).collect();
        let scopes: Vec<&str> = keys.iter().map(|(_, s, _)| s.as_str()).collect();
        let names: Vec<&str> = keys.iter().map(|(_, _, k)| k.as_str()).collect();
        let rows = sqlx::query_as::<_, (i64, String, String, Vec<u8>, i16, String)>(
            "SELECT k.user_id, k.scope::text, k.key::text, k.request_hash, k.response_status, k.response_body
               FROM idempotency_keys k
               JOIN UNNEST($1::bigint[], $2::text[], $3::text[]) AS q(user_id, scope, key)
                 ON k.user_id = q.user_id AND k.scope = q.scope AND k.key = q.key",
        )
        .bind(&users)
        .bind(&scopes)
        .bind(&names)
        .fetch_all(&self.db)
        .await
        .map_err(store_error)?;
        let mut found: HashMap<(i64, String, String), StoredAnswer> = HashMap::new();
        for (user, scope, key, hash, status, body) in rows {
            // A hash of another length cannot be ours: it matches no request, so a retry
            // with that key is told it was used for another bid.
            let request_hash = <[u8; 32]>::try_from(hash.as_slice()).unwrap_or([0; 32]);
            let reply = BidReply {
                status: u16::try_from(status).unwrap_or(500),
                body: Arc::from(body),
            };
            found.insert(
                (user, scope, key),
                StoredAnswer {
                    request_hash,
                    reply,
                },
            );
        }
        Ok(keys
            .iter()
            .map(|(u, s, k)| found.remove(&(u.0, s.as_str().to_string(), k.clone())))
            .collect())
    }
}
