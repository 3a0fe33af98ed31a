//! Timed duties, run every `config.tick`: the silence watchdog and the escalation ladder (the board's tick), and,
//! about once a minute, removing expired sessions (they are already refused when used).

use crate::services::AppState;
use crate::services::now_ms;

/// Expired sessions are removed at most this often.
pub const SESSION_CLEANUP_EVERY_MS: i64 = 60_000;

/// Run the duties until the runtime stops.
pub async fn run(state: AppState) {
    let mut interval = tokio::time::interval(state.config.tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sessions_cleaned_at_ms = i64::MIN;
    loop {
        interval.tick().await;
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
