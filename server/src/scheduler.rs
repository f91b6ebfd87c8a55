//! Background jobs that run inside the server: the auction calendar's state flips, and
//! housekeeping (idle rate-limit keys, expired sessions). Each loop stops on shutdown.

use std::time::Duration;

use tokio::task::JoinHandle;
use tower_sessions::ExpiredDeletion;

use crate::{
    services::auctions::phase_changed,
    state::AppState,
    store::{auctions, audit},
};

pub fn spawn(state: AppState) -> Vec<JoinHandle<()>> {
    vec![
        tokio::spawn(calendar_loop(state.clone())),
        tokio::spawn(housekeeping_loop(state)),
    ]
}

/// Persists each auction's calendar state when it changes. It wakes at the next milestone
/// of any auction (or within a second, whichever comes first), so a flip lands within a
/// second of its date and a restart catches up at once.
async fn calendar_loop(state: AppState) {
    loop {
        if let Err(e) = flip_due_states(&state).await {
            tracing::warn!(error = %e, "calendar state check failed; retrying");
        }
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// One pass: writes the states that are due and audits each flip as the system's.
pub async fn flip_due_states(state: &AppState) -> sqlx::Result<()> {
    let now = state.now();
    for (row, old) in auctions::persist_calendar_states(&state.db, now).await? {
        state.engine.auction_state_changed(
            row.auction_id(),
            row.state_at(now),
            row.override_state().is_some(),
        );
        // What the new phase begins (the reoffer's announcement, the unsold items' close).
        if let Err(e) = phase_changed(state, &row, old, row.state_at(now)).await {
            tracing::warn!(auction = row.id, error = %e.message, "a phase's start failed (a manager pinning the state runs it again)");
        }
        tracing::info!(auction = row.id, from = old.as_str(), to = %row.state, "auction state changed");
        audit::record(
            &state.db,
            None,
            "auction.state_changed",
            "auction",
            Some(row.id),
            Some(serde_json::json!({ "state": old.as_str() })),
            Some(serde_json::json!({ "state": row.state })),
        )
        .await?;
    }
    Ok(())
}

async fn housekeeping_loop(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        state.limits.forget_idle();
        state.engine.housekeeping();
        state.known_sessions.forget_old();
        if let Err(e) = state.sessions.delete_expired().await {
            tracing::warn!(error = %e, "deleting expired sessions failed");
        }
    }
}
