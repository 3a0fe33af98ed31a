//! The live fan-out: every alarm, acknowledgement, escalation and telemetry update is published once and
//! delivered to the patient's screens and the clinic's dashboards as server-sent events.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

/// One live update.
#[derive(Debug, Clone, Serialize)]
pub struct LiveMessage {
    /// SSE event name: `alarm`, `alarm_cleared`, `acknowledged`, `silenced`, `escalation`, `telemetry`,
    /// `link` (pump link up/down).
    pub kind: &'static str,
    pub patient_id: String,
    #[serde(skip)]
    pub clinic_id: String,
    pub at_ms: i64,
    pub data: serde_json::Value,
}

/// Which messages a stream wants.
#[derive(Debug, Clone)]
pub enum Filter {
    Patient(String),
    Clinic(String),
}

impl Filter {
    fn accepts(&self, m: &LiveMessage) -> bool {
        match self {
            Filter::Patient(p) => &m.patient_id == p,
            Filter::Clinic(c) => &m.clinic_id == c,
        }
    }
}

/// Bounded broadcast: a slow screen loses old telemetry (it is told with a `lagged` event and reloads),
/// it never slows the pump link down.
#[derive(Debug, Clone)]
pub struct Hub {
    sender: broadcast::Sender<Arc<LiveMessage>>,
    /// Set when the server shuts down: every open stream ends so graceful shutdown does not wait forever.
    closing: Arc<tokio::sync::watch::Sender<bool>>,
}

/// Messages buffered per subscriber before it counts as lagging.
pub const HUB_BUFFER_MAX: usize = 1024;

impl Default for Hub {
    fn default() -> Hub {
        Hub {
            sender: broadcast::channel(HUB_BUFFER_MAX).0,
            closing: Arc::new(tokio::sync::watch::channel(false).0),
        }
    }
}

impl Hub {
    pub fn publish(&self, message: LiveMessage) {
        // No subscribers is fine: nobody is looking right now.
        let _ = self.sender.send(Arc::new(message));
    }

    /// End every open stream (server shutdown).
    pub fn close(&self) {
        let _ = self.closing.send(true);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveMessage>> {
        self.sender.subscribe()
    }

    /// An SSE response for `filter`, starting with `initial` events (the current snapshot) so a new screen
    /// is correct at once.
    pub fn sse(
        &self,
        filter: Filter,
        initial: Vec<LiveMessage>,
    ) -> Sse<impl Stream<Item = Result<Event, Infallible>> + use<>> {
        let receiver = self.subscribe();
        let first = futures_util::stream::iter(initial.into_iter().map(|m| Ok(to_event(&m))));
        let live = BroadcastStream::new(receiver).filter_map(move |item| {
            let filter = filter.clone();
            async move {
                match item {
                    Ok(m) if filter.accepts(&m) => Some(Ok(to_event(&m))),
                    Ok(_) => None,
                    Err(_lagged) => Some(Ok(Event::default()
                        .event("lagged")
                        .data("{\"reload\":true}"))),
                }
            }
        });
        let mut closing = self.closing.subscribe();
        let live = live.take_until(async move {
            let _ = closing.wait_for(|v| *v).await;
        });
        Sse::new(first.chain(live)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
    }
}

fn to_event(m: &LiveMessage) -> Event {
    Event::default()
        .event(m.kind)
        .data(serde_json::to_string(m).unwrap_or_else(|_| "{}".into()))
}
