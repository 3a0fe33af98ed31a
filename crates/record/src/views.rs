//! The derived views the screens need, computed from the timeline: active alarms, alarm counts per day,
//! and infusions with expected against delivered volume.
//!
//! They read events only, so they are the same on both backends; events superseded by a correction are
//! left out of every view (the correction says the earlier event was wrong).

use crate::error::RecordError;
use crate::event::{Body, EventId, Kind, PatientId, StoredEvent};
use crate::store::{Store, TimelineQuery};
use jiff::Timestamp;
use jiff::civil::Date;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};

/// An alarm raised and not yet cleared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActiveAlarm {
    pub device_id: String,
    pub alarm: String,
    pub priority: String,
    pub raised_at: Timestamp,
    pub raised_event: EventId,
    pub acknowledged: bool,
    pub silenced: bool,
}

/// How many times one alarm was raised on one local calendar day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlarmDayCount {
    /// The day where the patient was (the event's local offset applied).
    pub date: Date,
    pub alarm: String,
    pub count: u32,
}

/// How an infusion ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InfusionOutcome {
    /// No end recorded yet.
    InProgress,
    Completed,
    Stopped,
    /// A new infusion started on the same pump without an end for this one.
    NoEndRecorded,
}

/// One infusion: a start paired with the completion or stop that followed on the same pump.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Infusion {
    pub device_id: String,
    pub started_event: EventId,
    pub started_at: Timestamp,
    pub local_offset_s: i32,
    pub drug_id: Option<String>,
    pub rate_ml_per_h: f64,
    /// The volume to be infused (VTBI) programmed at the start.
    pub expected_ml: f64,
    pub ended_event: Option<EventId>,
    pub ended_at: Option<Timestamp>,
    /// The volume the pump reported at the end, if it ended.
    pub delivered_ml: Option<f64>,
    pub outcome: InfusionOutcome,
    pub teaching: bool,
}

impl Store {
    /// Ids of events that a later correction superseded.
    pub async fn superseded(&self, patient: &PatientId) -> Result<HashSet<EventId>, RecordError> {
        let corrections = self
            .timeline(&TimelineQuery {
                kinds: vec!["correction".into()],
                ..TimelineQuery::all(patient.clone())
            })
            .await?;
        Ok(corrections
            .iter()
            .filter_map(|event| match event.body() {
                Body::Correction { supersedes, .. } => Some(supersedes),
                _ => None,
            })
            .collect())
    }

    async fn current(&self, query: TimelineQuery) -> Result<Vec<StoredEvent>, RecordError> {
        let superseded = self.superseded(&query.patient).await?;
        let mut events = self.timeline(&query).await?;
        events.retain(|e| !superseded.contains(&e.id));
        Ok(events)
    }

    /// Alarms raised and not cleared, oldest first.
    pub async fn active_alarms(
        &self,
        patient: &PatientId,
    ) -> Result<Vec<ActiveAlarm>, RecordError> {
        let events = self
            .current(TimelineQuery {
                kinds: Kind::names(&[
                    Kind::AlarmRaised,
                    Kind::AlarmAcknowledged,
                    Kind::AlarmSilenced,
                    Kind::AlarmCleared,
                ]),
                ..TimelineQuery::all(patient.clone())
            })
            .await?;
        let mut active: BTreeMap<(String, String), ActiveAlarm> = BTreeMap::new();
        for event in events {
            let device = event.device_id.clone();
            match event.body() {
                Body::AlarmRaised {
                    alarm, priority, ..
                } => {
                    active
                        .entry((device.clone(), alarm.clone()))
                        .or_insert(ActiveAlarm {
                            device_id: device,
                            alarm,
                            priority,
                            raised_at: event.occurred_at,
                            raised_event: event.id,
                            acknowledged: false,
                            silenced: false,
                        });
                }
                Body::AlarmAcknowledged { alarm } => {
                    if let Some(a) = active.get_mut(&(device, alarm)) {
                        a.acknowledged = true;
                    }
                }
                Body::AlarmSilenced { alarm, .. } => {
                    if let Some(a) = active.get_mut(&(device, alarm)) {
                        a.silenced = true;
                    }
                }
                Body::AlarmCleared { alarm, .. } => {
                    active.remove(&(device, alarm));
                }
                _ => {}
            }
        }
        let mut out: Vec<ActiveAlarm> = active.into_values().collect();
        out.sort_by_key(|a| (a.raised_at, a.raised_event));
        Ok(out)
    }

    /// Alarms raised per local day and alarm name in `[from, to)`, for spotting patterns.
    pub async fn alarm_counts_by_day(
        &self,
        patient: &PatientId,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
    ) -> Result<Vec<AlarmDayCount>, RecordError> {
        let events = self
            .current(TimelineQuery {
                patient: patient.clone(),
                from,
                to,
                kinds: Kind::names(&[Kind::AlarmRaised]),
                limit: None,
            })
            .await?;
        let mut counts: BTreeMap<(Date, String), u32> = BTreeMap::new();
        for event in events {
            if let Body::AlarmRaised { alarm, .. } = event.body() {
                *counts.entry((local_date(&event), alarm)).or_default() += 1;
            }
        }
        Ok(counts
            .into_iter()
            .map(|((date, alarm), count)| AlarmDayCount { date, alarm, count })
            .collect())
    }

    /// Infusions started in `[from, to)`, each paired with the end that followed on the same pump.
    pub async fn infusions(
        &self,
        patient: &PatientId,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
    ) -> Result<Vec<Infusion>, RecordError> {
        // Ends may fall after `to`, so read to the end and drop starts outside the range afterwards.
        let events = self
            .current(TimelineQuery {
                patient: patient.clone(),
                from,
                to: None,
                kinds: Kind::names(&[
                    Kind::InfusionStarted,
                    Kind::InfusionCompleted,
                    Kind::InfusionStopped,
                ]),
                limit: None,
            })
            .await?;
        Ok(pair_infusions(&events, to))
    }
}

fn local_date(event: &StoredEvent) -> Date {
    let offset =
        jiff::tz::Offset::from_seconds(event.local_offset_s).unwrap_or(jiff::tz::Offset::UTC);
    offset.to_datetime(event.occurred_at).date()
}

/// Pairs starts with ends per pump, in time order.
pub(crate) fn pair_infusions(events: &[StoredEvent], to: Option<Timestamp>) -> Vec<Infusion> {
    let mut done: Vec<Infusion> = Vec::new();
    let mut open: BTreeMap<String, Infusion> = BTreeMap::new();
    for event in events {
        match event.body() {
            Body::InfusionStarted {
                drug_id,
                rate_ml_per_h,
                vtbi_ml,
            } => {
                if let Some(mut previous) = open.remove(&event.device_id) {
                    previous.outcome = InfusionOutcome::NoEndRecorded;
                    done.push(previous);
                }
                if to.is_some_and(|to| event.occurred_at >= to) {
                    continue;
                }
                open.insert(
                    event.device_id.clone(),
                    Infusion {
                        device_id: event.device_id.clone(),
                        started_event: event.id,
                        started_at: event.occurred_at,
                        local_offset_s: event.local_offset_s,
                        drug_id,
                        rate_ml_per_h,
                        expected_ml: vtbi_ml,
                        ended_event: None,
                        ended_at: None,
                        delivered_ml: None,
                        outcome: InfusionOutcome::InProgress,
                        teaching: event.teaching,
                    },
                );
            }
            Body::InfusionCompleted { delivered_ml } => {
                if let Some(mut infusion) = open.remove(&event.device_id) {
                    end(
                        &mut infusion,
                        event,
                        delivered_ml,
                        InfusionOutcome::Completed,
                    );
                    done.push(infusion);
                }
            }
            Body::InfusionStopped { delivered_ml, .. } => {
                if let Some(mut infusion) = open.remove(&event.device_id) {
                    end(&mut infusion, event, delivered_ml, InfusionOutcome::Stopped);
                    done.push(infusion);
                }
            }
            _ => {}
        }
    }
    done.extend(open.into_values());
    done.sort_by_key(|i| (i.started_at, i.started_event));
    done
}

fn end(infusion: &mut Infusion, event: &StoredEvent, delivered_ml: f64, outcome: InfusionOutcome) {
    infusion.ended_event = Some(event.id);
    infusion.ended_at = Some(event.occurred_at);
    infusion.delivered_ml = Some(delivered_ml);
    infusion.outcome = outcome;
}
