//! The board from the record at start, so a restarted server still shows (and keeps escalating) every alarm that
//! was raised and not cleared, with its acknowledgements and the highest rung it reached. Practice-pump alarms
//! are not restored: the practice pump did not survive the restart.

use crate::domain::board::{RestoredAlarm, RestoredEvent};
use crate::error::AppError;
use crate::services::AppState;

/// Register every patient and put back their active alarms.
pub async fn restore(state: &AppState) -> Result<(), AppError> {
    let teaching: std::collections::HashSet<String> =
        crate::store::directory::teaching_devices(&state.db)
            .await?
            .into_iter()
            .collect();
    for (patient_id, clinic_id) in crate::store::directory::all_patients(&state.db).await? {
        let alarms = active_alarms(state, &patient_id, &teaching).await?;
        state
            .board
            .with(|b| b.restore(&patient_id, &clinic_id, alarms));
    }
    Ok(())
}

/// A patient's active real alarms in the record, each with the acknowledgements and escalations written
/// about it since it was raised.
async fn active_alarms(
    state: &AppState,
    patient_id: &str,
    teaching: &std::collections::HashSet<String>,
) -> Result<Vec<RestoredAlarm>, AppError> {
    let store = state.journal.store();
    let Ok(patient) = record::PatientId::new(patient_id) else {
        return Ok(vec![]);
    };
    let active: Vec<_> = store
        .active_alarms(&patient)
        .await
        .map_err(|e| AppError::from(crate::journal::JournalError::Record(e)))?
        .into_iter()
        .filter(|a| !teaching.contains(&a.device_id))
        .collect();
    if active.is_empty() {
        return Ok(vec![]);
    }
    // Every time below is the server's (when the record received the event), never a pump's clock: a pump
    // stamping its alarm 2000-01-01 must not make the ladder think the nurse is long overdue after a restart.
    let query = record::TimelineQuery {
        patient,
        from: None,
        to: None,
        kinds: vec![
            record::Kind::AlarmRaised.name().into(),
            record::Kind::AlarmAcknowledged.name().into(),
            record::Kind::AlarmEscalated.name().into(),
        ],
        limit: None,
    };
    let history = store
        .timeline(&query)
        .await
        .map_err(|e| AppError::from(crate::journal::JournalError::Record(e)))?;
    Ok(active
        .into_iter()
        .map(|a| RestoredAlarm {
            raised_event: a.raised_event.0,
            priority: pump::Priority::from_name(&a.priority).unwrap_or(pump::Priority::High),
            raised_at_ms: history
                .iter()
                .find(|e| e.id == a.raised_event)
                // The server's own alarm keeps the time it was raised at (its id is made of it, the same in every
                // process); a pump's alarm the server's receipt time.
                .map(|e| {
                    if crate::domain::board::SERVER_ALARMS.contains(&a.alarm.as_str()) {
                        e.occurred_at
                    } else {
                        e.recorded_at
                    }
                })
                .unwrap_or(a.raised_at)
                .as_millisecond(),
            history: history
                .iter()
                .filter(|e| e.device_id == a.device_id && e.kind != "alarm_raised")
                .map(|e| RestoredEvent {
                    kind: e.kind.clone(),
                    at_ms: e.recorded_at.as_millisecond(),
                    source: e.source,
                    actor: e.actor.clone(),
                    payload: serde_json::from_str(&e.payload).unwrap_or_default(),
                })
                .collect(),
            alarm: a.alarm,
            device_id: a.device_id,
        })
        .collect())
}
