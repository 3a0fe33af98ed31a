//! Timed duties, run every `config.tick` by one process at a time: the silence watchdog and the escalation ladder
//! (the board's tick), and, about once a minute, removing expired sessions (they are already refused when used).

use crate::services::AppState;
use crate::services::now_ms;

/// Expired sessions are removed at most this often.
pub const SESSION_CLEANUP_EVERY_MS: i64 = 60_000;

/// Run the duties until the runtime stops. With several processes on one PostgreSQL, only the holder of the
/// duty lock runs them (`store::cluster::DutyLock`); the others wait, and one of them takes over within a tick
/// of the holder's death (PostgreSQL releases a dead session's lock). Decisions that could still meet in a
/// hand-over (a rung, `pump_silent`) are claims in the record, so each is recorded and announced once.
pub async fn run(state: AppState) {
    let mut interval = tokio::time::interval(state.config.tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sessions_cleaned_at_ms = i64::MIN;
    let mut duty = crate::store::cluster::DutyLock::new(&state.db, &state.config.database_url);
    let mut holding = false;
    loop {
        interval.tick().await;
        let held = duty.hold().await;
        if held != holding && state.db.backend == crate::store::Backend::Postgres {
            eprintln!(
                "infusafe server: this process {} the timed duties (silence watchdog, escalation, clean-up)",
                if held { "now runs" } else { "no longer runs" }
            );
        }
        holding = held;
        if !held {
            continue;
        }
        let now = now_ms();
        if now.saturating_sub(sessions_cleaned_at_ms) >= SESSION_CLEANUP_EVERY_MS {
            sessions_cleaned_at_ms = now;
            if let Err(e) = crate::store::accounts::delete_expired_sessions(&state.db, now).await {
                eprintln!("infusafe server: could not remove expired sessions: {e}");
            }
        }
        crate::services::alarms::tick(&state).await;
    }
}
