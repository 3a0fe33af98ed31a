//! The live fan-out: every alarm, acknowledgement, escalation and telemetry update is published once and
//! delivered to the patient's screens and the clinic's dashboards (as server-sent events, `http::sse`).
//!
//! Messages are routed when they are published, to a channel per patient and one per clinic that someone is
//! watching: a stream only ever wakes for what it shows. (One channel for everything made every open stream
//! read every pump's telemetry, a thousand messages a second at 10,000 pumps, and a screen starved of CPU for a
//! second lost alarms to the overflow.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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

/// Bounded broadcast channels: a slow screen loses old messages (it is told with a `lagged` event and reloads),
/// it never slows the pump link down.
#[derive(Debug, Clone)]
pub struct Hub {
    routes: Arc<Mutex<Routes>>,
    /// The hashes of sessions that just ended (sign-out): their open streams end at once.
    ended: broadcast::Sender<Arc<String>>,
    /// Set when the server shuts down: every open stream ends so graceful shutdown does not wait forever.
    closing: Arc<tokio::sync::watch::Sender<bool>>,
}

/// The channels someone is listening on, by patient and by clinic; a channel whose last listener has gone is
/// dropped at the next message for it.
#[derive(Debug, Default)]
struct Routes {
    patients: HashMap<String, broadcast::Sender<Arc<LiveMessage>>>,
    clinics: HashMap<String, broadcast::Sender<Arc<LiveMessage>>>,
}

/// Messages buffered per subscriber before it counts as lagging (a patient's stream).
pub const HUB_BUFFER_MAX: usize = 1024;
/// The same for a clinic's dashboards, which must absorb every pump of the clinic changing state at once (all
/// of them reconnecting after a restart: 10,000 state changes within seconds).
pub const HUB_CLINIC_BUFFER_MAX: usize = 16_384;

impl Default for Hub {
    fn default() -> Hub {
        Hub {
            routes: Arc::default(),
            ended: broadcast::channel(HUB_BUFFER_MAX).0,
            closing: Arc::new(tokio::sync::watch::channel(false).0),
        }
    }
}

/// Send to the channel of `key`, if anyone listens there; forget the channel if no one does any more.
fn route(
    channels: &mut HashMap<String, broadcast::Sender<Arc<LiveMessage>>>,
    key: &str,
    message: &Arc<LiveMessage>,
) {
    if let Some(sender) = channels.get(key)
        && sender.send(message.clone()).is_err()
    {
        channels.remove(key);
    }
}

impl Hub {
    pub fn publish(&self, message: LiveMessage) {
        // No subscribers is fine: nobody is looking right now.
        let message = Arc::new(message);
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        route(&mut routes.patients, &message.patient_id, &message);
        if Filter::Clinic(message.clinic_id.clone()).accepts(&message) {
            route(&mut routes.clinics, &message.clinic_id, &message);
        }
    }

    /// End every open stream (server shutdown).
    pub fn close(&self) {
        let _ = self.closing.send(true);
    }

    /// The messages `filter` accepts, from now on.
    pub fn subscribe(&self, filter: &Filter) -> broadcast::Receiver<Arc<LiveMessage>> {
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let (channels, key, capacity) = match filter {
            Filter::Patient(p) => (&mut routes.patients, p, HUB_BUFFER_MAX),
            Filter::Clinic(c) => (&mut routes.clinics, c, HUB_CLINIC_BUFFER_MAX),
        };
        channels
            .entry(key.clone())
            .or_insert_with(|| broadcast::channel(capacity).0)
            .subscribe()
    }

    /// How many patient and clinic channels have listeners or had them until the last message (for tests).
    pub fn channels(&self) -> (usize, usize) {
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        (routes.patients.len(), routes.clinics.len())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::MessageKind;

    fn msg(patient: &str, clinic: &str, routine: bool) -> LiveMessage {
        LiveMessage {
            kind: if routine {
                MessageKind::Telemetry
            } else {
                MessageKind::Alarm
            },
            patient_id: patient.into(),
            clinic_id: clinic.into(),
            at_ms: 0,
            data: serde_json::Value::Null,
            routine,
        }
    }

    fn drain(rx: &mut broadcast::Receiver<Arc<LiveMessage>>) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        while let Ok(m) = rx.try_recv() {
            out.push((m.patient_id.clone(), m.routine));
        }
        out
    }

    #[test]
    fn each_stream_receives_only_what_it_shows() {
        let hub = Hub::default();
        let mut alex = hub.subscribe(&Filter::Patient("alex".into()));
        let mut clinic_a = hub.subscribe(&Filter::Clinic("a".into()));
        let mut clinic_b = hub.subscribe(&Filter::Clinic("b".into()));
        // Thousands of other pumps' routine telemetry never reach these streams' buffers.
        for i in 0..5_000 {
            hub.publish(msg(&format!("p{i}"), "a", true));
        }
        hub.publish(msg("alex", "a", true));
        hub.publish(msg("alex", "a", false));
        hub.publish(msg("jordan", "a", false));
        hub.publish(msg("kim", "b", false));
        assert_eq!(
            drain(&mut alex),
            [("alex".into(), true), ("alex".into(), false)]
        );
        assert_eq!(
            drain(&mut clinic_a),
            [("alex".into(), false), ("jordan".into(), false)],
            "the clinic's dashboards: every change that matters in the clinic, no routine telemetry, and no lag"
        );
        assert_eq!(drain(&mut clinic_b), [("kim".into(), false)]);
    }

    #[test]
    fn a_channel_nobody_listens_on_is_forgotten() {
        let hub = Hub::default();
        let rx = hub.subscribe(&Filter::Patient("alex".into()));
        let also = hub.subscribe(&Filter::Patient("alex".into()));
        assert_eq!(hub.channels(), (1, 0));
        drop(rx);
        hub.publish(msg("alex", "a", true));
        assert_eq!(hub.channels(), (1, 0), "one listener is left");
        drop(also);
        hub.publish(msg("alex", "a", true));
        assert_eq!(hub.channels(), (0, 0));
    }
}
