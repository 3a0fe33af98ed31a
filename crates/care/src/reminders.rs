//! The plan's schedule as reminders: data the app shows (with the next occurrences computed in the patient's time
//! zone) and the input of the iCalendar writer, so the phone calendar and the app never disagree.

use jiff::civil::{Date, Time};
use jiff::{Timestamp, ZonedDateTime};
use serde::Serialize;

use crate::content::content;
use crate::plan::TherapyPlan;
use crate::words::{ReminderKind, Weekday};

/// How a reminder repeats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Recurrence {
    /// Every `n` days from the start date (1 = daily).
    EveryDays(u32),
    /// On these days of the week.
    Weekdays(Vec<Weekday>),
}

/// One recurring reminder at one time of day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reminder {
    /// Stable within a plan: kind, time and position in the schedule (`infusion_start-0800-0`).
    pub id: String,
    pub kind: ReminderKind,
    pub title: String,
    /// The care team's note (if any) first, then what the reminder is for.
    pub description: String,
    /// Local time of day in `time_zone`.
    #[serde(serialize_with = "hh_mm")]
    pub time: Time,
    pub recurrence: Recurrence,
    /// First day it may occur.
    pub start_date: Date,
    /// Last day it may occur, if the therapy ends.
    pub end_date: Option<Date>,
    /// Minutes before `time` the phone alerts.
    pub alert_before_min: u32,
    pub duration_min: u32,
    /// The patient's IANA time zone.
    pub time_zone: String,
}

fn hh_mm<S: serde::Serializer>(time: &Time, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&time.strftime("%H:%M"))
}

/// A reminder's next occurrence, for the app's "coming up" list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Upcoming {
    pub reminder_id: String,
    pub kind: ReminderKind,
    pub title: String,
    pub at: ZonedDateTime,
}

/// The default calendar block for reminders that are not infusions.
pub const DURATION_MIN_DEFAULT: u32 = 15;

/// How far ahead occurrences are searched; a schedule with nothing in this window has ended.
const SEARCH_DAYS_MAX: i64 = 3 * 366;

/// The plan's reminders, one per schedule entry and time of day, in schedule order.
pub fn reminders(plan: &TherapyPlan) -> Vec<Reminder> {
    let c = content();
    let mut out = Vec::new();
    for (index, entry) in plan.schedule.reminders.iter().enumerate() {
        for time in &entry.times {
            let title =
                c.common.reminder_titles[&entry.kind].replace("{therapy}", &plan.therapy.name);
            let hint = &c.common.reminder_hints[&entry.kind];
            let mut description = String::new();
            if let Some(note) = &entry.note {
                description.push_str(&format!("From your care team: {note}\n"));
            }
            for note in plan.notes.iter().filter(|n| n.about.is_none()) {
                description.push_str(&format!("From your care team: {}\n", note.text));
            }
            description.push_str(hint);
            description.push('\n');
            description.push_str(&c.common.care_team_first);
            let recurrence = if entry.weekdays.is_empty() {
                Recurrence::EveryDays(entry.every_days.unwrap_or(1))
            } else {
                let mut days = entry.weekdays.clone();
                days.sort();
                days.dedup();
                Recurrence::Weekdays(days)
            };
            let duration_min = entry.duration_min.unwrap_or_else(|| match entry.kind {
                ReminderKind::InfusionStart => {
                    (plan.infusion_duration_min().ceil() as u32).clamp(1, 24 * 60)
                }
                _ => DURATION_MIN_DEFAULT,
            });
            out.push(Reminder {
                id: format!("{}-{}-{index}", entry.kind, time.strftime("%H%M")),
                kind: entry.kind,
                title,
                description,
                time: *time,
                recurrence,
                start_date: plan.schedule.start_date,
                end_date: plan.schedule.end_date,
                alert_before_min: entry.alert_before_min,
                duration_min,
                time_zone: plan.time_zone.clone(),
            });
        }
    }
    out
}

impl Reminder {
    /// Whether the reminder occurs on `date` (ignoring the time of day).
    pub fn occurs_on(&self, date: Date) -> bool {
        if date < self.start_date || self.end_date.is_some_and(|end| date > end) {
            return false;
        }
        match &self.recurrence {
            Recurrence::EveryDays(n) => {
                let days = self.start_date.duration_until(date).as_secs() / 86_400;
                days % i64::from(*n) == 0
            }
            Recurrence::Weekdays(days) => days.iter().any(|d| d.to_jiff() == date.weekday()),
        }
    }

    /// The first day the reminder occurs on, if any: the start date, or for weekly reminders the first
    /// matching weekday. iCalendar's DTSTART must be an occurrence, so the writer uses this.
    pub fn first_date(&self) -> Option<Date> {
        let mut date = self.start_date;
        for _ in 0..7 {
            if self.occurs_on(date) {
                return Some(date);
            }
            date = date.tomorrow().ok()?;
        }
        None
    }

    /// The local date-time of the occurrence on `date` in the patient's time zone. A time that does not exist
    /// that day (daylight saving gap) moves forward by the gap, as RFC 5545 requires.
    pub fn at(&self, date: Date) -> Option<ZonedDateTime> {
        let tz = jiff::tz::TimeZone::get(&self.time_zone).ok()?;
        tz.to_zoned_datetime(date.to_datetime(self.time)).ok()
    }

    /// The next `count` occurrences strictly after `after`.
    pub fn occurrences_after(&self, after: Timestamp, count: usize) -> Vec<ZonedDateTime> {
        let mut out = Vec::new();
        if count == 0 {
            return out;
        }
        let Ok(tz) = jiff::tz::TimeZone::get(&self.time_zone) else {
            return out;
        };
        // Start the search the day before `after` in local time (an occurrence late that day may still be ahead
        // in UTC terms), but never before the start date.
        let after_local = after.to_zoned_datetime(tz).date();
        let mut date = after_local
            .yesterday()
            .unwrap_or(after_local)
            .max(self.start_date);
        for _ in 0..SEARCH_DAYS_MAX {
            if self.end_date.is_some_and(|end| date > end) {
                break;
            }
            if self.occurs_on(date)
                && let Some(at) = self.at(date)
                && at.timestamp() > after
            {
                out.push(at);
                if out.len() == count {
                    break;
                }
            }
            let Ok(next) = date.tomorrow() else { break };
            date = next;
        }
        out
    }
}

/// The next `count` reminders of the whole plan after `now`, soonest first (ties in schedule order).
pub fn upcoming(plan: &TherapyPlan, now: Timestamp, count: usize) -> Vec<Upcoming> {
    let mut all: Vec<(usize, Upcoming)> = Vec::new();
    for (order, reminder) in reminders(plan).into_iter().enumerate() {
        for at in reminder.occurrences_after(now, count) {
            all.push((
                order,
                Upcoming {
                    reminder_id: reminder.id.clone(),
                    kind: reminder.kind,
                    title: reminder.title.clone(),
                    at,
                },
            ));
        }
    }
    all.sort_by(|(oa, a), (ob, b)| a.at.timestamp().cmp(&b.at.timestamp()).then(oa.cmp(ob)));
    all.into_iter().take(count).map(|(_, u)| u).collect()
}
