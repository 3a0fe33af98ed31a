//! An RFC 5545 (iCalendar) writer for the plan's reminders, written by hand because the format is small and the
//! details matter: CRLF line ends, folding at 75 octets without splitting a UTF-8 character, text escaping,
//! stable UIDs, and local times with a VTIMEZONE so "08:00" stays 08:00 across daylight saving changes.
//!
//! Choice of time representation: DTSTART carries `TZID=<the plan's IANA zone>` and the file contains a VTIMEZONE
//! for it, generated from the bundled time-zone database as one observance per transition from a year before the
//! start date until the end date (or ten years after the start when the therapy has no end). UNTIL is in UTC, as
//! RFC 5545 requires when DTSTART has a TZID. See docs/care.md.

use jiff::civil::{Date, DateTime};
use jiff::tz::{Dst, TimeZone};
use jiff::{Timestamp, ToSpan};

use crate::plan::TherapyPlan;
use crate::reminders::{Recurrence, Reminder, reminders};

/// The longest a content line may be, in octets, before it is folded (RFC 5545 section 3.1).
pub const LINE_OCTETS_MAX: usize = 75;

/// How many years of time-zone transitions are written for a therapy without an end date.
pub const OPEN_ENDED_YEARS: i16 = 10;

/// Writes the plan's reminders as an iCalendar file. `now` becomes DTSTAMP; passing it in keeps the output
/// reproducible.
pub fn calendar(plan: &TherapyPlan, now: Timestamp) -> String {
    let reminders = reminders(plan);
    let mut w = Writer::default();
    w.line("BEGIN", "VCALENDAR");
    w.line("VERSION", "2.0");
    w.line("PRODID", "-//Infusafe//Care reminders//EN");
    w.line("CALSCALE", "GREGORIAN");
    w.line("METHOD", "PUBLISH");
    w.line(
        "X-WR-CALNAME",
        &escape_text(&format!("{}: {}", plan.patient.name, plan.therapy.name)),
    );
    w.line("X-WR-TIMEZONE", &plan.time_zone);
    write_vtimezone(&mut w, plan);
    let stamp = utc_basic(now);
    let plan_key = plan_key(plan);
    for reminder in &reminders {
        let Some(first) = reminder.first_date() else {
            continue;
        };
        let Some(start) = reminder.at(first) else {
            continue;
        };
        w.line("BEGIN", "VEVENT");
        w.line("UID", &format!("{}-{plan_key}@infusafe", reminder.id));
        w.line("DTSTAMP", &stamp);
        w.line(
            &format!("DTSTART;TZID={}", param_value(&plan.time_zone)),
            &local_basic(start.datetime()),
        );
        w.line("DURATION", &format!("PT{}M", reminder.duration_min));
        w.line("SUMMARY", &escape_text(&reminder.title));
        w.line("DESCRIPTION", &escape_text(&reminder.description));
        w.line(
            "CATEGORIES",
            &escape_text(&format!("Infusafe,{}", reminder.kind)),
        );
        w.line("TRANSP", "TRANSPARENT");
        w.line("RRULE", &rrule(reminder, plan));
        w.line("BEGIN", "VALARM");
        w.line("ACTION", "DISPLAY");
        w.line("DESCRIPTION", &escape_text(&reminder.title));
        w.line(
            "TRIGGER",
            &if reminder.alert_before_min == 0 {
                "PT0S".to_owned()
            } else {
                format!("-PT{}M", reminder.alert_before_min)
            },
        );
        w.line("END", "VALARM");
        w.line("END", "VEVENT");
    }
    w.line("END", "VCALENDAR");
    w.out
}

fn rrule(reminder: &Reminder, plan: &TherapyPlan) -> String {
    let mut rule = match &reminder.recurrence {
        Recurrence::EveryDays(1) => "FREQ=DAILY".to_owned(),
        Recurrence::EveryDays(n) => format!("FREQ=DAILY;INTERVAL={n}"),
        Recurrence::Weekdays(days) => {
            let days: Vec<&str> = days.iter().map(|d| d.ical()).collect();
            format!("FREQ=WEEKLY;BYDAY={}", days.join(","))
        }
    };
    if let Some(end) = plan.schedule.end_date
        && let Some(last) = reminder.at(end)
    {
        // UNTIL is inclusive; the occurrence on the end date itself is the last one.
        rule.push_str(&format!(";UNTIL={}", utc_basic(last.timestamp())));
    }
    rule
}

/// A short stable hash of who and what the plan is for, so UIDs are unique across patients and plans but the
/// same when the same plan is exported again (re-importing updates instead of duplicating).
fn plan_key(plan: &TherapyPlan) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325; // FNV-1a
    let key = format!(
        "{}\u{0}{}\u{0}{}\u{0}{}\u{0}{}",
        plan.patient.id.as_deref().unwrap_or(""),
        plan.patient.name,
        plan.therapy.name,
        plan.therapy.drug,
        plan.schedule.start_date
    );
    for byte in key.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

fn write_vtimezone(w: &mut Writer, plan: &TherapyPlan) {
    let tz = plan.tz();
    let from_date = plan
        .schedule
        .start_date
        .checked_sub(1.year())
        .unwrap_or(plan.schedule.start_date);
    let to_date = plan
        .schedule
        .end_date
        .unwrap_or_else(|| {
            plan.schedule
                .start_date
                .checked_add(OPEN_ENDED_YEARS.years())
                .unwrap_or(plan.schedule.start_date)
        })
        .checked_add(1.day())
        .unwrap_or(plan.schedule.start_date);
    let from = tz
        .to_zoned_datetime(from_date.to_datetime(jiff::civil::Time::midnight()))
        .map(|z| z.timestamp());
    let to = tz
        .to_zoned_datetime(to_date.to_datetime(jiff::civil::Time::midnight()))
        .map(|z| z.timestamp());
    let (Ok(from), Ok(to)) = (from, to) else {
        return;
    };

    w.line("BEGIN", "VTIMEZONE");
    w.line("TZID", &plan.time_zone);
    // The observance in force at the start of the window, so every local time in the window is covered.
    let info = tz.to_offset_info(from);
    observance(
        w,
        info.dst(),
        from_date.to_datetime(jiff::civil::Time::midnight()),
        info.offset(),
        info.offset(),
        info.abbreviation(),
    );
    let mut previous = info.offset();
    for transition in tz.following(from) {
        if transition.timestamp() > to {
            break;
        }
        // DTSTART of an observance is the local time just before the change, in the old offset.
        let local = transition
            .timestamp()
            .to_zoned_datetime(TimeZone::fixed(previous))
            .datetime();
        observance(
            w,
            transition.dst(),
            local,
            previous,
            transition.offset(),
            transition.abbreviation(),
        );
        previous = transition.offset();
    }
    w.line("END", "VTIMEZONE");
}

fn observance(
    w: &mut Writer,
    dst: Dst,
    start: DateTime,
    from: jiff::tz::Offset,
    to: jiff::tz::Offset,
    name: &str,
) {
    let kind = if dst.is_dst() { "DAYLIGHT" } else { "STANDARD" };
    w.line("BEGIN", kind);
    w.line("DTSTART", &local_basic(start));
    w.line("TZOFFSETFROM", &utc_offset(from));
    w.line("TZOFFSETTO", &utc_offset(to));
    if !name.is_empty() {
        w.line("TZNAME", &escape_text(name));
    }
    w.line("END", kind);
}

fn utc_offset(offset: jiff::tz::Offset) -> String {
    let seconds = offset.seconds();
    let sign = if seconds < 0 { '-' } else { '+' };
    let s = seconds.unsigned_abs();
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    if sec == 0 {
        format!("{sign}{h:02}{m:02}")
    } else {
        format!("{sign}{h:02}{m:02}{sec:02}")
    }
}

fn local_basic(dt: DateTime) -> String {
    dt.strftime("%Y%m%dT%H%M%S").to_string()
}

fn utc_basic(ts: Timestamp) -> String {
    ts.strftime("%Y%m%dT%H%M%SZ").to_string()
}

/// Escapes a TEXT value: backslash, semicolon, comma and line breaks (RFC 5545 section 3.3.11).
pub fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A parameter value: quoted when it contains characters that would end the parameter.
fn param_value(value: &str) -> String {
    if value.contains([':', ';', ',']) {
        format!("\"{}\"", value.replace('"', ""))
    } else {
        value.to_owned()
    }
}

/// Folds one content line (without its CRLF) at `LINE_OCTETS_MAX` octets, never inside a UTF-8 character.
/// Continuation lines start with one space, which counts towards their 75 octets.
pub fn fold(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + line.len() / 70 * 3);
    let mut width = 0;
    for c in line.chars() {
        let len = c.len_utf8();
        if width + len > LINE_OCTETS_MAX {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += len;
    }
    out
}

#[derive(Default)]
struct Writer {
    out: String,
}

impl Writer {
    fn line(&mut self, name: &str, value: &str) {
        self.out.push_str(&fold(&format!("{name}:{value}")));
        self.out.push_str("\r\n");
    }
}

/// The calendar's first date-time for a reminder, for tests: DTSTART's local value.
pub fn dtstart_local(reminder: &Reminder) -> Option<String> {
    let first: Date = reminder.first_date()?;
    reminder.at(first).map(|z| local_basic(z.datetime()))
}
