//! The log: the patient's timeline from the record with filters, and the two charts (volume delivered
//! against what the program expected, alarms per day) drawn as SVG on the server. The nurse's patient page
//! reuses the same pieces.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

use crate::error::AppError;
use crate::http::extract::WebUser;
use crate::services::AppState;
use crate::services::now_ms;
use crate::services::records::Entry;
use link::Telemetry;

use super::charts::{self, ChartConfig, DayAlarms, VolumePoint, VolumeSeries};
use super::common::{self, patient_base, patient_layout};
use super::view::{EntryView, LogPage, SelectOption, format_time, html, iso_time, priority_class};

/// Entries shown on one page of the timeline; older ones are reached by narrowing the filter.
pub const ENTRIES_SHOWN_MAX: usize = 200;
/// Events read to draw the charts and fill the timeline.
const EVENTS_READ_MAX: usize = 5000;

/// The filter choices: (value, label, event kinds; empty = everything a patient cares about).
const KINDS: [(&str, &str, &[&str]); 7] = [
    ("all", "Everything", &[]),
    (
        "own",
        "How I felt, my site, questions",
        &[
            "how_i_felt",
            "site_seen",
            "question_asked",
            "question_answered",
        ],
    ),
    (
        "alarms",
        "Alarms",
        &[
            "alarm_raised",
            "alarm_cleared",
            "alarm_acknowledged",
            "alarm_silenced",
            "alarm_escalated",
            "alarm_step_done",
        ],
    ),
    (
        "checklists",
        "Checklists",
        &["checklist_answered", "checklist_completed"],
    ),
    ("symptoms", "Symptom checks", &["symptom_check"]),
    (
        "pump",
        "Pump and infusions",
        &[
            "program_accepted",
            "infusion_started",
            "infusion_paused",
            "infusion_resumed",
            "infusion_stopped",
            "infusion_completed",
            "bolus_given",
            "bolus_denied",
            "device_assigned",
        ],
    ),
    (
        "access",
        "Who looked at the record",
        &["record_read", "login", "plan_changed"],
    ),
];

/// Kinds hidden from "Everything" because they would drown the rest (reads are under their own filter;
/// telemetry snapshots feed the volume chart).
const NOISY: [&str; 3] = ["record_read", "login", "telemetry"];

const PERIODS: [(u32, &str); 4] = [
    (1, "Today and last night (24 hours)"),
    (7, "Last 7 days"),
    (30, "Last 30 days"),
    (90, "Last 90 days"),
];

#[derive(Deserialize, Default)]
pub struct LogQuery {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    days: Option<String>,
    /// `practice=1`: include the practice pump's events (left out by default).
    #[serde(default)]
    practice: Option<String>,
}

/// What the filters resolved to: unknown values fall back to the defaults instead of failing, because
/// they come from a URL a person may have typed or kept.
pub struct Filter {
    pub kind: &'static str,
    pub days: u32,
    /// Show events of the practice pump (teaching); without it they stay out of the log and its charts.
    pub practice: bool,
}

impl Filter {
    pub fn from_query(q: &LogQuery) -> Filter {
        let kind = KINDS
            .iter()
            .map(|k| k.0)
            .find(|k| Some(*k) == q.kind.as_deref())
            .unwrap_or("all");
        let days = q
            .days
            .as_deref()
            .and_then(|d| d.parse().ok())
            .filter(|d| PERIODS.iter().any(|p| p.0 == *d))
            .unwrap_or(7);
        let practice = matches!(q.practice.as_deref(), Some("1" | "on" | "true" | "yes"));
        Filter {
            kind,
            days,
            practice,
        }
    }

    fn accepts(&self, kind: &str) -> bool {
        let kinds = KINDS
            .iter()
            .find(|k| k.0 == self.kind)
            .map(|k| k.2)
            .unwrap_or(&[]);
        if kinds.is_empty() {
            !NOISY.contains(&kind)
        } else {
            kinds.contains(&kind)
        }
    }
}

pub fn entry_view(e: &Entry, now: i64) -> EntryView {
    let priority = e
        .payload
        .get("priority")
        .and_then(Value::as_str)
        .unwrap_or("");
    let class = match e.kind.as_str() {
        "alarm_raised" | "alarm_escalated" => pump::Priority::from_name(priority)
            .map(priority_class)
            .unwrap_or(""),
        "symptom_check" if e.payload.get("level").and_then(Value::as_str) == Some("emergency") => {
            "high"
        }
        "checklist_answered"
            if e.payload.get("answer").and_then(Value::as_str) == Some("problem") =>
        {
            "medium"
        }
        _ => "",
    };
    EntryView {
        at_iso: iso_time(e.occurred_at.as_millisecond()),
        at_label: format_time(now, e.occurred_at.as_millisecond()),
        title: common::event_title(&e.kind, &e.payload),
        detail: common::event_detail(&e.kind, &e.payload),
        who: common::event_who(&e.payload),
        class,
        teaching: e.teaching,
    }
}

/// Alarms raised per local day over the last `days` days, oldest first, by priority.
pub fn alarms_per_day(events: &[Entry], days: u32, now: i64) -> Vec<DayAlarms> {
    let tz = jiff::tz::TimeZone::system();
    let Ok(today) =
        jiff::Timestamp::from_millisecond(now).map(|t| t.to_zoned_datetime(tz.clone()).date())
    else {
        return Vec::new();
    };
    let mut by_day: BTreeMap<jiff::civil::Date, DayAlarms> = BTreeMap::new();
    for back in 0..days {
        if let Ok(d) = today.checked_sub(jiff::Span::new().days(i64::from(back))) {
            by_day.insert(
                d,
                DayAlarms {
                    day_label: d.strftime("%-d %b").to_string(),
                    ..DayAlarms::default()
                },
            );
        }
    }
    for e in events.iter().filter(|e| e.kind == "alarm_raised") {
        let Ok(at) = jiff::Timestamp::from_millisecond(e.occurred_at.as_millisecond()) else {
            continue;
        };
        let day = at.to_zoned_datetime(tz.clone()).date();
        if let Some(entry) = by_day.get_mut(&day) {
            match e
                .payload
                .get("priority")
                .and_then(Value::as_str)
                .unwrap_or("high")
            {
                "low" => entry.low += 1,
                "medium" => entry.medium += 1,
                _ => entry.high += 1,
            }
        }
    }
    by_day.into_values().collect()
}

/// The record's kind for the beginning of an infusion.
const START_KINDS: [&str; 1] = ["infusion_started"];

/// The latest infusion: volume reported since its start, and what the plan's program expected by then
/// (rate × running time, capped at the volume to be infused). Empty when no start is in the events.
pub fn volume_series(
    events: &[Entry],
    telemetry: Option<(&Telemetry, i64)>,
    plan: Option<&Value>,
    now: i64,
) -> VolumeSeries {
    // Events are newest first.
    let Some(start) = events
        .iter()
        .find(|e| START_KINDS.contains(&e.kind.as_str()))
    else {
        return VolumeSeries::default();
    };
    let t0 = start.occurred_at.as_millisecond();
    let mut delivered = vec![VolumePoint {
        at_s: 0.0,
        volume_ml: 0.0,
    }];
    let mut later: Vec<&Entry> = events
        .iter()
        .filter(|e| e.occurred_at.as_millisecond() > t0)
        .collect();
    later.reverse();
    for e in later {
        if let Some(v) = e.payload.get("delivered_ml").and_then(Value::as_f64) {
            delivered.push(VolumePoint {
                at_s: (e.occurred_at.as_millisecond() - t0) as f64 / 1000.0,
                volume_ml: v,
            });
        }
    }
    let mut end_ms = now;
    if let Some((t, at)) = telemetry
        && at >= t0
    {
        delivered.push(VolumePoint {
            at_s: (at - t0) as f64 / 1000.0,
            volume_ml: t.delivered_ml,
        });
        end_ms = end_ms.max(at);
    }
    let program = plan.and_then(|p| p.get("program"));
    let rate = program
        .and_then(|p| p.get("rate_ml_per_h"))
        .and_then(Value::as_f64)
        .filter(|r| *r > 0.0);
    let vtbi = program
        .and_then(|p| p.get("vtbi_ml"))
        .and_then(Value::as_f64)
        .filter(|v| *v > 0.0);
    let mut expected = Vec::new();
    if let (Some(rate), Some(vtbi)) = (rate, vtbi) {
        let full_s = vtbi / rate * 3600.0;
        let span_s = ((end_ms - t0) as f64 / 1000.0).max(0.0);
        expected.push(VolumePoint {
            at_s: 0.0,
            volume_ml: 0.0,
        });
        if span_s >= full_s {
            expected.push(VolumePoint {
                at_s: full_s,
                volume_ml: vtbi,
            });
            expected.push(VolumePoint {
                at_s: span_s,
                volume_ml: vtbi,
            });
        } else {
            expected.push(VolumePoint {
                at_s: span_s,
                volume_ml: rate * span_s / 3600.0,
            });
        }
    }
    VolumeSeries {
        delivered,
        expected,
        origin_label: format!("the start at {}", format_time(now, t0)),
    }
}

/// Both charts' SVG for a patient over `days`. `telemetry` must be the real pump's (not a practice pump's).
pub fn charts_svg(
    events: &[Entry],
    telemetry: Option<(&Telemetry, i64)>,
    plan: Option<&Value>,
    days: u32,
    now: i64,
) -> (String, String) {
    // The charts are clinical: practice-pump (teaching) events and telemetry are left out of them (the
    // timeline still lists them, marked as practice).
    let clinical: Vec<Entry> = events.iter().filter(|e| !e.teaching).cloned().collect();
    let cfg = ChartConfig::default();
    let volume = charts::volume_chart(&volume_series(&clinical, telemetry, plan, now), cfg);
    let alarms = charts::alarms_per_day_chart(
        &alarms_per_day(&clinical, days.min(31), now),
        ChartConfig {
            height: 260.0,
            ..cfg
        },
    );
    (volume, alarms)
}

/// `GET /p/{patient}/log`
pub async fn page(
    State(state): State<AppState>,
    user: WebUser,
    Path(patient_id): Path<String>,
    Query(q): Query<LogQuery>,
) -> Result<Response, AppError> {
    let access = common::read_access(&state, &user, &patient_id).await?;
    let filter = Filter::from_query(&q);
    let now = now_ms();
    let since = now - i64::from(filter.days) * 24 * 3600 * 1000;
    // The charts read the telemetry table as well as the legacy `telemetry` events.
    let events: Vec<Entry> = crate::services::records::timeline_with_telemetry(
        &state,
        &patient_id,
        EVENTS_READ_MAX,
        i64::from(filter.days),
    )
    .await?
    .into_iter()
    .filter(|e| e.occurred_at.as_millisecond() >= since)
    .filter(|e| filter.practice || !e.teaching)
    .collect();
    let snapshot = crate::services::alarms::snapshot(&state, &access);
    let plan = common::load_plan(&state, &access).await;
    let telemetry = snapshot
        .telemetry
        .as_ref()
        .zip(snapshot.telemetry_at_ms)
        .filter(|_| !snapshot.teaching);
    let (volume_svg, alarms_svg) = charts_svg(&events, telemetry, plan.as_ref(), filter.days, now);
    let matching: Vec<&Entry> = events.iter().filter(|e| filter.accepts(&e.kind)).collect();
    let truncated = matching.len() > ENTRIES_SHOWN_MAX;
    let entries = matching
        .into_iter()
        .take(ENTRIES_SHOWN_MAX)
        .map(|e| entry_view(e, now))
        .collect();
    let layout = patient_layout(&state, &access, "Log", "log", false).await;
    let words = super::person::PersonWords::new(&user, &access.display_name);
    Ok(html(&LogPage {
        layout,
        heading: format!("{} log", words.whose_capital()),
        show_practice: filter.practice,
        self_href: format!("{}/log", patient_base(&patient_id)),
        kinds: KINDS
            .iter()
            .map(|k| SelectOption {
                value: k.0.into(),
                label: k.1.into(),
                selected: k.0 == filter.kind,
            })
            .collect(),
        periods: PERIODS
            .iter()
            .map(|p| SelectOption {
                value: p.0.to_string(),
                label: p.1.into(),
                selected: p.0 == filter.days,
            })
            .collect(),
        volume_svg,
        alarms_svg,
        entries,
        truncated,
        write_links: if user.role.is_clinician() {
            Vec::new()
        } else {
            let titles = super::log_words::form_titles(&words);
            ["felt", "site", "question"]
                .into_iter()
                .zip(titles)
                .map(|(form, label)| super::view::WriteLink {
                    href: format!("{}/log/{form}", patient_base(&patient_id)),
                    label,
                })
                .collect()
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(kind: &str, at_ms: i64, payload: Value) -> Entry {
        let at = jiff::Timestamp::from_millisecond(at_ms).unwrap_or_default();
        Entry {
            id: at_ms,
            patient_id: "p".into(),
            kind: kind.into(),
            source: "pump".into(),
            actor: String::new(),
            device_id: String::new(),
            occurred_at: at,
            local_offset_s: 0,
            recorded_at: at,
            payload,
            teaching: false,
        }
    }

    #[test]
    fn filters_fall_back_to_defaults() {
        let f = Filter::from_query(&LogQuery {
            kind: Some("<script>".into()),
            days: Some("9999".into()),
            practice: Some("maybe".into()),
        });
        assert_eq!((f.kind, f.days, f.practice), ("all", 7, false));
        assert!(!f.accepts("record_read"));
        let f = Filter::from_query(&LogQuery {
            kind: Some("access".into()),
            days: Some("30".into()),
            practice: Some("1".into()),
        });
        assert_eq!((f.kind, f.days, f.practice), ("access", 30, true));
        assert!(f.accepts("record_read"));
        assert!(!f.accepts("alarm_raised"));
    }

    #[test]
    fn volume_series_follows_the_latest_start_and_caps_expected_at_vtbi() {
        let hour = 3_600_000;
        let t0 = 10 * hour;
        // Newest first, as the journal returns them.
        let events = vec![
            event("infusion_stopped", t0 + hour, json!({"delivered_ml": 40.0})),
            event("infusion_started", t0, json!({})),
            event("infusion_started", t0 - 5 * hour, json!({})),
        ];
        let plan = json!({"program": {"rate_ml_per_h": 50.0, "vtbi_ml": 100.0}});
        let s = volume_series(&events, None, Some(&plan), t0 + 3 * hour);
        assert_eq!(s.delivered.len(), 2);
        assert_eq!(s.delivered[1].volume_ml, 40.0);
        assert_eq!(s.expected.last().map(|p| p.volume_ml), Some(100.0));
        assert_eq!(s.expected[1].at_s, 2.0 * 3600.0);
        // No start: nothing to draw.
        assert!(
            volume_series(&events[..1], None, Some(&plan), t0)
                .delivered
                .is_empty()
        );
    }

    #[test]
    fn alarms_are_counted_per_day_and_priority() {
        let now = 1_700_000_000_000;
        let events = vec![
            event("alarm_raised", now - 1000, json!({"priority": "high"})),
            event("alarm_raised", now - 2000, json!({"priority": "low"})),
            event("alarm_cleared", now - 3000, json!({})),
            event(
                "alarm_raised",
                now - 40 * 24 * 3_600_000,
                json!({"priority": "high"}),
            ),
        ];
        let days = alarms_per_day(&events, 7, now);
        assert_eq!(days.len(), 7);
        let last = days.last().cloned().unwrap_or_default();
        assert_eq!((last.high, last.medium, last.low), (1, 0, 1));
        assert_eq!(
            days.iter().map(|d| d.high + d.medium + d.low).sum::<u32>(),
            2
        );
    }
}
