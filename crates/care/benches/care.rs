//! Speed of the companion's hot paths: triage of a report (run on every symptom check and every alarm the server
//! receives) and writing a plan's calendar. Figures go to docs/bench/care.md.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

const PLAN: &str = include_str!("../../../examples/plans/antibiotics-picc.toml");

fn benches(c: &mut Criterion) {
    let report = r#"{"plan": {"line": "picc", "critical_therapy": true},
        "observations": ["new_redness_at_site", "fever"],
        "alarms": [{"kind": "occlusion_downstream", "times_in_last_30_min": 3, "steps_followed": true}]}"#;
    let _ = care::content();
    c.bench_function("triage_json_issue_example", |b| {
        b.iter(|| care::triage_json(black_box(report)).unwrap())
    });
    let empty = r#"{"observations": []}"#;
    c.bench_function("triage_json_empty", |b| {
        b.iter(|| care::triage_json(black_box(empty)).unwrap())
    });
    let plan = care::TherapyPlan::from_toml(PLAN).unwrap();
    let now = jiff::Timestamp::from_second(1_790_000_000).unwrap();
    c.bench_function("calendar_antibiotics_plan", |b| {
        b.iter(|| care::ical::calendar(black_box(&plan), now))
    });
    c.bench_function("plan_from_toml", |b| {
        b.iter(|| care::TherapyPlan::from_toml(black_box(PLAN)).unwrap())
    });
}

criterion_group!(care_benches, benches);
criterion_main!(care_benches);
