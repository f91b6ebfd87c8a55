//! Background jobs that run inside the server: the auction calendar's state flips, and
//! housekeeping (idle rate-limit keys, expired sessions). Each loop stops on shutdown.

use std::time::Duration;

use tokio::task::JoinHandle;
use tower_sessions::ExpiredDeletion;

use crate::{
    domain::AuctionState,
    services::auctions::phase_changed,
    state::AppState,
    store::auctions::{self, AuctionRow},
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
///
/// What a phase begins (the reoffer's announcement, the unsold items' close) must not be
/// lost to a crash between the state's write and its start, nor to a failed start: at start
/// every auction's current phase is begun again, and a start that fails is retried every
/// pass until it succeeds. Each step does nothing the second time.
async fn calendar_loop(state: AppState) {
    let mut unstarted: Vec<PhaseMove> = Vec::new();
    let mut caught_up = false;
    loop {
        if !caught_up {
            match current_phases(&state).await {
                Ok(phases) => {
                    unstarted.extend(phases);
                    caught_up = true;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading the auctions' phases at start failed; retrying")
                }
            }
        }
        match flip_due_states(&state).await {
            Ok(flipped) => unstarted.extend(flipped),
            Err(e) => tracing::warn!(error = %e, "calendar state check failed; retrying"),
        }
        unstarted = begin_phases(&state, unstarted).await;
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// A move of one auction from one phase to another whose start is owed.
type PhaseMove = (AuctionRow, AuctionState, AuctionState);

/// The phases whose start a restart may have missed: auctions in their reoffer, and
/// auctions past it that still have items published.
async fn current_phases(state: &AppState) -> sqlx::Result<Vec<PhaseMove>> {
    let now = state.now();
    let mut owed = Vec::new();
    for row in auctions::all(&state.db).await? {
        let current = row.state_at(now);
        let owes = match current {
            AuctionState::Reoffer => true,
            s if s >= AuctionState::Closed => {
                auctions::has_published_items(&state.db, row.id).await?
            }
            _ => false,
        };
        if owes {
            owed.push((row, AuctionState::Draft, current));
        }
    }
    Ok(owed)
}

/// Begins each phase; returns those whose start failed, to try again.
async fn begin_phases(state: &AppState, moves: Vec<PhaseMove>) -> Vec<PhaseMove> {
    let mut failed = Vec::new();
    for (row, old, new) in moves {
        if let Err(e) = phase_changed(state, &row, old, new).await {
            tracing::warn!(auction = row.id, error = %e.message, "a phase's start failed; retrying");
            failed.push((row, old, new));
        }
    }
    failed
}

/// One pass: writes the states that are due and audits each flip as the system's; returns
/// the moves whose phase is to begin.
pub async fn flip_due_states(state: &AppState) -> sqlx::Result<Vec<PhaseMove>> {
    let now = state.now();
    let mut moves = Vec::new();
    for (row, old) in auctions::persist_calendar_states(&state.db, now).await? {
        state.engine.auction_state_changed(
            row.auction_id(),
            row.state_at(now),
            row.override_state().is_some(),
        );
        tracing::info!(auction = row.id, from = old.as_str(), to = %row.state, "auction state changed");
        let new = row.state_at(now);
        moves.push((row, old, new));
    }
    Ok(moves)
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
