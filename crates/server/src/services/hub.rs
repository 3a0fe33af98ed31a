//! The live fan-out: every alarm, acknowledgement, escalation and telemetry update is published once and
//! delivered to the patient's screens and the clinic's dashboards (as server-sent events, `http::sse`).

use std::sync::Arc;

use tokio::sync::broadcast;

pub use crate::domain::LiveMessage;

/// Which messages a stream wants.
#[derive(Debug, Clone)]
pub enum Filter {
    Patient(String),
    Clinic(String),
}

impl Filter {
    pub fn accepts(&self, m: &LiveMessage) -> bool {
        match self {
            Filter::Patient(p) => &m.patient_id == p,
            // A clinic's dashboards get every change that matters, not every heartbeat's telemetry.
            Filter::Clinic(c) => &m.clinic_id == c && !m.routine,
        }
    }
}

/// Bounded broadcast: a slow screen loses old telemetry (it is told with a `lagged` event and reloads),
/// it never slows the pump link down.
#[derive(Debug, Clone)]
pub struct Hub {
    sender: broadcast::Sender<Arc<LiveMessage>>,
    /// The hashes of sessions that just ended (sign-out): their open streams end at once.
    ended: broadcast::Sender<Arc<String>>,
    /// Set when the server shuts down: every open stream ends so graceful shutdown does not wait forever.
    closing: Arc<tokio::sync::watch::Sender<bool>>,
}

/// Messages buffered per subscriber before it counts as lagging.
pub const HUB_BUFFER_MAX: usize = 1024;

impl Default for Hub {
    fn default() -> Hub {
        Hub {
            sender: broadcast::channel(HUB_BUFFER_MAX).0,
            ended: broadcast::channel(HUB_BUFFER_MAX).0,
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

    /// A session ended (sign-out): every stream it opened ends.
    pub fn session_ended(&self, session_hash: &str) {
        let _ = self.ended.send(Arc::new(session_hash.to_string()));
    }

    pub fn ended_sessions(&self) -> broadcast::Receiver<Arc<String>> {
        self.ended.subscribe()
    }

    /// Turns true when the server starts shutting down (open streams end then).
    pub fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closing.subscribe()
    }
}
