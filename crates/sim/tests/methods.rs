//! The IEC 60601-2-24 methods' numbers checked against the physics they simulate.

use sim::{MethodConfig, occlusion, trumpet};

#[test]
fn time_to_occlusion_scales_with_one_over_rate_and_matches_compliance() {
    let cfg = MethodConfig::default();
    let slow = occlusion(5.0, &cfg).expect("runs");
    let fast = occlusion(50.0, &cfg).expect("runs");
    assert_eq!(slow.rows.len(), 3);
    assert!(slow.rows[2].default_limit && !slow.rows[0].default_limit);
    for (s, f) in slow.rows.iter().zip(&fast.rows) {
        // The pressure limit alone: ten times the rate, a tenth of the time (strokes of 50 µL
        // quantize the volume), and compliance × pressure rise / rate within a stroke plus a
        // sensor period.
        let ts = s.time_to_alarm_limit_only_s.expect("slow alarms");
        let tf = f.time_to_alarm_limit_only_s.expect("fast alarms");
        let ratio = ts / tf;
        assert!(
            (7.0..=13.0).contains(&ratio),
            "limit {}: {ts} s vs {tf} s, ratio {ratio}",
            s.limit_mmhg
        );
        let stroke_s = 50.0 / (5.0 / 3.6);
        assert!(
            (ts - s.predicted_time_s).abs() <= stroke_s + 1.0,
            "limit {}: {ts} s vs predicted {} s",
            s.limit_mmhg,
            s.predicted_time_s
        );
        // The per-stroke detector is never slower than the limit, and at 5 mL/h (a stroke every
        // 36 s) needs at most two strokes and its 30 s confirmation.
        let detector = s.time_to_alarm_s.expect("alarms");
        assert!(detector <= ts + 0.2, "{s:?}");
        assert!(detector <= 2.0 * stroke_s + 31.0, "{s:?}");
        // Without relief, the bolus on release is the line's stored volume: compliance × pressure
        // above venous. With relief it is at most 0.05 mL at every limit.
        assert!(
            (s.bolus_without_relief_ml
                - predicted_stored_ml(s.pressure_at_release_without_relief_mmhg))
            .abs()
                < 0.02,
            "{s:?}"
        );
        assert!(s.bolus_ml <= 0.05 && f.bolus_ml <= 0.05, "{s:?} {f:?}");
        assert!((s.bolus_ml - s.predicted_bolus_ml).abs() < 0.02, "{s:?}");
    }
    // The higher limit alone means a longer wait; the detector alarms before the pressure builds,
    // so even without relief the line holds at most the two strokes it judged (0.1 mL).
    assert!(slow.rows[1].time_to_alarm_limit_only_s > slow.rows[0].time_to_alarm_limit_only_s);
    for r in &slow.rows {
        assert!(r.bolus_without_relief_ml <= 0.12, "{r:?}");
    }
}

/// Default line: 1.3 µL/mmHg above a venous pressure of 8 mmHg.
fn predicted_stored_ml(pressure_mmhg: f64) -> f64 {
    1.3 * (pressure_mmhg - 8.0).max(0.0) / 1000.0
}

#[test]
fn trumpet_curve_narrows_with_the_window_and_the_mean_follows_the_stroke_bias() {
    let t = trumpet(10.0, &MethodConfig::default()).expect("runs");
    assert_eq!(
        t.windows.iter().map(|w| w.window_min).collect::<Vec<_>>(),
        [2, 5, 11, 19, 31]
    );
    let spread = |w: &sim::methods::TrumpetWindow| w.max_error_percent - w.min_error_percent;
    assert!(spread(&t.windows[0]) > spread(&t.windows[4]), "{t:?}");
    for w in &t.windows {
        assert!(w.max_error_percent >= w.min_error_percent);
    }
    // The default set is 1 % wide: the mean flow error is about +1 %, inside the ±5 % class.
    assert!(
        (0.0..2.5).contains(&t.mean_error_percent),
        "mean error {}",
        t.mean_error_percent
    );
    assert_eq!(t.sample_flows_ml_per_h.len(), 120);
    // A set 3 % narrow moves the mean down by about 4 points.
    let mut cfg = MethodConfig::default();
    cfg.plant.stroke_volume_bias_fraction = -0.03;
    let narrow = trumpet(10.0, &cfg).expect("runs");
    let shift = t.mean_error_percent - narrow.mean_error_percent;
    assert!((3.0..5.0).contains(&shift), "shift {shift}");
}

#[test]
fn methods_refuse_impossible_rates() {
    let cfg = MethodConfig::default();
    for rate in [0.0, -1.0, 1000.0, f64::NAN] {
        assert!(trumpet(rate, &cfg).is_err(), "{rate}");
        assert!(occlusion(rate, &cfg).is_err(), "{rate}");
    }
}

#[test]
fn svg_output_is_well_formed() {
    let t = trumpet(25.0, &MethodConfig::default()).expect("runs");
    let svg = sim::svg::trumpet_svg(&t);
    assert_well_formed(&svg);
    assert!(svg.contains("observation window (min)") && svg.contains("flow error (%)"));
    let scenario = sim::Scenario::from_toml_str(
        "name = \"a <&> b\"\nduration = \"30m\"\n[program]\nrate_ml_per_h = 20\nvtbi_ml = 50\n[[event]]\nat = \"0s\"\naction = \"start\"\n[[event]]\nat = \"10m\"\naction = \"kink\"\n[[expect]]\nalarm = \"occlusion_downstream\"\n",
        "svg.toml",
    )
    .expect("valid");
    let outcome = sim::run_scenario(&scenario, sim::RunConfig { trace: true });
    let svg = sim::svg::run_svg(&outcome);
    assert_well_formed(&svg);
    assert!(
        svg.contains("a &lt;&amp;&gt; b")
            && svg.contains("occlusion_downstream")
            && svg.contains("pressure (mmHg)")
    );
}

/// A small XML well-formedness check: balanced tags, quoted attributes, only the five entities.
fn assert_well_formed(xml: &str) {
    let body = xml
        .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
        .expect("XML declaration");
    let mut stack: Vec<String> = Vec::new();
    let mut rest = body;
    while let Some(open) = rest.find('<') {
        let text = &rest[..open];
        check_text(text);
        let close = rest[open..].find('>').expect("unclosed tag") + open;
        let tag = &rest[open + 1..close];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(name), "mismatched </{name}>");
        } else if !tag.ends_with('/') {
            stack.push(tag.split_whitespace().next().expect("tag name").to_string());
        }
        assert_eq!(
            tag.matches('"').count() % 2,
            0,
            "unbalanced quotes in <{tag}>"
        );
        rest = &rest[close + 1..];
    }
    check_text(rest);
    assert!(stack.is_empty(), "unclosed elements {stack:?}");
}

fn check_text(text: &str) {
    let mut t = text;
    while let Some(i) = t.find('&') {
        let entity = &t[i..t[i..]
            .find(';')
            .map(|j| i + j + 1)
            .expect("unterminated entity")];
        assert!(
            ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"].contains(&entity),
            "entity {entity}"
        );
        t = &t[i + 1..];
    }
}
