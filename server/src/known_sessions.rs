//! Sessions this process has verified against the database recently, so that an outage
//! of the database does not sign everyone out of what needs no database (the live socket).
//! `session.rs` fills and reads it; the state holds it.

use std::time::{Duration, Instant};

use dashmap::DashMap;

use crate::store::users::UserRow;

/// How long a session verified against the database may still be trusted while the
/// database cannot be reached: long enough to ride out a restart or a short outage on
/// auction night, short enough that a session ended meanwhile (a logout on another node, a
/// password reset) is not honoured for long. Only for requests that change nothing.
pub const TRUSTED_DURING_OUTAGE: Duration = Duration::from_secs(15 * 60);
/// An entry verified less than this ago is not written again (cheap reads on every request).
const REFRESH_AFTER: Duration = Duration::from_secs(60);
/// Sessions remembered at most: one auction's signed-in people, many times over.
const KNOWN_SESSIONS_MAX: usize = 100_000;

/// Sessions this process verified against the database, with when. While the database is
/// unreachable, a request that changes nothing (the live socket: prices and snapshots come
/// from memory) may go on as a session verified within [`TRUSTED_DURING_OUTAGE`]. A write
/// never does: it could not be recorded anyway.
#[derive(Default)]
pub struct KnownSessions {
    sessions: DashMap<String, (UserRow, bool, Instant)>,
}

impl KnownSessions {
    /// `key` was just verified as `row`'s session.
    pub fn remember(&self, key: &str, row: &UserRow, via_bearer: bool) {
        // Every signed-in request passes here: skip the write while the entry is fresh.
        if self
            .sessions
            .get(key)
            .is_some_and(|known| known.0.id == row.id && known.2.elapsed() < REFRESH_AFTER)
        {
            return;
        }
        if self.sessions.len() >= KNOWN_SESSIONS_MAX {
            self.forget_old();
            if self.sessions.len() >= KNOWN_SESSIONS_MAX {
                // All recent: a few unremembered sessions only lose the outage grace.
                return;
            }
        }
        self.sessions
            .insert(key.to_string(), (row.clone(), via_bearer, Instant::now()));
    }

    /// The user `key` was verified as, if that was recent enough to be trusted.
    pub fn recall(&self, key: &str) -> Option<(UserRow, bool)> {
        let known = self.sessions.get(key)?;
        let (row, via_bearer, verified) = known.value();
        (verified.elapsed() < TRUSTED_DURING_OUTAGE).then(|| (row.clone(), *via_bearer))
    }

    /// The session ended (logout): it is not honoured during an outage either.
    pub fn forget(&self, key: &str) {
        self.sessions.remove(key);
    }

    /// Drops sessions past their grace (the scheduler's housekeeping).
    pub fn forget_old(&self) {
        self.sessions
            .retain(|_, (_, _, verified)| verified.elapsed() < TRUSTED_DURING_OUTAGE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64) -> UserRow {
        UserRow {
            id,
            email: format!("u{id}@example.org"),
            name: "U".into(),
            phone: None,
            address: None,
            household: None,
            roles: vec!["bidder".into()],
            pref_email: true,
            pref_sms: false,
            muted_notifications: Vec::new(),
            alternate_contact: "none".into(),
            password_hash: String::new(),
            email_verified_at: None,
            paddle_number: 100 + id as i32,
            created_at: chrono::DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_verified_session_is_recalled_until_forgotten_or_too_old() {
        let known = KnownSessions::default();
        assert!(known.recall("c:1").is_none());
        known.remember("c:1", &row(7), false);
        assert_eq!(
            known.recall("c:1").map(|(r, b)| (r.id, b)),
            Some((7, false))
        );
        known.forget("c:1");
        assert!(known.recall("c:1").is_none(), "a logout ends it here too");
        // One verified longer ago than the grace is not trusted, and is pruned.
        known.sessions.insert(
            "b:old".into(),
            (row(8), true, Instant::now() - TRUSTED_DURING_OUTAGE),
        );
        assert!(known.recall("b:old").is_none());
        known.forget_old();
        assert!(known.sessions.is_empty());
    }
}
