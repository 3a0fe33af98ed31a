//! A pump's batch, from the link to the board: every event is checked against who may write it (a pump writes
//! only what the pump itself saw and did, and corrects only its own events), stamped with the server's receipt
//! time where the pump's clock is far off, stored first (one transaction, de-duplicated by the pump's sequence
//! numbers: acknowledged means durable), then the new ones go to the board, whose effects (follow-up events,
//! live messages, escalations) are carried out, and the pump gets its queued commands back.

use link::{BatchResponse, LinkBatch, LinkEvent};
use serde_json::json;

use crate::domain::authority::pump_may_send;
use crate::domain::{Device, EventDraft, EventKind, Origin, PumpEvent};
use crate::error::AppError;
use crate::services::{AppState, now_ms};

/// A pump clock this far ahead of the server's is wrong: the event is stored as the pump sent it (so a re-sent
/// batch stays the same), a `pump_clock_skew` event records which events and by how much, and nothing the board
/// decides uses the pump's time.
pub const PUMP_CLOCK_AHEAD_MAX_MS: i64 = 2 * 60_000;
/// An event this much older than its receipt did not wait in a pump's outbox during an outage: the pump's clock
/// is wrong, and the event is stored like one from the future.
pub const PUMP_CLOCK_BEHIND_MAX_MS: i64 = 24 * 60 * 60_000;

/// How far the pump's clock is from the server's for this event (positive: ahead), and whether that is beyond
/// what a delayed send explains.
pub fn clock_skew_ms(occurred_at_ms: i64, received_at_ms: i64) -> (i64, bool) {
    let skew = occurred_at_ms.saturating_sub(received_at_ms);
    (
        skew,
        !(-PUMP_CLOCK_BEHIND_MAX_MS..=PUMP_CLOCK_AHEAD_MAX_MS).contains(&skew),
    )
}

/// Refuse, naming the event, anything a pump may not write.
async fn check_authority(
    state: &AppState,
    device: &Device,
    events: &[LinkEvent],
) -> Result<(), AppError> {
    for (i, e) in events.iter().enumerate() {
        let alarm = e.data.get("alarm").and_then(|a| a.as_str());
        pump_may_send(&e.kind, alarm).map_err(|refusal| {
            AppError::invalid(format!("events[{i}].kind"), refusal.to_string())
        })?;
        if record::Kind::from_name(&e.kind) == Some(record::Kind::Correction) {
            check_correction(state, device, i, &e.data).await?;
        }
    }
    Ok(())
}

/// A pump may correct only its own events.
async fn check_correction(
    state: &AppState,
    device: &Device,
    index: usize,
    data: &serde_json::Value,
) -> Result<(), AppError> {
    let field = format!("events[{index}].data.supersedes");
    let Some(id) = data.get("supersedes").and_then(|v| v.as_i64()) else {
        return Err(AppError::invalid(
            field,
            "name the id of the event this corrects",
        ));
    };
    let patient = record::PatientId::new(device.patient_id.clone()).map_err(AppError::internal)?;
    let events = state
        .journal
        .store()
        .timeline(&record::TimelineQuery::all(patient))
        .await
        .map_err(|e| AppError::from(crate::journal::JournalError::Record(e)))?;
    // The pump's own words only: events the server or a person wrote about this pump (an acknowledgement,
    // `pump_silent`, a rung, the clock-skew note) carry its device id too, and are not the pump's to correct.
    let own = events
        .iter()
        .any(|e| e.id.0 == id && e.device_id == device.id && e.source == record::Source::Pump);
    if own {
        Ok(())
    } else {
        Err(AppError::invalid(
            field,
            format!(
                "event {id} is not one of this pump's events; a pump may correct only what it sent itself"
            ),
        ))
    }
}

/// The record events of a batch: the pump's own kinds and data, with the device and sequence number added to
/// the payload so the record alone shows which pump said what.
fn drafts(device: &Device, batch: &LinkBatch, received_at_ms: i64) -> Vec<(EventDraft, PumpEvent)> {
    batch
        .events
        .iter()
        .map(|e| {
            let mut payload = e.data.clone();
            if payload.is_null() {
                payload = json!({});
            }
            let pump_time_ms = e.occurred_at.as_millisecond();
            let (skew_ms, _) = clock_skew_ms(pump_time_ms, received_at_ms);
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
                occurred_at_ms: pump_time_ms,
                payload,
                device_id: Some(device.id.clone()),
                device_seq: Some(e.seq),
                teaching: device.teaching,
            };
            let event = PumpEvent {
                // Known once stored; set from the append's receipt.
                record_id: 0,
                kind: e.kind.clone(),
                data: e.data.clone(),
                clock_skew_ms: skew_ms,
            };
            (draft, event)
        })
        .collect()
}

/// Record, once per batch, which newly stored events came stamped by a wrong pump clock, and by how much.
async fn record_clock_skew(
    state: &AppState,
    device: &Device,
    events: &[LinkEvent],
    accepted: &[u64],
    received_at_ms: i64,
) -> Result<(), AppError> {
    let skewed: Vec<(u64, i64)> = events
        .iter()
        .filter(|e| accepted.contains(&e.seq))
        .map(|e| {
            (
                e.seq,
                clock_skew_ms(e.occurred_at.as_millisecond(), received_at_ms),
            )
        })
        .filter(|(_, (_, wrong))| *wrong)
        .map(|(seq, (skew, _))| (seq, skew))
        .collect();
    let Some(&(_, worst_ms)) = skewed.iter().max_by_key(|(_, skew)| skew.unsigned_abs()) else {
        return Ok(());
    };
    let draft = EventDraft::system(
        &device.patient_id,
        crate::domain::ServerKind::PumpClockSkew,
        received_at_ms,
        json!({"device_id": device.id, "seqs": skewed.iter().map(|s| s.0).collect::<Vec<_>>(), "skew_ms": worst_ms,
               "note": "the pump's clock is wrong; alarms and escalation use the server's time"}),
    )
    .for_device(Some(&device.id))
    .teaching(device.teaching);
    state.journal.append_one(draft).await?;
    Ok(())
}

/// Store a pump's batch and update the live picture. Duplicate sequence numbers are acknowledged and ignored; a
/// report of the state the pump last reported is acknowledged and counted, not chained (`record::restate`).
pub async fn ingest(
    state: &AppState,
    device: &Device,
    batch: LinkBatch,
) -> Result<BatchResponse, AppError> {
    check_authority(state, device, &batch.events).await?;
    // With several processes: held until the board has applied (and announced) these events, so this process's
    // follower cannot take them in silently first (it would, as this process's own, and the board would then
    // find the alarm already there and announce nothing).
    let _applying = if batch.events.is_empty() {
        None
    } else {
        state.journal.applying(&device.patient_id).await
    };
    let received_at_ms = now_ms();
    let (drafts, events): (Vec<EventDraft>, Vec<PumpEvent>) =
        drafts(device, &batch, received_at_ms).into_iter().unzip();
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
        } else if a.restated {
            // Stored (counted against the report it repeats) but nothing new for the board.
            response.accepted.push(e.seq);
        } else {
            response.accepted.push(e.seq);
            fresh.push(PumpEvent {
                record_id: a.id,
                ..event
            });
        }
    }
    record_clock_skew(
        state,
        device,
        &batch.events,
        &response.accepted,
        received_at_ms,
    )
    .await?;
    response.commands =
        crate::services::alarms::apply_batch(state, device, &fresh, batch.telemetry).await?;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delayed_send_is_not_a_wrong_clock_but_the_far_past_and_the_future_are() {
        let now = 1_800_000_000_000;
        assert_eq!(clock_skew_ms(now - 5_000, now), (-5_000, false));
        assert!(
            !clock_skew_ms(now - 3 * 60 * 60_000, now).1,
            "three hours in an outbox"
        );
        assert!(
            !clock_skew_ms(now + 60_000, now).1,
            "a minute ahead is within tolerance"
        );
        assert!(
            clock_skew_ms(now + 3 * 60_000, now).1,
            "three minutes ahead"
        );
        assert!(clock_skew_ms(946_684_800_000, now).1, "2000-01-01");
        assert!(clock_skew_ms(i64::MIN, now).1);
    }
}
