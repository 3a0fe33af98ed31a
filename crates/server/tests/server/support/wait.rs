//! Waiting on evidence, never on the clock alone: on a stream for the event that proves something happened,
//! on a condition polled with a deadline, or, to show that something did NOT happen, on a marker that proves
//! the server's ticker has run past the moment it would have happened. Every wait fails with a message that
//! says what was awaited.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use server::domain::{LiveMessage, MessageKind};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use super::{TestServer, World};

/// How often `wait_until` looks at its condition again.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// Poll `probe` until it returns `Ok`, at most `within`; `Err` says what it saw, shown if the deadline passes.
pub async fn wait_until<T>(
    within: Duration,
    what: &str,
    mut probe: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + within;
    let mut poll = tokio::time::interval(POLL_EVERY);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        poll.tick().await;
        match probe().await {
            Ok(value) => return value,
            Err(seen) if Instant::now() >= deadline => {
                panic!("{what}: not within {within:?}; last seen: {seen}")
            }
            Err(_) => continue,
        }
    }
}

/// A server-sent event stream, read into a channel as (event name, data JSON).
pub struct EventStream {
    rx: mpsc::UnboundedReceiver<(String, Value)>,
}

impl EventStream {
    pub fn new(rx: mpsc::UnboundedReceiver<(String, Value)>) -> EventStream {
        EventStream { rx }
    }

    /// Wait for the first event matching `pred` (skipping others), failing after `within`.
    pub async fn expect(
        &mut self,
        within: Duration,
        what: &str,
        pred: impl Fn(&str, &Value) -> bool,
    ) -> Value {
        let mut seen = self.until(within, what, pred).await;
        seen.pop().expect("`until` ends with the match").1
    }

    /// Every event up to and including the first one matching `pred`, failing after `within`.
    pub async fn until(
        &mut self,
        within: Duration,
        what: &str,
        pred: impl Fn(&str, &Value) -> bool,
    ) -> Vec<(String, Value)> {
        let deadline = Instant::now() + within;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.rx.recv()).await {
                Ok(Some((name, data))) => {
                    let found = pred(&name, &data);
                    seen.push((name, data));
                    if found {
                        return seen;
                    }
                }
                Ok(None) => panic!("stream closed while waiting for {what}"),
                Err(_) => panic!(
                    "{what} did not arrive within {within:?}; seen: {:?}",
                    seen.iter().map(|(name, _)| name).collect::<Vec<_>>()
                ),
            }
        }
    }

    /// The stream ends (the server closed it) within `within`; events still arriving before the end are skipped.
    pub async fn closed_within(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.rx.recv()).await {
                Ok(Some(_)) => continue,
                Ok(None) => return,
                Err(_) => panic!("the stream was still open after {within:?}"),
            }
        }
    }

    /// The events that have arrived and not been read yet.
    pub fn received(&mut self) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        while let Ok(event) = self.rx.try_recv() {
            out.push(event);
        }
        out
    }
}

/// Proof that the server's ticker has run well past a moment: a pump of clinic B (which no clinic-A test
/// watches) talks once, infusing, and then stays quiet; the watchdog raises `pump_silent` for it on the first
/// tick more than `pump_silent_after` later. A tick decides for every patient at once and records its events
/// before it announces any, so once the marker's alarm is announced, everything due by that tick for any
/// patient (a rung, say) is already in the record, and was published before or with it.
pub struct TickerMarker {
    live: broadcast::Receiver<Arc<LiveMessage>>,
    patient_id: String,
    talked_at_ms: i64,
    silent_after: Duration,
}

impl TestServer {
    /// Start a marker now (see `TickerMarker`); `passed` waits for it.
    pub async fn ticker_marker(&self, world: &World) -> TickerMarker {
        let live = self
            .state()
            .hub
            .subscribe(&server::services::hub::Filter::Patient(world.pb.clone()));
        let device = server::services::directory::create_device(
            self.state(),
            &world.pb,
            "Ticker marker",
            false,
            None,
        )
        .await
        .expect("a marker pump for clinic B");
        let talked_at_ms = server::services::now_ms();
        self.pump(&device.token)
            .heartbeat(
                json!({"state": "infusing", "rate_ml_per_h": 10.0, "delivered_ml": 0.0,
                              "remaining_ml": 100.0, "battery_percent": 90.0}),
            )
            .await
            .expect_status(200);
        TickerMarker {
            live,
            patient_id: world.pb.clone(),
            talked_at_ms,
            silent_after: self.config.pump_silent_after,
        }
    }
}

impl TickerMarker {
    /// Return once the ticker has run, and carried out, a tick more than `pump_silent_after` after the marker
    /// started (600 ms in tests).
    pub async fn passed(mut self) {
        let within = self.silent_after + Duration::from_secs(3);
        let silent_after_ms = i64::try_from(self.silent_after.as_millis()).unwrap();
        let wait = async {
            loop {
                let m = match self.live.recv().await {
                    Ok(m) => m,
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => panic!("the server stopped"),
                };
                if m.kind == MessageKind::Alarm
                    && m.patient_id == self.patient_id
                    && m.data["alarm"]["alarm"] == "pump_silent"
                    && m.at_ms > self.talked_at_ms + silent_after_ms
                {
                    return;
                }
            }
        };
        tokio::time::timeout(within, wait)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the ticker marker (pump_silent for clinic B) did not come within {within:?}"
                )
            });
    }
}
