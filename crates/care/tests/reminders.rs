//! Reminders: the occurrences the app shows (daily, every n days, weekly, end date, daylight saving), the
//! iCalendar format rules (CRLF, folding, escaping), and an independent check of the file with Python's
//! `icalendar` package that must agree with our own occurrences.

use std::io::Write;
use std::process::{Command, Stdio};

use care::jiff::{Timestamp, civil::date};
use care::reminders::{Recurrence, reminders, upcoming};
use care::{TherapyPlan, ical};
use proptest::prelude::*;

const ANTIBIOTICS: &str = include_str!("../../../examples/plans/antibiotics-picc.toml");
const EPIDURAL: &str = include_str!("../../../examples/plans/pain-epidural.toml");

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// The next `expect.len()` occurrences of reminder `id` after `after`, as local times with offset; an empty
/// `expect` means there is no further occurrence at all.
fn check(plan_text: &str, id: &str, after: &str, expect: &[&str]) {
    let plan = TherapyPlan::from_toml(plan_text).unwrap();
    let all = reminders(&plan);
    let reminder = all
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no reminder {id}"));
    let got: Vec<String> = reminder
        .occurrences_after(ts(after), expect.len().max(1))
        .into_iter()
        .map(|z| z.strftime("%Y-%m-%d %H:%M %:z").to_string())
        .collect();
    let got: Vec<&str> = got.iter().map(String::as_str).collect();
    assert_eq!(got, expect, "{id} after {after}");
}

#[test]
fn occurrences() {
    // Daily, from the start date; Amsterdam is +01:00 in winter.
    check(
        ANTIBIOTICS,
        "infusion_start-0800-0",
        "2026-11-01T00:00:00Z",
        &[
            "2026-11-26 08:00 +01:00",
            "2026-11-27 08:00 +01:00",
            "2026-11-28 08:00 +01:00",
            "2026-11-29 08:00 +01:00",
            "2026-11-30 08:00 +01:00",
            "2026-12-01 08:00 +01:00",
            "2026-12-02 08:00 +01:00",
            "2026-12-03 08:00 +01:00",
            "2026-12-04 08:00 +01:00",
            "2026-12-05 08:00 +01:00",
            "2026-12-06 08:00 +01:00",
            "2026-12-07 08:00 +01:00",
            "2026-12-08 08:00 +01:00",
            "2026-12-09 08:00 +01:00",
        ],
    );
    // The end date is inclusive and nothing follows it.
    check(
        ANTIBIOTICS,
        "infusion_start-2000-0",
        "2026-12-09T19:00:00Z",
        &[],
    );
    check(
        ANTIBIOTICS,
        "dressing_change-1000-4",
        "2026-12-03T09:00:00Z",
        &[],
    );
    check(
        ANTIBIOTICS,
        "infusion_start-2000-0",
        "2026-12-09T18:59:59Z",
        &["2026-12-09 20:00 +01:00"],
    );
    // Weekly on Thursdays.
    check(
        ANTIBIOTICS,
        "dressing_change-1000-4",
        "2026-11-20T00:00:00Z",
        &["2026-11-26 10:00 +01:00", "2026-12-03 10:00 +01:00"],
    );
    // Every second day, and across the daylight saving change in New York (8 March 2026): still 10:00 local.
    check(
        EPIDURAL,
        "supply_change-1000-2",
        "2026-03-04T00:00:00Z",
        &[
            "2026-03-05 10:00 -05:00",
            "2026-03-07 10:00 -05:00",
            "2026-03-09 10:00 -04:00",
            "2026-03-11 10:00 -04:00",
        ],
    );
    // Mondays and Thursdays.
    check(
        EPIDURAL,
        "battery-2200-3",
        "2026-03-01T00:00:00Z",
        &[
            "2026-03-02 22:00 -05:00",
            "2026-03-05 22:00 -05:00",
            "2026-03-09 22:00 -04:00",
        ],
    );
    // A time inside the spring-forward gap moves forward by the gap (RFC 5545 and jiff agree).
    let gap = EPIDURAL.replace("times = [\"08:30\"]", "times = [\"02:30\"]");
    check(
        &gap,
        "site_check-0230-1",
        "2026-03-07T12:00:00Z",
        &["2026-03-08 03:30 -04:00", "2026-03-09 02:30 -04:00"],
    );
    // A time in the autumn fold happens once, at its first instance.
    let fold = EPIDURAL.replace("times = [\"08:30\"]", "times = [\"01:30\"]");
    check(
        &fold,
        "site_check-0130-1",
        "2026-11-01T00:00:00Z",
        &["2026-11-01 01:30 -04:00", "2026-11-02 01:30 -05:00"],
    );
}

#[test]
fn reminders_as_data() {
    let plan = TherapyPlan::from_toml(ANTIBIOTICS).unwrap();
    let all = reminders(&plan);
    assert_eq!(all.len(), 7, "one reminder per schedule entry and time");
    let infusion = &all[0];
    assert_eq!(infusion.duration_min, 30, "100 mL at 200 mL/h");
    assert!(
        infusion
            .description
            .starts_with("From your care team: Take the bag out"),
        "personal words first"
    );
    assert!(
        infusion
            .description
            .contains(&care::content().common.care_team_first)
    );
    assert_eq!(
        all[6].recurrence,
        Recurrence::Weekdays(vec![care::Weekday::Thursday])
    );
    let next = upcoming(&plan, ts("2026-11-26T06:00:00Z"), 4);
    let ids: Vec<&str> = next.iter().map(|u| u.reminder_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "infusion_start-0800-0",
            "pump_check-0815-2",
            "site_check-0900-1",
            "dressing_change-1000-4"
        ]
    );
    let json = serde_json::to_value(&all).unwrap();
    assert_eq!(json[0]["time"], "08:00");
    assert_eq!(json[0]["kind"], "infusion_start");
}

#[test]
fn calendar_format_rules() {
    for text in [ANTIBIOTICS, EPIDURAL] {
        let plan = TherapyPlan::from_toml(text).unwrap();
        let ics = ical::calendar(&plan, ts("2026-02-01T12:00:00Z"));
        assert!(ics.ends_with("END:VCALENDAR\r\n"));
        assert!(
            !ics.replace("\r\n", "").contains('\n'),
            "only CRLF line ends"
        );
        for line in ics.split("\r\n") {
            assert!(
                line.len() <= ical::LINE_OCTETS_MAX,
                "line too long: {line:?}"
            );
        }
        assert!(ics.contains("DTSTAMP:20260201T120000Z\r\n"));
        assert!(ics.contains(&format!("DTSTART;TZID={}:", plan.time_zone)));
        assert!(ics.contains("BEGIN:VTIMEZONE\r\n"));
        assert_eq!(ics.matches("BEGIN:VEVENT").count(), reminders(&plan).len());
        assert_eq!(ics.matches("BEGIN:VALARM").count(), reminders(&plan).len());
        // Same plan, same UIDs: re-importing updates the events instead of duplicating them.
        assert_eq!(ics, ical::calendar(&plan, ts("2026-02-01T12:00:00Z")));
    }
    let plan = TherapyPlan::from_toml(ANTIBIOTICS).unwrap();
    let ics = ical::calendar(&plan, ts("2026-02-01T12:00:00Z"));
    assert!(
        ics.contains("RRULE:FREQ=DAILY;UNTIL=20261209T070000Z\r\n"),
        "UNTIL is the last occurrence in UTC"
    );
    assert!(ics.contains("TRIGGER:-PT15M\r\n"));
    assert!(ics.contains("RRULE:FREQ=WEEKLY;BYDAY=TH;UNTIL=20261209T090000Z\r\n"));
}

#[test]
fn escaping() {
    assert_eq!(ical::escape_text("a,b;c\\d\ne"), "a\\,b\\;c\\\\d\\ne");
    assert_eq!(ical::escape_text("tab\there\r\n"), "tabhere\\n");
}

proptest! {
    /// Folding keeps every physical line within 75 octets and unfolding gives the original back, for any text,
    /// including multi-byte characters (never split).
    #[test]
    fn folding_round_trips(text in "\\PC{0,400}") {
        let line = format!("DESCRIPTION:{}", ical::escape_text(&text));
        let folded = ical::fold(&line);
        for physical in folded.split("\r\n") {
            prop_assert!(physical.len() <= ical::LINE_OCTETS_MAX);
        }
        prop_assert_eq!(folded.replace("\r\n ", ""), line);
    }
}

/// Runs the independent Python check on a calendar and returns its JSON report. Fails (never skips) when Python or
/// the `icalendar` package is missing.
fn python_check(ics: &str, after: &str, count: usize) -> serde_json::Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ical_check.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(after)
        .arg(count.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("python3 is needed for the iCalendar check ({e}); install Python 3, then: pip install icalendar"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(ics.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.code() == Some(3) {
        panic!("the Python package icalendar is missing: pip install icalendar ({stderr})");
    }
    assert!(
        output.status.success(),
        "icalendar refused our calendar:\n{stderr}"
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn python_icalendar_reads_the_file_and_agrees_on_occurrences() {
    for (text, after) in [
        (ANTIBIOTICS, "2026-11-20T00:00:00+00:00"),
        (EPIDURAL, "2026-03-01T00:00:00+00:00"),
    ] {
        let plan = TherapyPlan::from_toml(text).unwrap();
        let ics = ical::calendar(&plan, ts("2026-02-01T12:00:00Z"));
        let report = python_check(&ics, after, 12);
        assert_eq!(report["version"], "2.0");
        assert_eq!(
            report["vtimezone_mismatches"],
            serde_json::json!([]),
            "our VTIMEZONE disagrees with zoneinfo"
        );
        let events = report["events"].as_array().unwrap();
        let ours = reminders(&plan);
        assert_eq!(events.len(), ours.len());
        for (event, reminder) in events.iter().zip(&ours) {
            assert_eq!(event["summary"], reminder.title.as_str());
            assert_eq!(
                event["description"],
                reminder.description.as_str(),
                "escaping round-trips"
            );
            assert_eq!(event["dtstamp"], "2026-02-01T12:00:00Z");
            assert_eq!(event["duration_min"], reminder.duration_min);
            assert!(event["uid"].as_str().unwrap().starts_with(&reminder.id));
            assert_eq!(event["alarms"][0]["action"], "DISPLAY");
            assert_eq!(
                event["alarms"][0]["trigger_min"],
                -i64::from(reminder.alert_before_min)
            );
            let theirs: Vec<String> = event["occurrences"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect();
            let mine: Vec<String> = reminder
                .occurrences_after(after.parse::<Timestamp>().unwrap(), 12)
                .into_iter()
                .map(|z| z.timestamp().strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
                .collect();
            assert_eq!(
                theirs, mine,
                "{}: icalendar+dateutil and jiff disagree",
                reminder.id
            );
            assert!(!mine.is_empty());
        }
    }
}

#[test]
fn calendar_in_utc_and_in_a_zone_without_transitions() {
    for zone in ["UTC", "Asia/Tokyo"] {
        let text = ANTIBIOTICS.replace("Europe/Amsterdam", zone);
        let plan = TherapyPlan::from_toml(&text).unwrap();
        let ics = ical::calendar(&plan, ts("2026-02-01T12:00:00Z"));
        let report = python_check(&ics, "2026-11-20T00:00:00+00:00", 3);
        assert_eq!(report["vtimezone_mismatches"], serde_json::json!([]));
        assert_eq!(
            report["events"][0]["occurrences"].as_array().unwrap().len(),
            3
        );
    }
}

#[test]
fn first_date_of_a_weekly_reminder_is_a_matching_weekday() {
    let plan = TherapyPlan::from_toml(ANTIBIOTICS).unwrap();
    let weekly = reminders(&plan)
        .into_iter()
        .find(|r| r.id == "dressing_change-1000-4")
        .unwrap();
    // 2026-11-26 is a Thursday; starting on the Friday moves DTSTART to the next Thursday.
    assert_eq!(weekly.first_date(), Some(date(2026, 11, 26)));
    let text = ANTIBIOTICS.replace("start_date = 2026-11-26", "start_date = 2026-11-27");
    let plan = TherapyPlan::from_toml(&text).unwrap();
    let weekly = reminders(&plan)
        .into_iter()
        .find(|r| r.id == "dressing_change-1000-4")
        .unwrap();
    assert_eq!(weekly.first_date(), Some(date(2026, 12, 3)));
    assert_eq!(
        ical::dtstart_local(&weekly).as_deref(),
        Some("20261203T100000")
    );
}
