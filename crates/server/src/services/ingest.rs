//! A pump's batch, from the link to the board: the pump's events are stored first (one transaction, de-duplicated
//! by the pump's sequence numbers: acknowledged means durable), then the new ones go to the board, whose effects
//! (follow-up events, live messages, escalations) are carried out, and the pump gets its queued commands back.

use link::{BatchResponse, LinkBatch};
use serde_json::json;

use crate::domain::{Device, EventDraft, EventKind, Origin, PumpEvent};
use crate::error::AppError;
use crate::services::AppState;

/// The record events of a batch: the pump's own kinds and data, with the device and sequence number added to
/// the payload so the record alone shows which pump said what.
fn drafts(device: &Device, batch: &LinkBatch) -> Vec<(EventDraft, PumpEvent)> {
    batch
        .events
        .iter()
        .map(|e| {
            let mut payload = e.data.clone();
            if payload.is_null() {
                payload = json!({});
            }
            if let Some(obj) = payload.as_object_mut() {
                obj.insert("device_id".into(), json!(device.id));
                obj.insert("seq".into(), json!(e.seq));
            }
            let kind = match record::Kind::from_name(&e.kind) {
                Some(k) => EventKind::Record(k),
                None => EventKind::Pump(e.kind.clone()),
            };
            let draft = EventDraft {
                patient_id: device.patient_id.clone(),
                kind,
                origin: Origin::Pump,
                actor: Some(device.id.clone()),
                occurred_at_ms: e.occurred_at.as_millisecond(),
                payload,
                device_id: Some(device.id.clone()),
                device_seq: Some(e.seq),
                teaching: device.teaching,
            };
            let event = PumpEvent {
                kind: e.kind.clone(),
                occurred_at_ms: e.occurred_at.as_millisecond(),
                data: e.data.clone(),
            };
            (draft, event)
        })
        .collect()
}

/// Store a pump's batch and update the live picture. Duplicate sequence numbers are acknowledged and ignored.
pub async fn ingest(
    state: &AppState,
    device: &Device,
    batch: LinkBatch,
) -> Result<BatchResponse, AppError> {
    let (drafts, events): (Vec<EventDraft>, Vec<PumpEvent>) =
        drafts(device, &batch).into_iter().unzip();
    let appended = state.journal.append(drafts).await?;
    let mut response = BatchResponse {
        accepted: vec![],
        duplicates: vec![],
        commands: vec![],
    };
    let mut fresh = Vec::with_capacity(events.len());
    for ((e, event), a) in batch.events.iter().zip(events).zip(&appended) {
        if a.duplicate {
            response.duplicates.push(e.seq);
        } else {
            response.accepted.push(e.seq);
            fresh.push(event);
        }
    }
    response.commands =
        crate::services::alarms::apply_batch(state, device, &fresh, batch.telemetry).await?;
    Ok(response)
}
