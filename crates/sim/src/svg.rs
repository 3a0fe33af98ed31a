//! Hand-written SVG plots (no plotting crate): a run's pressure, delivered volume and alarms over
//! time, and the trumpet curve. Output is plain, valid XML with labelled axes.

use std::fmt::Write;

use crate::methods::TrumpetResult;
use crate::run::RunOutcome;

const WIDTH: f64 = 900.0;
const PANEL_HEIGHT: f64 = 260.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 66.0;
const GAP: f64 = 70.0;

/// Escapes text for XML content and attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// About five round tick values covering [lo, hi].
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).max(1e-9);
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let mut t = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while t <= hi + step * 1e-9 {
        out.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        t += step;
    }
    out
}

fn fmt_tick(v: f64) -> String {
    if v.fract().abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}").trim_end_matches('0').to_string()
    }
}

/// One panel: axes, ticks, labels; maps data to pixels.
struct Panel {
    top: f64,
    x: (f64, f64),
    y: (f64, f64),
}

impl Panel {
    fn px(&self, x: f64) -> f64 {
        LEFT + (x - self.x.0) / (self.x.1 - self.x.0).max(1e-12) * (WIDTH - LEFT - RIGHT)
    }
    fn py(&self, y: f64) -> f64 {
        self.top + PANEL_HEIGHT - (y - self.y.0) / (self.y.1 - self.y.0).max(1e-12) * PANEL_HEIGHT
    }

    fn axes(&self, out: &mut String, title: &str, x_label: &str, y_label: &str) {
        let (l, r, t, b) = (LEFT, WIDTH - RIGHT, self.top, self.top + PANEL_HEIGHT);
        let _ = writeln!(
            out,
            r##"<rect x="{l}" y="{t}" width="{}" height="{PANEL_HEIGHT}" fill="#ffffff" stroke="#333333"/>"##,
            r - l
        );
        let _ = writeln!(
            out,
            r##"<text x="{l}" y="{}" font-size="15" font-weight="bold">{}</text>"##,
            t - 10.0,
            escape(title)
        );
        for v in ticks(self.x.0, self.x.1) {
            let x = self.px(v);
            let _ = writeln!(
                out,
                r##"<line x1="{x:.1}" y1="{t}" x2="{x:.1}" y2="{b}" stroke="#dddddd"/>"##
            );
            let _ = writeln!(
                out,
                r##"<text x="{x:.1}" y="{:.1}" font-size="12" text-anchor="middle">{}</text>"##,
                b + 16.0,
                fmt_tick(v)
            );
        }
        for v in ticks(self.y.0, self.y.1) {
            let y = self.py(v);
            let _ = writeln!(
                out,
                r##"<line x1="{l}" y1="{y:.1}" x2="{r}" y2="{y:.1}" stroke="#dddddd"/>"##
            );
            let _ = writeln!(
                out,
                r##"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="end">{}</text>"##,
                l - 6.0,
                y + 4.0,
                fmt_tick(v)
            );
        }
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}" font-size="13" text-anchor="middle">{}</text>"##,
            (l + r) / 2.0,
            b + 36.0,
            escape(x_label)
        );
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}" font-size="13" text-anchor="middle" transform="rotate(-90 {:.1} {:.1})">{}</text>"##,
            l - 55.0,
            (t + b) / 2.0,
            l - 55.0,
            (t + b) / 2.0,
            escape(y_label)
        );
    }

    fn line(&self, out: &mut String, points: &[(f64, f64)], color: &str, dashed: bool) {
        if points.is_empty() {
            return;
        }
        let mut d = String::new();
        for (x, y) in points {
            let _ = write!(d, "{:.1},{:.1} ", self.px(*x), self.py(*y));
        }
        let dash = if dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let _ = writeln!(
            out,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.5"{dash} points="{}"/>"#,
            d.trim_end()
        );
    }
}

fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-9 {
        return (lo - 1.0, hi + 1.0);
    }
    (lo, hi)
}

fn header(height: f64, title: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif">"#
    );
    let _ = writeln!(out, "<title>{}</title>", escape(title));
    let _ = writeln!(
        out,
        r##"<rect width="100%" height="100%" fill="#fafafa"/>"##
    );
    let _ = writeln!(
        out,
        r##"<text x="{LEFT}" y="24" font-size="17" font-weight="bold">{}</text>"##,
        escape(title)
    );
    out
}

/// Pressure and delivered volume over time, with each alarm as a shaded band from raise to clear.
pub fn run_svg(outcome: &RunOutcome) -> String {
    let r = &outcome.report;
    let end_h = r.duration_s / 3600.0;
    let trace = &outcome.trace;
    let height = TOP + 2.0 * PANEL_HEIGHT + GAP + 60.0 + 18.0 * outcome.alarms.len().min(12) as f64;
    let mut out = header(height, &format!("{} (seed {})", r.name, r.seed));
    let hours = |ms: u64| ms as f64 / 3_600_000.0;
    let (p_lo, p_hi) = range(trace.iter().map(|s| s.downstream_pressure_mmhg));
    let pressure = Panel {
        top: TOP,
        x: (0.0, end_h),
        y: (p_lo.min(0.0), p_hi * 1.05 + 1.0),
    };
    let (_, v_hi) = range(trace.iter().map(|s| s.delivered_to_patient_ml));
    let volume = Panel {
        top: TOP + PANEL_HEIGHT + GAP,
        x: (0.0, end_h),
        y: (0.0, v_hi.max(0.001) * 1.05),
    };
    pressure.axes(
        &mut out,
        "Downstream pressure (sensor)",
        "time (h)",
        "pressure (mmHg)",
    );
    volume.axes(
        &mut out,
        "Volume delivered to the patient",
        "time (h)",
        "volume (mL)",
    );
    let colors = [
        "#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    ];
    for (i, a) in outcome.alarms.iter().enumerate() {
        let color = colors[i % colors.len()];
        let x0 = hours(a.raised_at_ms);
        let x1 = hours(a.cleared_at_ms.unwrap_or((r.duration_s * 1000.0) as u64));
        for p in [&pressure, &volume] {
            let (l, w) = (p.px(x0), (p.px(x1) - p.px(x0)).max(1.5));
            let _ = writeln!(
                out,
                r#"<rect x="{l:.1}" y="{}" width="{w:.1}" height="{PANEL_HEIGHT}" fill="{color}" fill-opacity="0.15"/>"#,
                p.top
            );
            let _ = writeln!(
                out,
                r#"<line x1="{l:.1}" y1="{}" x2="{l:.1}" y2="{}" stroke="{color}" stroke-width="1.5"/>"#,
                p.top,
                p.top + PANEL_HEIGHT
            );
        }
    }
    pressure.line(
        &mut out,
        &trace
            .iter()
            .map(|s| (hours(s.at_ms), s.downstream_pressure_mmhg))
            .collect::<Vec<_>>(),
        "#1f77b4",
        false,
    );
    volume.line(
        &mut out,
        &trace
            .iter()
            .map(|s| (hours(s.at_ms), s.delivered_to_patient_ml))
            .collect::<Vec<_>>(),
        "#2ca02c",
        false,
    );
    let mut y = TOP + 2.0 * PANEL_HEIGHT + GAP + 60.0;
    for (i, a) in outcome.alarms.iter().take(12).enumerate() {
        let color = colors[i % colors.len()];
        let cleared = a.cleared_at_ms.map_or("still active".to_string(), |c| {
            format!("cleared {:.2} h", hours(c))
        });
        let _ = writeln!(
            out,
            r#"<rect x="{LEFT}" y="{:.1}" width="12" height="12" fill="{color}" fill-opacity="0.5"/>"#,
            y - 10.0
        );
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{y:.1}" font-size="12">{} ({}) raised {:.2} h, {}</text>"#,
            LEFT + 18.0,
            escape(a.kind.name()),
            a.priority.name(),
            hours(a.raised_at_ms),
            escape(&cleared)
        );
        y += 18.0;
    }
    out.push_str("</svg>\n");
    out
}

/// The trumpet curve: max and min flow error per observation window, and the mean error.
pub fn trumpet_svg(t: &TrumpetResult) -> String {
    let height = TOP + PANEL_HEIGHT + 90.0;
    let mut out = header(
        height,
        &format!(
            "Trumpet curve at {} mL/h (IEC 60601-2-24, second hour)",
            t.rate_ml_per_h
        ),
    );
    let (lo, hi) = range(
        t.windows
            .iter()
            .flat_map(|w| [w.max_error_percent, w.min_error_percent])
            .chain([t.mean_error_percent, 0.0]),
    );
    let pad = (hi - lo) * 0.1 + 0.5;
    let p = Panel {
        top: TOP,
        x: (0.0, 32.0),
        y: (lo - pad, hi + pad),
    };
    p.axes(
        &mut out,
        "Flow error per observation window",
        "observation window (min)",
        "flow error (%)",
    );
    let max: Vec<(f64, f64)> = t
        .windows
        .iter()
        .map(|w| (w.window_min as f64, w.max_error_percent))
        .collect();
    let min: Vec<(f64, f64)> = t
        .windows
        .iter()
        .map(|w| (w.window_min as f64, w.min_error_percent))
        .collect();
    p.line(&mut out, &max, "#d62728", false);
    p.line(&mut out, &min, "#1f77b4", false);
    p.line(
        &mut out,
        &[(0.0, t.mean_error_percent), (32.0, t.mean_error_percent)],
        "#2ca02c",
        true,
    );
    for (x, y) in max.iter().chain(min.iter()) {
        let _ = writeln!(
            out,
            r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="#333333"/>"##,
            p.px(*x),
            p.py(*y)
        );
    }
    let y = TOP + PANEL_HEIGHT + 65.0;
    let _ = writeln!(
        out,
        r##"<text x="{LEFT}" y="{y}" font-size="12"><tspan fill="#d62728">— max error</tspan>   <tspan fill="#1f77b4">— min error</tspan>   <tspan fill="#2ca02c">- - mean flow error {:.2} %</tspan></text>"##,
        t.mean_error_percent
    );
    out.push_str("</svg>\n");
    out
}
