//! IHE PCD, in and out.
//!
//! In: one MLLP frame (from `crate::mllp`, the transport) is read whole by `pcd::parse_inbound`, the device is found
//! by the id its gateway sends (MSH-3.2, set by the clinic admin), and the message becomes the same batch the HTTP
//! pump link sends, handed to the same `services::ingest` (authority, bounds, durability before the ACK, the live
//! board). Nothing is stored unless the whole message is good. Duplicates: an ORU^R40's events are numbered from
//! its control id (`seq_of`), so a re-sent message hits the record's `(device, seq)` key and is stored once; an
//! ORU^R01 carries only telemetry, and a recently seen control id is acknowledged without applying it again.
//!
//! Out: every alarm the board raises or clears, and every acknowledgement, for real (not practice) alarms, is sent
//! as ORU^R40 to the configured alarm manager (`ServerConfig::pcd_out`) by one worker, in order, with retries;
//! every attempt is stored (`srv_pcd_attempts`) and the outcome is a `pcd_report_sent` event in the record.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use link::{LinkBatch, LinkEvent};
use pcd::profile::{AlarmReport, Header, Party};
use pcd::{AckCode, ErrorCode, Inactivation, Inbound, Phase, Rejection};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::config::ServerConfig;
use crate::domain::{EventDraft, LiveMessage, MessageKind, ServerKind};
use crate::error::AppError;
use crate::ids::new_id;
use crate::journal::Journal;
use crate::services::{AppState, now_ms};
use crate::store::Db;

/// ORU^R01 control ids remembered per device to recognise a re-sent report.
pub const RECENT_CONTROL_IDS: usize = 256;

/// Devices whose recent control ids are remembered; beyond this the whole memory is dropped (a re-sent telemetry
/// report applied twice changes nothing that is stored twice: telemetry is sampled).
pub const RECENT_DEVICES_MAX: usize = 10_000;

/// The PCD side of the server: recent ORU^R01 control ids and the outbound worker.
#[derive(Debug, Clone, Default)]
pub struct Pcd {
    recent: Arc<Mutex<HashMap<String, VecDeque<String>>>>,
    out: Option<PcdOut>,
}

impl Pcd {
    /// Start the outbound worker when an alarm manager is configured.
    pub fn start(db: Db, journal: Journal, config: &ServerConfig) -> Pcd {
        Pcd {
            recent: Arc::default(),
            out: config
                .pcd_out
                .clone()
                .map(|target| PcdOut::start(db, journal, config.clone(), target)),
        }
    }

    fn seen(&self, device_id: &str, control_id: &str) -> bool {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent
            .get(device_id)
            .is_some_and(|ids| ids.iter().any(|c| c == control_id))
    }

    fn remember(&self, device_id: &str, control_id: &str) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() >= RECENT_DEVICES_MAX && !recent.contains_key(device_id) {
            recent.clear();
        }
        let ids = recent.entry(device_id.to_string()).or_default();
        if ids.len() >= RECENT_CONTROL_IDS {
            ids.pop_front();
        }
        ids.push_back(control_id.to_string());
    }

    /// Hand a live message to the outbound worker (alarms raised and cleared, acknowledgements).
    pub fn observe(&self, message: &LiveMessage) {
        if let Some(out) = &self.out {
            out.observe(message);
        }
    }
}

/// The sequence number of event `index` of the message with this control id: 54 bits of SHA-256 of the control
/// id, then 8 bits of index, so below 2^62 (the pump range) and the same on every re-send.
pub fn seq_of(control_id: &str, index: usize) -> u64 {
    let digest = Sha256::digest(control_id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let hash = u64::from_be_bytes(first) & ((1 << 54) - 1);
    (hash << 8) | (index as u64 & 0xff)
}

/// Answer one MLLP frame's payload with an ACK (AA, or AE/AR with an ERR that says why).
pub async fn handle(state: &AppState, payload: &[u8]) -> String {
    let ack_id = new_id("ack");
    let now = jiff::Timestamp::now();
    let Ok(text) = std::str::from_utf8(payload) else {
        let r = Rejection::new(
            AckCode::AR,
            ErrorCode::DATA_TYPE,
            "the message is not UTF-8 (MSH-18 UNICODE UTF-8)",
        );
        return pcd::ack(None, &ack_id, now, Err(&r));
    };
    let inbound = match pcd::parse_inbound(text) {
        Ok(i) => i,
        Err(refused) => {
            return pcd::ack(
                refused.header.as_ref(),
                &ack_id,
                now,
                Err(&refused.rejection),
            );
        }
    };
    let header = Header {
        sender: inbound.sender().clone(),
        control_id: inbound.control_id().to_string(),
        trigger: match &inbound {
            Inbound::Observation(_) => "R01".into(),
            Inbound::Alarm(_) => "R40".into(),
        },
    };
    let result = apply(state, inbound).await;
    if let Err(r) = &result {
        eprintln!(
            "infusafe server: PCD message {:?} from {:?} refused: {r}",
            header.control_id, header.sender.id
        );
    }
    pcd::ack(Some(&header), &ack_id, now, result.as_ref().map(|_| ()))
}

fn application_error(e: AppError) -> Rejection {
    match e {
        AppError::Invalid { field, message } => Rejection::new(
            AckCode::AE,
            if field.ends_with(".kind") {
                ErrorCode::TABLE_VALUE_NOT_FOUND
            } else {
                ErrorCode::DATA_TYPE
            },
            format!("{field}: {message}"),
        ),
        AppError::Unavailable(m) => Rejection::new(
            AckCode::AE,
            ErrorCode::APPLICATION_INTERNAL,
            format!("{m}; nothing was stored, send the message again"),
        ),
        other => {
            eprintln!("infusafe server: PCD message not applied: {other:?}");
            Rejection::new(
                AckCode::AE,
                ErrorCode::APPLICATION_INTERNAL,
                "internal error; nothing was stored, send the message again",
            )
        }
    }
}

/// Apply a whole, parsed message to the pump's patient, through the pump link's own ingest.
async fn apply(state: &AppState, inbound: Inbound) -> Result<(), Rejection> {
    let sender = inbound.sender().id.clone();
    let device = crate::services::directory::device_by_pcd_id(state, &sender)
        .await
        .map_err(application_error)?
        .ok_or_else(|| {
            Rejection::new(
                AckCode::AE,
                ErrorCode::UNKNOWN_KEY,
                format!(
                    "no pump has the PCD device id {sender:?}; the clinic admin sets it on the pump (pcd_device_id)"
                ),
            )
            .at("MSH", 1, 3, 2)
        })?;
    let control_id = inbound.control_id().to_string();
    let batch = match &inbound {
        Inbound::Observation(o) => {
            if state.pcd.seen(&device.id, &control_id) {
                return Ok(());
            }
            if let Some(v) = o.vtbi_ml {
                let max = link::Bounds::of_pump().vtbi_ml_max;
                if !(0.0..=max).contains(&v) {
                    return Err(Rejection::new(
                        AckCode::AE,
                        ErrorCode::DATA_TYPE,
                        format!("VTBI {v} mL is outside 0 to {max} mL"),
                    ));
                }
            }
            LinkBatch {
                events: vec![],
                telemetry: Some(link::pcdlink::telemetry_of(o)),
            }
        }
        Inbound::Alarm(a) => LinkBatch {
            events: link::pcdlink::events_of(a)
                .into_iter()
                // A gateway that reports an open alarm again (`present`, a repeated `start` under a new control
                // id) adds nothing: the record keeps one alarm_raised per occurrence.
                .filter(|(kind, _)| {
                    kind != "alarm_raised"
                        || !state
                            .board
                            .with(|b| b.is_open(&device.patient_id, &device.id, &a.alarm))
                })
                .enumerate()
                .map(|(i, (kind, data))| LinkEvent {
                    seq: seq_of(&control_id, i),
                    occurred_at: a.sent_at,
                    kind,
                    data,
                })
                .collect(),
            telemetry: None,
        },
    };
    link::validate_batch(&batch).map_err(|e| {
        Rejection::new(
            AckCode::AE,
            ErrorCode::DATA_TYPE,
            format!("{}: {}", e.field, e.message),
        )
    })?;
    crate::services::ingest::ingest(state, &device, batch)
        .await
        .map_err(application_error)?;
    if matches!(inbound, Inbound::Observation(_)) {
        state.pcd.remember(&device.id, &control_id);
    }
    Ok(())
}

/// Outbound alarm reports waiting at most before new ones are refused (and logged).
pub const OUT_QUEUE_MAX: usize = 10_000;

/// One alarm phase to report.
#[derive(Debug, Clone, PartialEq)]
struct OutReport {
    patient_id: String,
    alarm: String,
    alarm_id: String,
    phase: Phase,
    inactivation: Inactivation,
    priority: Option<pump::Priority>,
}

/// The outbound worker's handle.
#[derive(Debug, Clone)]
pub struct PcdOut {
    sender: mpsc::Sender<OutReport>,
    /// Real alarms reported open: (patient, alarm name) → the alarm's id.
    open: Arc<Mutex<HashMap<(String, String), String>>>,
}

impl PcdOut {
    fn start(db: Db, journal: Journal, config: ServerConfig, target: String) -> PcdOut {
        let (sender, mut receiver) = mpsc::channel::<OutReport>(OUT_QUEUE_MAX);
        tokio::spawn(async move {
            let mut client = link::pcdlink::MllpClient::new(&target, config.webhook_timeout);
            // One at a time, in order: an alarm manager must see a start before its end.
            while let Some(report) = receiver.recv().await {
                deliver(&db, &journal, &config, &mut client, report).await;
            }
        });
        PcdOut {
            sender,
            open: Arc::default(),
        }
    }

    fn queue(&self, report: OutReport) {
        if let Err(e) = self.sender.try_send(report) {
            eprintln!("infusafe server: PCD outbound queue full, alarm report dropped: {e}");
        }
    }

    fn observe(&self, m: &LiveMessage) {
        let alarm_name = |v: &Value| v.get("alarm").and_then(Value::as_str).map(str::to_string);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let report = match m.kind {
            MessageKind::Alarm => {
                let view = &m.data["alarm"];
                if view["teaching"].as_bool() == Some(true) {
                    return;
                }
                let (Some(alarm), Some(id)) = (alarm_name(view), view["id"].as_str()) else {
                    return;
                };
                let priority = view["priority"]
                    .as_str()
                    .and_then(pump::Priority::from_name);
                open.insert((m.patient_id.clone(), alarm.clone()), id.to_string());
                OutReport {
                    patient_id: m.patient_id.clone(),
                    alarm,
                    alarm_id: id.to_string(),
                    phase: Phase::Start,
                    inactivation: Inactivation::Enabled,
                    priority,
                }
            }
            MessageKind::AlarmCleared | MessageKind::Acknowledged => {
                let Some(alarm) = alarm_name(&m.data) else {
                    return;
                };
                let key = (m.patient_id.clone(), alarm.clone());
                // Only alarms reported open (a practice alarm never was).
                let Some(id) = open.get(&key).cloned() else {
                    return;
                };
                let cleared = m.kind == MessageKind::AlarmCleared;
                if cleared {
                    open.remove(&key);
                }
                OutReport {
                    patient_id: m.patient_id.clone(),
                    alarm,
                    alarm_id: id,
                    phase: if cleared { Phase::End } else { Phase::Continue },
                    inactivation: if cleared {
                        Inactivation::Enabled
                    } else {
                        Inactivation::AlertAcknowledged
                    },
                    priority: None,
                }
            }
            _ => return,
        };
        drop(open);
        self.queue(report);
    }
}

/// Send one report until it is acknowledged AA or the attempts run out (an AR is final: the receiver will never
/// take it); store every attempt and record the outcome.
async fn deliver(
    db: &Db,
    journal: &Journal,
    config: &ServerConfig,
    client: &mut link::pcdlink::MllpClient,
    report: OutReport,
) {
    let patient = crate::store::directory::patient(db, &report.patient_id)
        .await
        .ok()
        .flatten()
        .map(|(_, name)| (report.patient_id.clone(), name));
    let control_id = new_id("pcd");
    let state = if report.phase == Phase::End {
        "inactive"
    } else {
        "active"
    };
    let message = pcd::build_alarm(&AlarmReport {
        sender: Party::infusafe(),
        control_id: control_id.clone(),
        sent_at: jiff::Timestamp::now(),
        patient,
        alarm_id: report.alarm_id.clone(),
        alarm: report.alarm.clone(),
        phase: report.phase,
        state: state.into(),
        inactivation: report.inactivation,
        priority: report.priority,
        text: None,
    });
    let mut backoff = config.webhook_backoff_first;
    let mut delivered = false;
    let mut attempts = 0;
    for attempt in 1..=config.webhook_attempts_max {
        attempts = attempt;
        let (ack_code, error) = match client.send(&message).await {
            Ok(reply) if reply.code == AckCode::AA => (Some("AA".to_string()), None),
            Ok(reply) => (
                Some(reply.code.name().to_string()),
                Some(
                    reply
                        .error
                        .map(|(c, t)| format!("HL7 error {c}: {t}"))
                        .unwrap_or_else(|| "refused without an ERR segment".into()),
                ),
            ),
            Err(e) => (None, Some(e.to_string())),
        };
        delivered = error.is_none();
        let rejected = ack_code.as_deref() == Some("AR");
        let record = crate::store::pcd::Attempt {
            id: new_id("pca"),
            control_id: control_id.clone(),
            patient_id: report.patient_id.clone(),
            alarm: report.alarm.clone(),
            phase: report.phase.name().to_string(),
            target: client.addr().to_string(),
            attempt: i64::from(attempt),
            at_ms: now_ms(),
            ack_code,
            error,
            delivered,
        };
        if let Err(e) = crate::store::pcd::insert_attempt(db, &record).await {
            eprintln!("infusafe server: could not store a PCD attempt: {e}");
        }
        if delivered || rejected {
            break;
        }
        if attempt < config.webhook_attempts_max {
            tokio::time::sleep(backoff).await;
            backoff = backoff
                .saturating_mul(2)
                .min(std::time::Duration::from_secs(300));
        }
    }
    let payload = json!({
        "alarm": report.alarm, "alarm_id": report.alarm_id, "phase": report.phase.name(),
        "control_id": control_id, "to": client.addr(), "delivered": delivered, "attempts": attempts,
    });
    if let Err(e) = journal
        .append_one(EventDraft::system(
            &report.patient_id,
            ServerKind::PcdReportSent,
            now_ms(),
            payload,
        ))
        .await
    {
        eprintln!("infusafe server: could not record a PCD report's outcome: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_from_control_ids_are_stable_distinct_and_in_the_pump_range() {
        assert_eq!(seq_of("c-1", 0), seq_of("c-1", 0));
        assert_ne!(seq_of("c-1", 0), seq_of("c-2", 0));
        assert_ne!(seq_of("c-1", 0), seq_of("c-1", 1));
        for id in ["", "x", "a very long control id indeed", "\u{e9}"] {
            for i in [0, 1, 255] {
                assert!(seq_of(id, i) < link::PUMP_SEQ_MAX);
            }
        }
    }
}
