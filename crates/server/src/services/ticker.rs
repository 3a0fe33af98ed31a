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
    let mut duty = crate::store::cluster::DutyLock::new(&state.db, &state.config.database_url);
    let mut holding = false;
    let mut compaction = Background::every(
        i64::try_from(state.config.telemetry_compact_every.as_millis()).unwrap_or(i64::MAX),
    );
    let mut sweep = Background::every(ESCALATION_SWEEP_EVERY_MS);
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
        let retention_state = state.clone();
        compaction.run_if_due(
            now,
            async move { compact_telemetry(&retention_state).await },
        );
        crate::services::alarms::tick(&state).await;
        let sweep_state = state.clone();
        sweep.run_if_due(now, async move {
            if let Err(e) = crate::services::webhook::sweep(&sweep_state, now).await {
                eprintln!("infusafe server: the escalation sweep failed (tried again later): {e}");
            }
        });
    }
}

/// A duty run in a task of its own at most once per `every_ms` and never two at once, so a long one (the
/// telemetry retention, the escalation sweep) never delays the watchdog or the ladder.
struct Background {
    every_ms: i64,
    started_at_ms: i64,
    running: Arc<AtomicBool>,
}

impl Background {
    fn every(every_ms: i64) -> Background {
        Background {
            every_ms,
            started_at_ms: i64::MIN,
            running: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Start `duty` if it is due and the last one has finished (otherwise it is dropped unrun).
    fn run_if_due(
        &mut self,
        now: i64,
        duty: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        if now.saturating_sub(self.started_at_ms) < self.every_ms
            || self.running.swap(true, Ordering::AcqRel)
        {
            return;
        }
        self.started_at_ms = now;
        let running = self.running.clone();
        tokio::spawn(async move {
            duty.await;
            running.store(false, Ordering::Release);
        });
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
        Ok(report) => {
            eprintln!(
                "infusafe server: telemetry retention: {} samples packed ({} hour blocks written), {} downsampled \
                 into {} buckets, {} rows past the retention removed ({} transactions)",
                report.samples_packed,
                report.blocks_written,
                report.samples_downsampled,
                report.buckets_written,
                report.rows_removed,
                report.transactions
            );
            for failure in &report.failures {
                eprintln!("infusafe server: telemetry retention skipped {failure}");
            }
        }
        Err(e) => eprintln!("infusafe server: telemetry retention failed (tried again later): {e}"),
    }
}
