//! SVG charts drawn on the server, so the log and the nurse's patient page show trends without any script
//! and the phone downloads a few kilobytes of markup instead of a charting library.
//!
//! The functions are pure: data in, SVG text out. Every chart carries a `<title>` and a `<desc>` that
//! says in words what the picture shows, so a screen reader user gets the same information.

use std::fmt::Write as _;

/// Size of a chart in SVG user units; the SVG scales to its container width (viewBox), so these set the
/// aspect ratio and the text size relative to the drawing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChartConfig {
    pub width: f64,
    pub height: f64,
}

impl Default for ChartConfig {
    fn default() -> Self {
        ChartConfig {
            width: 640.0,
            height: 300.0,
        }
    }
}

/// One reading of a volume series: seconds since the series' origin, and millilitres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VolumePoint {
    pub at_s: f64,
    pub volume_ml: f64,
}

/// Volume delivered against what the program expected, both as cumulative series over the same origin.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VolumeSeries {
    /// What the pump reports as infused.
    pub delivered: Vec<VolumePoint>,
    /// What the program should have infused by then.
    pub expected: Vec<VolumePoint>,
    /// Label for the time origin, e.g. "14:00" or "25 Nov 14:00": the axis shows minutes or hours after it.
    pub origin_label: String,
}

/// Alarms on one day, by priority.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DayAlarms {
    /// Short label for the axis, e.g. "25 Nov".
    pub day_label: String,
    pub high: u32,
    pub medium: u32,
    pub low: u32,
}

impl DayAlarms {
    fn total(&self) -> u32 {
        self.high
            .saturating_add(self.medium)
            .saturating_add(self.low)
    }
}

/// Readings beyond these are not plausible for one infusion (a year; a hundred litres) and are dropped,
/// like non-finite ones, rather than stretching the axes to nonsense.
const AT_S_MAX: f64 = 366.0 * 24.0 * 3600.0;
const VOLUME_ML_MAX: f64 = 100_000.0;

const MARGIN_LEFT: f64 = 56.0;
const MARGIN_RIGHT: f64 = 16.0;
const MARGIN_TOP: f64 = 40.0;
const MARGIN_BOTTOM: f64 = 44.0;

/// Cumulative volume delivered (solid) against expected (dashed), with labelled axes.
///
/// Points that are not finite or have negative time are dropped rather than drawn, because a chart that a
/// nurse reads must not invent a line through bad telemetry.
pub fn volume_chart(series: &VolumeSeries, config: ChartConfig) -> String {
    let clean = |points: &[VolumePoint]| -> Vec<VolumePoint> {
        let mut kept: Vec<VolumePoint> = points
            .iter()
            .copied()
            .filter(|p| {
                p.at_s.is_finite()
                    && p.volume_ml.is_finite()
                    && (0.0..=AT_S_MAX).contains(&p.at_s)
                    && p.volume_ml.abs() <= VOLUME_ML_MAX
            })
            .collect();
        kept.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
        kept
    };
    let delivered = clean(&series.delivered);
    let expected = clean(&series.expected);
    let title = "Volume delivered compared with the program";
    if delivered.is_empty() && expected.is_empty() {
        return empty_chart(title, "No volume readings yet.", config);
    }

    let all = delivered.iter().chain(expected.iter());
    let t_max = all
        .clone()
        .map(|p| p.at_s)
        .fold(0.0_f64, f64::max)
        .max(60.0);
    let v_max = all.map(|p| p.volume_ml).fold(0.0_f64, f64::max);
    let v_axis = Axis::new(v_max.max(1.0), 0.0);
    let (time_unit_s, time_unit_label) = if t_max > 3.0 * 3600.0 {
        (3600.0, "h")
    } else {
        (60.0, "min")
    };
    let t_axis = Axis::new(t_max / time_unit_s, 0.0);
    let t_axis_max = t_axis.max * time_unit_s;
    let v_axis_max = v_axis.max;

    let plot = Plot::new(config);
    let x = |t: f64| plot.left + t / t_axis_max * plot.width;
    let y = |v: f64| plot.bottom - v.max(0.0) / v_axis_max * plot.height;

    let last_delivered = delivered.last().copied();
    let expected_at_last = last_delivered.map(|last| interpolate(&expected, last.at_s));
    let desc = match (last_delivered, expected_at_last.flatten()) {
        (Some(last), Some(exp)) => format!(
            "{} mL delivered {} after {}; the program expected {} mL by then.",
            format_number(last.volume_ml),
            format_duration(last.at_s),
            series.origin_label,
            format_number(exp)
        ),
        (Some(last), None) => format!(
            "{} mL delivered {} after {}.",
            format_number(last.volume_ml),
            format_duration(last.at_s),
            series.origin_label
        ),
        (None, _) => "No delivery recorded yet; only the expected volume is shown.".to_string(),
    };

    let mut svg = open_svg(title, &desc, config);
    // Horizontal grid lines and volume labels.
    for v in v_axis.ticks() {
        let yy = y(v);
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{l:.1}" y1="{yy:.1}" x2="{r:.1}" y2="{yy:.1}"/><text class="tick" x="{tx:.1}" y="{ty:.1}" text-anchor="end">{label}</text>"#,
            l = plot.left,
            r = plot.right,
            tx = plot.left - 6.0,
            ty = yy + 4.0,
            label = format_number(v),
        );
    }
    // Time labels.
    for t in t_axis.ticks().into_iter().map(|t| t * time_unit_s) {
        let _ = write!(
            svg,
            r#"<text class="tick" x="{tx:.1}" y="{ty:.1}" text-anchor="middle">{label}</text>"#,
            tx = x(t),
            ty = plot.bottom + 18.0,
            label = format_number(t / time_unit_s),
        );
    }
    let _ = write!(
        svg,
        r#"<text class="axis" x="{cx:.1}" y="{by:.1}" text-anchor="middle">{unit} after {origin}</text><text class="axis" x="12" y="{my:.1}" text-anchor="middle" transform="rotate(-90 12 {my:.1})">mL</text>"#,
        cx = plot.left + plot.width / 2.0,
        by = config.height - 6.0,
        unit = if time_unit_label == "h" {
            "hours"
        } else {
            "minutes"
        },
        origin = crate::http::escape_html(&series.origin_label),
        my = plot.top + plot.height / 2.0,
    );
    let _ = write!(
        svg,
        r#"<line class="axis-line" x1="{l:.1}" y1="{b:.1}" x2="{r:.1}" y2="{b:.1}"/>"#,
        l = plot.left,
        r = plot.right,
        b = plot.bottom
    );
    if !expected.is_empty() {
        svg.push_str(&polyline("expected", &expected, &x, &y));
    }
    if !delivered.is_empty() {
        svg.push_str(&polyline("delivered", &delivered, &x, &y));
    }
    // Legend: line samples plus words, so colour is never the only cue.
    let _ = write!(
        svg,
        r#"<g class="legend"><line class="delivered" x1="{a:.1}" y1="18" x2="{b:.1}" y2="18"/><text x="{c:.1}" y="23">Delivered</text><line class="expected" x1="{d:.1}" y1="18" x2="{e:.1}" y2="18"/><text x="{f:.1}" y="23">Expected</text></g>"#,
        a = plot.left,
        b = plot.left + 28.0,
        c = plot.left + 34.0,
        d = plot.left + 140.0,
        e = plot.left + 168.0,
        f = plot.left + 174.0,
    );
    svg.push_str("</svg>");
    svg
}

/// Stacked bars of alarms per day (high at the bottom, then medium, then low), with the day's total
/// written above each bar.
pub fn alarms_per_day_chart(days: &[DayAlarms], config: ChartConfig) -> String {
    let title = "Alarms per day";
    if days.is_empty() {
        return empty_chart(title, "No days in the selected period.", config);
    }
    let total: u64 = days.iter().map(|d| u64::from(d.total())).sum();
    let busiest = days.iter().max_by_key(|d| d.total());
    let desc = match busiest {
        Some(b) if total > 0 => format!(
            "{total} alarm{s} over {n} day{ns}; most on {day} ({count}: {h} high, {m} medium, {l} low priority).",
            s = plural(total),
            n = days.len(),
            ns = plural(days.len() as u64),
            day = b.day_label,
            count = b.total(),
            h = b.high,
            m = b.medium,
            l = b.low,
        ),
        _ => format!(
            "No alarms over {n} day{ns}.",
            n = days.len(),
            ns = plural(days.len() as u64)
        ),
    };
    let max_total = days.iter().map(DayAlarms::total).max().unwrap_or(0);
    // Counts are whole numbers: never a tick at 0.25 of an alarm.
    let count_axis = Axis::new(f64::from(max_total.max(1)), 1.0);
    let count_axis_max = count_axis.max;
    let plot = Plot::new(config);
    let slot = plot.width / days.len() as f64;
    let bar_width = (slot * 0.7).min(48.0);
    let y = |c: f64| plot.bottom - c / count_axis_max * plot.height;

    let mut svg = open_svg(title, &desc, config);
    for c in count_axis.ticks() {
        let yy = y(c);
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{l:.1}" y1="{yy:.1}" x2="{r:.1}" y2="{yy:.1}"/><text class="tick" x="{tx:.1}" y="{ty:.1}" text-anchor="end">{label}</text>"#,
            l = plot.left,
            r = plot.right,
            tx = plot.left - 6.0,
            ty = yy + 4.0,
            label = format_number(c),
        );
    }
    // Label every day when they fit, otherwise about eight labels spread evenly.
    let label_every = days.len().div_ceil(8).max(1);
    for (i, day) in days.iter().enumerate() {
        let cx = plot.left + slot * (i as f64 + 0.5);
        let x0 = cx - bar_width / 2.0;
        let mut base = 0.0;
        for (class, count) in [("high", day.high), ("medium", day.medium), ("low", day.low)] {
            if count == 0 {
                continue;
            }
            let top = base + f64::from(count);
            let _ = write!(
                svg,
                r#"<rect class="{class}" x="{x0:.1}" y="{yt:.1}" width="{bar_width:.1}" height="{h:.1}"><title>{day}: {count} {class}</title></rect>"#,
                yt = y(top),
                h = y(base) - y(top),
                day = crate::http::escape_html(&day.day_label),
            );
            base = top;
        }
        if day.total() > 0 {
            let _ = write!(
                svg,
                r#"<text class="value" x="{cx:.1}" y="{ty:.1}" text-anchor="middle">{t}</text>"#,
                ty = y(base) - 4.0,
                t = day.total()
            );
        }
        if i % label_every == 0 {
            let _ = write!(
                svg,
                r#"<text class="tick" x="{cx:.1}" y="{ty:.1}" text-anchor="middle">{label}</text>"#,
                ty = plot.bottom + 18.0,
                label = crate::http::escape_html(&day.day_label)
            );
        }
    }
    let _ = write!(
        svg,
        r#"<line class="axis-line" x1="{l:.1}" y1="{b:.1}" x2="{r:.1}" y2="{b:.1}"/>"#,
        l = plot.left,
        r = plot.right,
        b = plot.bottom
    );
    let _ = write!(
        svg,
        r#"<g class="legend"><rect class="high" x="{a:.1}" y="10" width="14" height="14"/><text x="{b:.1}" y="22">High</text><rect class="medium" x="{c:.1}" y="10" width="14" height="14"/><text x="{d:.1}" y="22">Medium</text><rect class="low" x="{e:.1}" y="10" width="14" height="14"/><text x="{f:.1}" y="22">Low</text></g>"#,
        a = plot.left,
        b = plot.left + 20.0,
        c = plot.left + 80.0,
        d = plot.left + 100.0,
        e = plot.left + 180.0,
        f = plot.left + 200.0,
    );
    svg.push_str("</svg>");
    svg
}

/// One day of the patient's own log beside what the pump recorded: how the patient said they felt (the last
/// entry of the day: `better`, `same` or `worse`), alarms raised and infusions started.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DayFelt {
    pub day_label: String,
    pub felt: Option<&'static str>,
    pub alarms: u32,
    pub doses: u32,
}

/// How the patient felt over time (better at the top, worse at the bottom, a line between the days they wrote)
/// with the day's alarms and infusions written under each day, so the nurse sees them side by side.
pub fn felt_chart(days: &[DayFelt], config: ChartConfig) -> String {
    let title = "How I felt, alarms and infusions";
    if days.is_empty() {
        return empty_chart(title, "No days in the selected period.", config);
    }
    let written: Vec<String> = days
        .iter()
        .filter_map(|d| d.felt.map(|f| format!("{}: {f}", d.day_label)))
        .collect();
    let alarms: u32 = days.iter().map(|d| d.alarms).sum();
    let doses: u32 = days.iter().map(|d| d.doses).sum();
    let desc = format!(
        "{felt}. {alarms} alarm{sa} and {doses} infusion{sd} over {n} day{sn}.",
        felt = if written.is_empty() {
            "No how-I-felt entries".to_string()
        } else {
            format!("How I felt: {}", written.join("; "))
        },
        sa = plural(u64::from(alarms)),
        sd = plural(u64::from(doses)),
        n = days.len(),
        sn = plural(days.len() as u64),
    );
    let plot = Plot::new(ChartConfig {
        height: config.height - 40.0,
        ..config
    });
    let slot = plot.width / days.len() as f64;
    let level = |felt: &str| match felt {
        "better" => 0.0,
        "same" => 0.5,
        _ => 1.0,
    };
    let y = |felt: &str| plot.top + 10.0 + level(felt) * (plot.height - 20.0);
    let mut svg = open_svg(title, &desc, config);
    for (word, label) in [("better", "Better"), ("same", "Same"), ("worse", "Worse")] {
        let yy = y(word);
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{l:.1}" y1="{yy:.1}" x2="{r:.1}" y2="{yy:.1}"/><text class="tick" x="{tx:.1}" y="{ty:.1}" text-anchor="end">{label}</text>"#,
            l = plot.left,
            r = plot.right,
            tx = plot.left - 6.0,
            ty = yy + 4.0,
        );
    }
    let points: Vec<(f64, f64)> = days
        .iter()
        .enumerate()
        .filter_map(|(i, d)| d.felt.map(|f| (plot.left + slot * (i as f64 + 0.5), y(f))))
        .collect();
    if points.len() > 1 {
        let line: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline class="delivered" points="{}"/>"#,
            line.join(" ")
        );
    }
    let label_every = days.len().div_ceil(8).max(1);
    for (i, day) in days.iter().enumerate() {
        let cx = plot.left + slot * (i as f64 + 0.5);
        if let Some(felt) = day.felt {
            let _ = write!(
                svg,
                r#"<circle class="felt {felt}" cx="{cx:.1}" cy="{cy:.1}" r="7"><title>{day}: {felt}</title></circle>"#,
                cy = y(felt),
                day = crate::http::escape_html(&day.day_label),
            );
        }
        if i % label_every == 0 {
            let _ = write!(
                svg,
                r#"<text class="tick" x="{cx:.1}" y="{ty:.1}" text-anchor="middle">{label}</text>"#,
                ty = plot.bottom + 18.0,
                label = crate::http::escape_html(&day.day_label)
            );
        }
        for (row, count, what) in [(1.0, day.alarms, "alarm"), (2.0, day.doses, "infusion")] {
            if count > 0 {
                let _ = write!(
                    svg,
                    r#"<text class="value" x="{cx:.1}" y="{ty:.1}" text-anchor="middle">{count}<title>{day}: {count} {what}{s}</title></text>"#,
                    ty = plot.bottom + 18.0 + row * 18.0,
                    day = crate::http::escape_html(&day.day_label),
                    s = plural(u64::from(count)),
                );
            }
        }
    }
    let _ = write!(
        svg,
        r#"<text class="tick" x="{tx:.1}" y="{a:.1}" text-anchor="end">Alarms</text><text class="tick" x="{tx:.1}" y="{d:.1}" text-anchor="end">Doses</text>"#,
        tx = plot.left - 6.0,
        a = plot.bottom + 36.0,
        d = plot.bottom + 54.0,
    );
    svg.push_str("</svg>");
    svg
}

struct Plot {
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
    width: f64,
    height: f64,
}

impl Plot {
    fn new(config: ChartConfig) -> Plot {
        let width = (config.width - MARGIN_LEFT - MARGIN_RIGHT).max(10.0);
        let height = (config.height - MARGIN_TOP - MARGIN_BOTTOM).max(10.0);
        Plot {
            left: MARGIN_LEFT,
            right: MARGIN_LEFT + width,
            top: MARGIN_TOP,
            bottom: MARGIN_TOP + height,
            width,
            height,
        }
    }
}

fn open_svg(title: &str, desc: &str, config: ChartConfig) -> String {
    format!(
        r#"<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w:.0} {h:.0}" role="img" aria-labelledby="{id}-t {id}-d"><title id="{id}-t">{title}</title><desc id="{id}-d">{desc}</desc>"#,
        w = config.width,
        h = config.height,
        id = slug(title),
        title = crate::http::escape_html(title),
        desc = crate::http::escape_html(desc),
    )
}

fn empty_chart(title: &str, message: &str, config: ChartConfig) -> String {
    let mut svg = open_svg(title, message, config);
    let _ = write!(
        svg,
        r#"<text class="empty" x="{x:.1}" y="{y:.1}" text-anchor="middle">{m}</text></svg>"#,
        x = config.width / 2.0,
        y = config.height / 2.0,
        m = crate::http::escape_html(message)
    );
    svg
}

fn polyline(
    class: &str,
    points: &[VolumePoint],
    x: &dyn Fn(f64) -> f64,
    y: &dyn Fn(f64) -> f64,
) -> String {
    let mut s = format!(r#"<polyline class="{class}" points=""#);
    for (i, p) in points.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{:.1},{:.1}", x(p.at_s), y(p.volume_ml));
    }
    s.push_str(r#""/>"#);
    s
}

/// Linear interpolation of a cumulative series at `at_s`; `None` outside the series' time range.
fn interpolate(points: &[VolumePoint], at_s: f64) -> Option<f64> {
    let first = points.first()?;
    let last = points.last()?;
    if at_s < first.at_s || at_s > last.at_s {
        return None;
    }
    for pair in points.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if at_s >= a.at_s && at_s <= b.at_s {
            if b.at_s == a.at_s {
                return Some(b.volume_ml);
            }
            let f = (at_s - a.at_s) / (b.at_s - a.at_s);
            return Some(a.volume_ml + f * (b.volume_ml - a.volume_ml));
        }
    }
    Some(last.volume_ml)
}

/// An axis from 0 with round ticks: a step of 1, 2, 2.5 or 5 × 10^k giving at most about five ticks, and
/// the top at the first tick not below the data.
struct Axis {
    step: f64,
    max: f64,
}

impl Axis {
    fn new(data_max: f64, step_min: f64) -> Axis {
        let data_max = if data_max.is_finite() && data_max > 0.0 {
            data_max
        } else {
            1.0
        };
        let step = nice_ceiling(data_max / 4.0).max(step_min);
        let max = ((data_max / step) - 1e-9).ceil().max(1.0) * step;
        Axis { step, max }
    }

    fn ticks(&self) -> Vec<f64> {
        let n = (self.max / self.step).round() as usize;
        (0..=n).map(|i| i as f64 * self.step).collect()
    }
}

/// The smallest of 1, 2, 2.5, 5 × 10^k that is at least `value`.
fn nice_ceiling(value: f64) -> f64 {
    if !value.is_finite() || value <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(value.log10().floor());
    for step in [1.0, 2.0, 2.5, 5.0, 10.0] {
        let candidate = step * magnitude;
        if candidate >= value * (1.0 - 1e-9) {
            return candidate;
        }
    }
    10.0 * magnitude
}

fn format_number(value: f64) -> String {
    if (value - value.round()).abs() < 0.05 {
        format!("{:.0}", value.round())
    } else {
        format!("{value:.1}")
    }
}

fn format_duration(seconds: f64) -> String {
    let minutes = (seconds / 60.0).round() as u64;
    if minutes < 60 {
        format!("{minutes} min")
    } else {
        format!("{} h {:02} min", minutes / 60, minutes % 60)
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn slug(title: &str) -> String {
    title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(at_s: f64, volume_ml: f64) -> VolumePoint {
        VolumePoint { at_s, volume_ml }
    }

    #[test]
    fn felt_chart_says_in_words_what_it_draws() {
        let day = |label: &str, felt, alarms, doses| DayFelt {
            day_label: label.into(),
            felt,
            alarms,
            doses,
        };
        let days = [
            day("1 Mar", Some("worse"), 2, 1),
            day("2 Mar", None, 0, 1),
            day("3 Mar", Some("better"), 0, 0),
        ];
        check(
            felt_chart(&days, ChartConfig::default()),
            &[
                "How I felt: 1 Mar: worse; 3 Mar: better. 2 alarms and 2 infusions over 3 days.",
                "<title>1 Mar: worse</title>",
                "<title>1 Mar: 2 alarms</title>",
                "<polyline class=\"delivered\"",
            ],
            &["2 Mar: same", "<title>3 Mar: 0"],
        );
        check(
            felt_chart(&days[1..2], ChartConfig::default()),
            &["No how-I-felt entries. 0 alarms and 1 infusion over 1 day."],
            &["<circle", "<polyline"],
        );
        check(
            felt_chart(&[], ChartConfig::default()),
            &["No days in the selected period."],
            &[],
        );
    }

    /// Runs `render` and checks that the SVG is well formed enough (one root, balanced) and contains every
    /// expected fragment, and none of the forbidden ones.
    fn check(svg: String, expect: &[&str], forbid: &[&str]) {
        assert!(svg.starts_with("<svg "), "not an svg: {svg}");
        assert!(svg.ends_with("</svg>"), "unterminated svg: {svg}");
        assert_eq!(svg.matches("<svg").count(), 1, "nested svg: {svg}");
        assert_eq!(
            svg.matches("<title").count(),
            svg.matches("</title>").count(),
            "unbalanced titles: {svg}"
        );
        for fragment in expect {
            assert!(svg.contains(fragment), "missing {fragment:?} in {svg}");
        }
        for fragment in forbid {
            assert!(!svg.contains(fragment), "unexpected {fragment:?} in {svg}");
        }
    }

    #[test]
    fn volume_chart_cases() {
        let cfg = ChartConfig::default();
        check(
            volume_chart(&VolumeSeries::default(), cfg),
            &["No volume readings yet.", "role=\"img\""],
            &["polyline"],
        );
        let on_track = VolumeSeries {
            delivered: vec![point(0.0, 0.0), point(1800.0, 24.0), point(3600.0, 50.0)],
            expected: vec![point(0.0, 0.0), point(7200.0, 100.0)],
            origin_label: "14:00".into(),
        };
        check(
            volume_chart(&on_track, cfg),
            &[
                "50 mL delivered 1 h 00 min after 14:00; the program expected 50 mL by then.",
                r#"<polyline class="delivered""#,
                r#"<polyline class="expected""#,
                ">Delivered</text>",
                "minutes after 14:00",
            ],
            &["NaN", "inf"],
        );
        // Bad telemetry is dropped, not drawn.
        let noisy = VolumeSeries {
            delivered: vec![
                point(0.0, 0.0),
                point(f64::NAN, 3.0),
                point(60.0, f64::INFINITY),
                point(-5.0, 1.0),
                point(120.0, 2.0),
            ],
            expected: vec![],
            origin_label: "<script>".into(),
        };
        check(
            volume_chart(&noisy, cfg),
            &["2 mL delivered 2 min after &lt;script&gt;.", "points=\""],
            &["NaN", "inf", "<script>", "<polyline class=\"expected\""],
        );
        // Long infusions switch to hours.
        let long = VolumeSeries {
            delivered: vec![point(0.0, 0.0), point(10.0 * 3600.0, 500.0)],
            expected: vec![point(0.0, 0.0), point(12.0 * 3600.0, 600.0)],
            origin_label: "08:00".into(),
        };
        check(
            volume_chart(&long, cfg),
            &["hours after 08:00", "expected 500 mL by then"],
            &[],
        );
    }

    #[test]
    fn alarms_chart_cases() {
        let cfg = ChartConfig::default();
        check(
            alarms_per_day_chart(&[], cfg),
            &["No days in the selected period."],
            &["<rect"],
        );
        let quiet = vec![DayAlarms {
            day_label: "24 Nov".into(),
            ..DayAlarms::default()
        }];
        check(
            alarms_per_day_chart(&quiet, cfg),
            &["No alarms over 1 day."],
            &["class=\"value\""],
        );
        let busy = vec![
            DayAlarms {
                day_label: "24 Nov".into(),
                high: 1,
                medium: 0,
                low: 2,
            },
            DayAlarms {
                day_label: "25 Nov".into(),
                high: 3,
                medium: 1,
                low: 0,
            },
        ];
        check(
            alarms_per_day_chart(&busy, cfg),
            &[
                "7 alarms over 2 days; most on 25 Nov (4: 3 high, 1 medium, 0 low priority).",
                "<title>25 Nov: 3 high</title>",
                ">24 Nov</text>",
            ],
            &["NaN"],
        );
        // Many days: labels thin out but every bar is still drawn.
        let month: Vec<DayAlarms> = (1..=30)
            .map(|d| DayAlarms {
                day_label: format!("{d} Nov"),
                high: d % 3,
                medium: 0,
                low: 0,
            })
            .collect();
        let svg = alarms_per_day_chart(&month, cfg);
        check(svg.clone(), &[">1 Nov</text>"], &[">2 Nov</text>"]);
        assert_eq!(svg.matches("class=\"high\" x=").count(), 20 + 1);
    }

    #[test]
    fn nice_ceiling_is_round_and_not_below() {
        for (value, expect) in [
            (0.0, 1.0),
            (1.0, 1.0),
            (1.2, 2.0),
            (3.0, 5.0),
            (7.0, 10.0),
            (24.0, 25.0),
            (101.0, 200.0),
            (f64::NAN, 1.0),
        ] {
            assert_eq!(nice_ceiling(value), expect, "nice_ceiling({value})");
        }
    }

    #[test]
    fn axes_have_round_ticks() {
        for (data_max, step_min, expect) in [
            (4.3, 0.0, vec![0.0, 2.0, 4.0, 6.0]),
            (100.0, 0.0, vec![0.0, 25.0, 50.0, 75.0, 100.0]),
            (1.0, 1.0, vec![0.0, 1.0]),
            (7.0, 1.0, vec![0.0, 2.0, 4.0, 6.0, 8.0]),
            (f64::NAN, 0.0, vec![0.0, 0.25, 0.5, 0.75, 1.0]),
        ] {
            assert_eq!(
                Axis::new(data_max, step_min).ticks(),
                expect,
                "Axis::new({data_max}, {step_min})"
            );
        }
    }

    #[test]
    fn interpolation() {
        let pts = [point(0.0, 0.0), point(100.0, 10.0)];
        assert_eq!(interpolate(&pts, 50.0), Some(5.0));
        assert_eq!(interpolate(&pts, 150.0), None);
        assert_eq!(interpolate(&[], 1.0), None);
    }

    proptest::proptest! {
        /// Whatever the telemetry says (NaN, infinities, negative times, any label), a chart is one
        /// well-formed SVG with no non-finite number in it and no unescaped markup from its text.
        #[test]
        fn charts_are_always_well_formed(
            points in proptest::collection::vec((proptest::num::f64::ANY, proptest::num::f64::ANY), 0..40),
            counts in proptest::collection::vec((0u32..50, 0u32..50, 0u32..50), 0..40),
            label in "[0-9 <>&\"'/]{0,12}",
        ) {
            let series = VolumeSeries {
                delivered: points.iter().map(|(t, v)| point(*t, *v)).collect(),
                expected: points.iter().rev().map(|(t, v)| point(t.abs(), v.abs())).collect(),
                origin_label: label.clone(),
            };
            let days: Vec<DayAlarms> = counts
                .iter()
                .map(|(h, m, l)| DayAlarms { day_label: label.clone(), high: *h, medium: *m, low: *l })
                .collect();
            for svg in [volume_chart(&series, ChartConfig::default()), alarms_per_day_chart(&days, ChartConfig::default())] {
                proptest::prop_assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"));
                proptest::prop_assert_eq!(svg.matches("<svg").count(), 1);
                proptest::prop_assert!(!svg.contains("NaN") && !svg.contains("inf"), "non-finite number in {}", svg);
                proptest::prop_assert_eq!(svg.matches('<').count(), svg.matches('>').count());
            }
        }
    }
}
