//! Stored idempotency keys of bids (the journal writes them with the bids).

use std::{collections::HashMap, sync::Arc};

use futures_util::TryStreamExt;
use sqlx::PgPool;

use crate::{
    domain::UserId,
    engine::{
        answer::BidReply,
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
        F: FnMut(UserId, &str) + Send,
    {
        let mut rows = sqlx::query_as::<_, (i64, String)>(
            "SELECT user_id, key FROM idempotency_keys WHERE scope = 'bid'",
        )
        .fetch(&self.db);
        let mut n = 0;
        while let Some((user, key)) = rows.try_next().await.map_err(store_error)? {
            each(UserId(user), &key);
            n += 1;
        }
        Ok(n)
    }

    async fn lookup(
        &self,
        keys: &[(UserId, String)],
    ) -> Result<Vec<Option<StoredAnswer>>, StoreError> {
        let users: Vec<i64> = keys.iter().map(|(u, _)| u.0).collect();
        let names: Vec<&str> = keys.iter().map(|(_, k)| k.as_str()).collect();
        let rows = sqlx::query_as::<_, (i64, String, Vec<u8>, i16, String)>(
            "SELECT k.user_id, k.key, k.request_hash, k.response_status, k.response_body
               FROM idempotency_keys k
               JOIN UNNEST($1::bigint[], $2::text[]) AS q(user_id, key)
                 ON k.user_id = q.user_id AND k.key = q.key
              WHERE k.scope = 'bid'",
        )
        .bind(&users)
        .bind(&names)
        .fetch_all(&self.db)
        .await
        .map_err(store_error)?;
        let mut found: HashMap<(i64, String), StoredAnswer> = HashMap::new();
        for (user, key, hash, status, body) in rows {
            // A hash of another length cannot be ours: it matches no request, so a retry
            // with that key is told it was used for another bid.
            let request_hash = <[u8; 32]>::try_from(hash.as_slice()).unwrap_or([0; 32]);
            let reply = BidReply {
                status: u16::try_from(status).unwrap_or(500),
                body: Arc::from(body),
            };
            found.insert(
                (user, key),
                StoredAnswer {
                    request_hash,
                    reply,
                },
            );
        }
        Ok(keys
            .iter()
            .map(|(u, k)| found.remove(&(u.0, k.clone())))
            .collect())
    }
}
