//! The pump link over IHE PCD: the same events and telemetry as the HTTP link, carried as HL7 v2.6 ORU^R01
//! (telemetry) and ORU^R40 (alarm phases) over MLLP. Both directions of the mapping live here so the server (which
//! reads PCD) and the simulated pump (which speaks it) agree by construction; `MllpClient` is the one MLLP client,
//! used by the PCD pump and by the server's outbound alarm reports.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use pcd::profile::{AckReply, AlarmReport, Observation, Party};
use pcd::{Deframer, Inactivation, Phase};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::client::ClientError;
use crate::wire::{BatchResponse, Telemetry};

/// The link telemetry an observation report carries (its VTBI is checked against the bounds by the caller but
/// has no place in the live telemetry, which shows what remains).
pub fn telemetry_of(o: &Observation) -> Telemetry {
    Telemetry {
        state: o.state.clone(),
        rate_ml_per_h: o.rate_ml_per_h,
        delivered_ml: o.delivered_ml,
        remaining_ml: o.remaining_ml,
        minutes_left: o.minutes_left,
        battery_percent: o.battery_percent,
        battery_minutes_left: o.battery_minutes_left,
        downstream_pressure_mmhg: o.downstream_pressure_mmhg,
        mains_present: o.mains_present,
        active_alarms: vec![],
    }
}

/// The link events (kind, data) one alarm report stands for, in the record's vocabulary:
/// `start`, `start-only` and `present` raise; `end` and `reset` clear; any other phase acknowledges when the
/// inactivation state is `alert-acknowledged`, silences when it is a pause or an off, and is otherwise a report
/// that the alarm goes on (no event).
pub fn events_of(a: &AlarmReport) -> Vec<(String, Value)> {
    let id = &a.alarm_id;
    match a.phase {
        Phase::Start | Phase::StartOnly | Phase::Present => {
            let priority = a.priority.map(|p| p.name()).unwrap_or("high");
            let mut data = json!({"alarm": a.alarm, "priority": priority, "pcd_alarm_id": id});
            if let Some(text) = &a.text {
                data["detail"] = json!(text);
            }
            vec![("alarm_raised".into(), data)]
        }
        Phase::End | Phase::Reset => vec![(
            "alarm_cleared".into(),
            json!({"alarm": a.alarm, "pcd_alarm_id": id}),
        )],
        _ => match a.inactivation {
            Inactivation::AlertAcknowledged => vec![(
                "alarm_acknowledged".into(),
                json!({"alarm": a.alarm, "pcd_alarm_id": id}),
            )],
            Inactivation::AudioPaused
            | Inactivation::AudioOff
            | Inactivation::AlarmPaused
            | Inactivation::AlarmOff => vec![(
                "alarm_silenced".into(),
                json!({"alarm": a.alarm, "pcd_alarm_id": id}),
            )],
            Inactivation::Enabled => vec![],
        },
    }
}

/// Why an MLLP exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum MllpError {
    #[error("could not reach {addr}: {message}")]
    Connect { addr: String, message: String },
    #[error("no ACK within {0:?}")]
    Timeout(Duration),
    #[error("the connection closed before the ACK")]
    Closed,
    #[error("the answer is not MLLP: {0}")]
    Frame(pcd::FrameError),
    #[error("the answer is not an ACK: {0}")]
    Ack(String),
    #[error("{0}")]
    Io(String),
}

/// Largest ACK read.
pub const ACK_BYTES_MAX: usize = 64 * 1024;

/// An MLLP client: one connection, kept open and reopened after an error; one message at a time, each answered
/// by an ACK before the next is sent.
#[derive(Debug)]
pub struct MllpClient {
    addr: String,
    timeout: Duration,
    stream: Option<TcpStream>,
}

impl MllpClient {
    /// `addr` like `127.0.0.1:2575`.
    pub fn new(addr: &str, timeout: Duration) -> MllpClient {
        MllpClient {
            addr: addr.to_string(),
            timeout,
            stream: None,
        }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Send one message and read its ACK. On any error the connection is dropped (the next send reconnects).
    pub async fn send(&mut self, message: &str) -> Result<AckReply, MllpError> {
        let result = tokio::time::timeout(self.timeout, self.exchange(message)).await;
        match result {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) => {
                self.stream = None;
                Err(e)
            }
            Err(_) => {
                self.stream = None;
                Err(MllpError::Timeout(self.timeout))
            }
        }
    }

    async fn exchange(&mut self, message: &str) -> Result<AckReply, MllpError> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(&self.addr)
                .await
                .map_err(|e| MllpError::Connect {
                    addr: self.addr.clone(),
                    message: e.to_string(),
                })?;
            let _ = stream.set_nodelay(true);
            self.stream = Some(stream);
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err(MllpError::Closed);
        };
        stream
            .write_all(&pcd::frame(message.as_bytes()))
            .await
            .map_err(|e| MllpError::Io(e.to_string()))?;
        let mut deframer = Deframer::new(ACK_BYTES_MAX);
        let mut buf = [0u8; 4096];
        loop {
            let n = stream
                .read(&mut buf)
                .await
                .map_err(|e| MllpError::Io(e.to_string()))?;
            if n == 0 {
                return Err(MllpError::Closed);
            }
            let frames = deframer.push(&buf[..n]).map_err(MllpError::Frame)?;
            if let Some(frame) = frames.into_iter().next() {
                let text = String::from_utf8(frame).map_err(|e| MllpError::Ack(e.to_string()))?;
                return pcd::profile::parse_ack(&text).map_err(MllpError::Ack);
            }
        }
    }
}

/// One queued event with the control id it will be sent under (kept across retries, so a re-sent message is a
/// duplicate the server recognises).
#[derive(Debug, Clone)]
struct Queued {
    control_id: String,
    kind: String,
    at: jiff::Timestamp,
    data: Value,
}

/// The pump side of the PCD link: the simulated pump's events become ORU^R40 alarm phases and its telemetry an
/// ORU^R01, sent over MLLP in order; an event leaves the outbox only once acknowledged AA. Events that are not
/// alarm phases (infusion started, state changed, …) travel as the state in the next ORU^R01: PCD-04 carries
/// alarms only (the infusion events of IHE's IPEC profile are not implemented).
#[derive(Debug)]
pub struct PcdUplink {
    client: MllpClient,
    sender: Party,
    outbox: VecDeque<Queued>,
    next_control: u64,
    /// Open alarms and the id of their occurrence (the control id of their start message).
    open: HashMap<String, String>,
}

impl PcdUplink {
    /// A gateway known by `device_id` (an EUI-64, as the clinic registered it) sending to `addr` (HOST:PORT).
    pub fn new(addr: &str, device_id: &str) -> PcdUplink {
        let start = u64::try_from(jiff::Timestamp::now().as_microsecond()).unwrap_or(1);
        PcdUplink {
            client: MllpClient::new(addr, Duration::from_secs(10)),
            sender: Party::gateway(device_id),
            outbox: VecDeque::new(),
            next_control: start,
            open: HashMap::new(),
        }
    }

    fn control_id(&mut self) -> String {
        self.next_control += 1;
        self.next_control.to_string()
    }

    /// The ORU^R40 for a queued alarm event; `None` for events PCD-04 does not carry.
    fn alarm_message(&mut self, q: &Queued) -> Option<String> {
        let alarm = q.data.get("alarm").and_then(Value::as_str)?.to_string();
        let (phase, state, inactivation) = match q.kind.as_str() {
            "alarm_raised" => (Phase::Start, "active", Inactivation::Enabled),
            "alarm_cleared" => (Phase::End, "inactive", Inactivation::Enabled),
            "alarm_acknowledged" => (Phase::Continue, "active", Inactivation::AlertAcknowledged),
            "alarm_silenced" => (Phase::Continue, "active", Inactivation::AudioPaused),
            _ => return None,
        };
        let alarm_id = if phase == Phase::Start {
            self.open.insert(alarm.clone(), q.control_id.clone());
            q.control_id.clone()
        } else {
            self.open
                .get(&alarm)
                .cloned()
                .unwrap_or_else(|| q.control_id.clone())
        };
        if phase == Phase::End {
            self.open.remove(&alarm);
        }
        let priority = q
            .data
            .get("priority")
            .and_then(Value::as_str)
            .and_then(pump::Priority::from_name);
        Some(pcd::build_alarm(&AlarmReport {
            sender: self.sender.clone(),
            control_id: q.control_id.clone(),
            sent_at: q.at,
            patient: None,
            alarm_id,
            alarm,
            phase,
            state: state.into(),
            inactivation,
            priority: if phase == Phase::Start {
                priority
            } else {
                None
            },
            text: q
                .data
                .get("detail")
                .and_then(Value::as_str)
                .map(str::to_string),
        }))
    }

    async fn deliver(&mut self, message: &str) -> Result<(), ClientError> {
        let reply = self
            .client
            .send(message)
            .await
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        match reply.code {
            pcd::AckCode::AA => Ok(()),
            code => {
                let (err, text) = reply.error.unwrap_or((0, String::new()));
                Err(ClientError::Refused {
                    message: format!("ACK {} (HL7 error {err}): {text}", code.name()),
                })
            }
        }
    }
}

impl crate::simpump::Uplink for PcdUplink {
    fn push(&mut self, kind: &str, at: jiff::Timestamp, data: Value) {
        let control_id = self.control_id();
        self.outbox.push_back(Queued {
            control_id,
            kind: kind.to_string(),
            at,
            data,
        });
    }

    fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    async fn flush(&mut self, telemetry: Option<Telemetry>) -> Result<BatchResponse, ClientError> {
        while let Some(q) = self.outbox.front().cloned() {
            let open_before = self.open.clone();
            if let Some(message) = self.alarm_message(&q)
                && let Err(e) = self.deliver(&message).await
            {
                // Sent again later under the same control id, with the same alarm id.
                self.open = open_before;
                return Err(e);
            }
            self.outbox.pop_front();
        }
        if let Some(t) = telemetry {
            let o = Observation {
                sender: self.sender.clone(),
                control_id: self.control_id(),
                sent_at: jiff::Timestamp::now(),
                patient: None,
                state: t.state,
                rate_ml_per_h: t.rate_ml_per_h,
                vtbi_ml: None,
                remaining_ml: t.remaining_ml,
                delivered_ml: t.delivered_ml,
                minutes_left: t.minutes_left,
                battery_percent: t.battery_percent,
                battery_minutes_left: t.battery_minutes_left,
                downstream_pressure_mmhg: t.downstream_pressure_mmhg,
                mains_present: t.mains_present,
            };
            self.deliver(&pcd::build_observation(&o)).await?;
        }
        // PCD-04 has no way to hand a pump commands (PCD-05 is not implemented): acknowledgements on the screens
        // stay on the screens.
        Ok(BatchResponse {
            accepted: vec![],
            duplicates: vec![],
            commands: vec![],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(phase: Phase, inactivation: Inactivation) -> AlarmReport {
        AlarmReport {
            sender: Party::gateway("0012210000000001"),
            control_id: "c1".into(),
            sent_at: jiff::Timestamp::UNIX_EPOCH,
            patient: None,
            alarm_id: "a1".into(),
            alarm: "air_in_line".into(),
            phase,
            state: "active".into(),
            inactivation,
            priority: Some(pump::Priority::High),
            text: Some("bubble".into()),
        }
    }

    fn kinds(phase: Phase, inactivation: Inactivation) -> Vec<String> {
        events_of(&report(phase, inactivation))
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }

    #[test]
    fn each_phase_and_inactivation_state_becomes_the_documented_event() {
        use Inactivation::*;
        assert_eq!(kinds(Phase::Start, Enabled), ["alarm_raised"]);
        assert_eq!(kinds(Phase::StartOnly, Enabled), ["alarm_raised"]);
        assert_eq!(kinds(Phase::Present, Enabled), ["alarm_raised"]);
        assert_eq!(kinds(Phase::End, Enabled), ["alarm_cleared"]);
        assert_eq!(kinds(Phase::Reset, Enabled), ["alarm_cleared"]);
        assert_eq!(
            kinds(Phase::Continue, AlertAcknowledged),
            ["alarm_acknowledged"]
        );
        for paused in [AudioPaused, AudioOff, AlarmPaused, AlarmOff] {
            assert_eq!(kinds(Phase::Update, paused), ["alarm_silenced"]);
        }
        assert!(kinds(Phase::Continue, Enabled).is_empty());
        let (_, data) = events_of(&report(Phase::Start, Enabled)).remove(0);
        assert_eq!(
            data,
            json!({"alarm": "air_in_line", "priority": "high", "pcd_alarm_id": "a1", "detail": "bubble"})
        );
    }

    #[test]
    fn an_observation_is_the_link_telemetry_it_carries() {
        let o = Observation {
            sender: Party::gateway("x"),
            control_id: "c".into(),
            sent_at: jiff::Timestamp::UNIX_EPOCH,
            patient: None,
            state: "paused".into(),
            rate_ml_per_h: 0.0,
            vtbi_ml: Some(100.0),
            remaining_ml: 40.0,
            delivered_ml: 60.0,
            minutes_left: None,
            battery_percent: 55.0,
            battery_minutes_left: Some(120.0),
            downstream_pressure_mmhg: None,
            mains_present: Some(false),
        };
        let t = telemetry_of(&o);
        assert_eq!(
            (
                t.state.as_str(),
                t.remaining_ml,
                t.delivered_ml,
                t.battery_percent
            ),
            ("paused", 40.0, 60.0, 55.0)
        );
        assert_eq!(t.mains_present, Some(false));
        assert!(t.validate().is_ok());
    }
}
