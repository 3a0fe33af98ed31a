//! Timed duties, run every `config.tick` by one process at a time (the holder of the duty lock): the silence
//! watchdog and the escalation ladder (the board's tick), every 10 s the escalation sweep (a rung recorded by
//! a process that stopped before queuing its webhook is queued), about once a minute, removing expired sessions
//! (they are already refused when used), and at most once per `config.telemetry_compact_every` (an hour), the
//! telemetry retention (`record::Store::compact_telemetry`), in a task of its own so it never delays the
//! watchdog.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::services::AppState;
use crate::services::now_ms;

/// Expired sessions are removed at most this often.
pub const SESSION_CLEANUP_EVERY_MS: i64 = 60_000;
/// The escalation sweep (`services::webhook::sweep`) runs at most this often.
pub const ESCALATION_SWEEP_EVERY_MS: i64 = 10_000;

/// Run the duties until the runtime stops. With several processes on one PostgreSQL, only the holder of the
/// duty lock runs them (`store::cluster::DutyLock`); the others wait, and one of them takes over within a tick
/// of the holder's death (PostgreSQL releases a dead session's lock). Decisions that could still meet in a
/// hand-over (a rung, `pump_silent`) are claims in the record, so each is recorded and announced once.
pub async fn run(state: AppState) {
    let mut interval = tokio::time::interval(state.config.tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sessions_cleaned_at_ms = i64::MIN;
    let mut swept_at_ms = i64::MIN;
    let mut duty = crate::store::cluster::DutyLock::new(&state.db, &state.config.database_url);
    let mut holding = false;
    let compact_every_ms =
        i64::try_from(state.config.telemetry_compact_every.as_millis()).unwrap_or(i64::MAX);
    let mut telemetry_compacted_at_ms = i64::MIN;
    let compacting = Arc::new(AtomicBool::new(false));
    let sweeping = Arc::new(AtomicBool::new(false));
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
        if now.saturating_sub(telemetry_compacted_at_ms) >= compact_every_ms
            && !compacting.swap(true, Ordering::AcqRel)
        {
            telemetry_compacted_at_ms = now;
            let state = state.clone();
            let compacting = compacting.clone();
            tokio::spawn(async move {
                compact_telemetry(&state).await;
                compacting.store(false, Ordering::Release);
            });
        }
        crate::services::alarms::tick(&state).await;
        if now.saturating_sub(swept_at_ms) >= ESCALATION_SWEEP_EVERY_MS
            && !sweeping.swap(true, Ordering::AcqRel)
        {
            // In a task of its own, like the retention: a long sweep never delays the watchdog or the ladder.
            swept_at_ms = now;
            let state = state.clone();
            let sweeping = sweeping.clone();
            tokio::spawn(async move {
                if let Err(e) = crate::services::webhook::sweep(&state, now).await {
                    eprintln!(
                        "infusafe server: the escalation sweep failed (tried again later): {e}"
                    );
                }
                sweeping.store(false, Ordering::Release);
            });
        }
    }
}

/// Applies the telemetry retention once and says what it did (nothing is said when nothing changed).
pub async fn compact_telemetry(state: &AppState) {
    let policy = state.config.telemetry_retention;
    match state
        .journal
        .store()
        .compact_telemetry(jiff::Timestamp::now(), &policy)
        .await
    {
        Ok(report) if report.is_empty() => {}
        Ok(report) => eprintln!(
            "infusafe server: telemetry retention: {} samples downsampled into {} buckets, {} rows past the \
             retention removed ({} transactions)",
            report.samples_downsampled,
            report.buckets_written,
            report.rows_removed,
            report.transactions
        ),
        Err(e) => eprintln!("infusafe server: telemetry retention failed (tried again later): {e}"),
    }
}
