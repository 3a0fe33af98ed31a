//! Benchmarks of the record: durable append throughput (one event per transaction, and batches) and
//! the one-year timeline of one patient, on SQLite and, when INFUSAFE_TEST_POSTGRES_URL is set, on
//! PostgreSQL. Figures and the command are in docs/bench/record.md.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use jiff::{SignedDuration, Timestamp};
use record::{Body, Config, Kind, NewEvent, PatientId, Source, Store, TimelineQuery};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::runtime::Runtime;

const BATCH_EVENTS: usize = 1_000;
/// Events per day of the benchmark patient: two 2-hour infusions with telemetry every 10 minutes, an
/// alarm and its clearing, and the patient's own log entries.
const DAYS: i64 = 365;
/// Other patients in the same database, so the index has to find one patient among several.
const OTHER_PATIENTS: usize = 5;

static SEQ: AtomicU64 = AtomicU64::new(0);

fn next_seq() -> u64 {
    SEQ.fetch_add(1, Ordering::Relaxed)
}

fn telemetry(delivered_ml: f64) -> Body {
    Body::Telemetry {
        state: "infusing".into(),
        rate_ml_per_h: 125.0,
        delivered_ml,
        remaining_ml: 250.0 - delivered_ml,
        battery_percent: 80.0,
        mains_present: true,
        downstream_pressure_mmhg: 90.0,
    }
}

fn new_event(patient: &str, device: &str, seq: u64, at: Timestamp, body: Body) -> NewEvent {
    NewEvent {
        patient: PatientId::new(patient).unwrap(),
        device_id: device.into(),
        device_seq: seq,
        occurred_at: at,
        local_offset_s: 3600,
        source: Source::Pump,
        actor: device.into(),
        teaching: false,
        body,
    }
}

/// One day of a patient's record: two infusions and one alarm.
fn day(patient: &str, device: &str, start: Timestamp) -> Vec<NewEvent> {
    let mut bodies = infusion(8 * 60);
    bodies.extend(infusion(20 * 60));
    bodies.extend(occlusion(9 * 60));
    bodies
        .into_iter()
        .map(|(offset_min, body)| {
            new_event(
                patient,
                device,
                next_seq(),
                start + SignedDuration::from_mins(offset_min),
                body,
            )
        })
        .collect()
}

/// One infusion starting `start_min` minutes into the day, from the checklist to the reminder, with the
/// minute of each event.
fn infusion(start_min: i64) -> Vec<(i64, Body)> {
    let mut bodies = Vec::new();
    let mut push = |offset_min: i64, body: Body| bodies.push((offset_min, body));
    push(
        start_min - 5,
        Body::ChecklistCompleted {
            checklist: "before_infusion".into(),
            items: vec!["hands washed".into(), "line flushed".into()],
        },
    );
    push(
        start_min - 1,
        Body::ProgramAccepted {
            drug_id: Some("ceftriaxone".into()),
            rate_ml_per_h: 125.0,
            vtbi_ml: 250.0,
            bolus_ml: None,
        },
    );
    push(
        start_min,
        Body::InfusionStarted {
            drug_id: Some("ceftriaxone".into()),
            rate_ml_per_h: 125.0,
            vtbi_ml: 250.0,
        },
    );
    for tick in 1..=12 {
        push(start_min + tick * 10, telemetry(tick as f64 * 20.8));
    }
    push(
        start_min + 120,
        Body::InfusionCompleted {
            delivered_ml: 249.6,
        },
    );
    push(
        start_min + 125,
        Body::SiteCheck {
            findings: vec![],
            note: None,
        },
    );
    push(
        start_min + 130,
        Body::Feeling {
            rating: Some(4),
            text: Some("fine".into()),
        },
    );
    push(
        start_min + 131,
        Body::ReminderDone {
            reminder: "flush the line".into(),
        },
    );
    bodies
}

/// An occlusion raised at `at_min` and cleared two minutes later.
fn occlusion(at_min: i64) -> Vec<(i64, Body)> {
    let mut bodies = Vec::new();
    let mut push = |offset_min: i64, body: Body| bodies.push((offset_min, body));
    push(
        at_min,
        Body::AlarmRaised {
            alarm: "occlusion_downstream".into(),
            priority: "high".into(),
            detail: None,
        },
    );
    push(
        at_min + 2,
        Body::AlarmCleared {
            alarm: "occlusion_downstream".into(),
            resolution: Some("unclamped".into()),
        },
    );
    bodies
}

struct Backend {
    name: &'static str,
    store: Store,
    /// What to remove afterwards: the SQLite directory or the PostgreSQL schema (with its base URL).
    cleanup: Cleanup,
}

enum Cleanup {
    Directory(std::path::PathBuf),
    Schema { base_url: String, schema: String },
}

fn backends(runtime: &Runtime) -> Vec<Backend> {
    let mut backends = Vec::new();
    let dir = std::env::temp_dir().join(format!("infusafe-record-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = runtime
        .block_on(Store::open(Config::new(record::default_database_url(&dir))))
        .unwrap();
    backends.push(Backend {
        name: "sqlite",
        store,
        cleanup: Cleanup::Directory(dir),
    });
    if let Ok(base) = std::env::var("INFUSAFE_TEST_POSTGRES_URL") {
        let schema = format!("bench_{}", std::process::id());
        runtime.block_on(async {
            let admin = sqlx::PgPool::connect(&base).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                .execute(&admin)
                .await
                .unwrap();
            admin.close().await;
        });
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options[search_path]={schema}");
        let store = runtime.block_on(Store::open(Config::new(url))).unwrap();
        backends.push(Backend {
            name: "postgres",
            store,
            cleanup: Cleanup::Schema {
                base_url: base,
                schema,
            },
        });
    } else {
        eprintln!(
            "INFUSAFE_TEST_POSTGRES_URL is not set: benchmarking SQLite only (eval \"$(scripts/pg-start)\" for PostgreSQL)"
        );
    }
    backends
}

fn bench(c: &mut Criterion) {
    let runtime = Runtime::new().unwrap();
    let start = "2025-01-01T00:00:00Z".parse::<Timestamp>().unwrap();
    for backend in backends(&runtime) {
        let year_events = fill_year(&runtime, &backend.store, start);
        bench_append(c, &runtime, &backend);
        bench_timeline(c, &runtime, &backend, start, year_events);
        clean_up(&runtime, backend);
    }
}

/// A year of the benchmark patient, plus other patients, before anything is measured; returns the
/// benchmark patient's number of events.
fn fill_year(runtime: &Runtime, store: &Store, start: Timestamp) -> usize {
    // A year of the benchmark patient, plus other patients, before anything is measured.
    let mut year = Vec::new();
    for d in 0..DAYS {
        let day_start = start + SignedDuration::from_hours(24 * d);
        year.extend(day("year-patient", "year-pump", day_start));
        for other in 0..OTHER_PATIENTS {
            year.extend(day(
                &format!("other-{other}"),
                &format!("other-pump-{other}"),
                day_start,
            ));
        }
    }
    for chunk in year.chunks(10_000) {
        runtime.block_on(store.append(chunk)).unwrap();
    }
    year.len() / (OTHER_PATIENTS + 1)
}

fn bench_append(c: &mut Criterion, runtime: &Runtime, backend: &Backend) {
    let store = &backend.store;
    let mut group = c.benchmark_group(format!("{}/append", backend.name));
    group.throughput(Throughput::Elements(1));
    group.bench_function("single_event_durable", |b| {
        b.iter_batched(
            || {
                vec![new_event(
                    "append-patient",
                    "append-pump",
                    next_seq(),
                    Timestamp::now(),
                    telemetry(1.0),
                )]
            },
            |batch| runtime.block_on(store.append(&batch)).unwrap(),
            BatchSize::PerIteration,
        )
    });
    group.throughput(Throughput::Elements(BATCH_EVENTS as u64));
    group.bench_function(format!("batch_of_{BATCH_EVENTS}_durable"), |b| {
        b.iter_batched(
            || {
                (0..BATCH_EVENTS)
                    .map(|_| {
                        new_event(
                            "append-patient",
                            "append-pump",
                            next_seq(),
                            Timestamp::now(),
                            telemetry(1.0),
                        )
                    })
                    .collect::<Vec<_>>()
            },
            |batch| runtime.block_on(store.append(&batch)).unwrap(),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn bench_timeline(
    c: &mut Criterion,
    runtime: &Runtime,
    backend: &Backend,
    start: Timestamp,
    year_events: usize,
) {
    let store = &backend.store;
    let mut group = c.benchmark_group(format!("{}/timeline", backend.name));
    let year_query = TimelineQuery {
        patient: PatientId::new("year-patient").unwrap(),
        from: Some(start),
        to: Some(start + SignedDuration::from_hours(24 * DAYS)),
        kinds: Vec::new(),
        limit: None,
    };
    let got = runtime.block_on(store.timeline(&year_query)).unwrap().len();
    assert_eq!(got, year_events, "the year query returns the whole year");
    group.throughput(Throughput::Elements(year_events as u64));
    group.bench_function(format!("one_year_all_{year_events}_events"), |b| {
        b.iter(|| runtime.block_on(store.timeline(&year_query)).unwrap())
    });
    let without_telemetry = TimelineQuery {
        kinds: Kind::names(&[
            Kind::InfusionStarted,
            Kind::InfusionCompleted,
            Kind::AlarmRaised,
            Kind::AlarmCleared,
            Kind::SiteCheck,
            Kind::Feeling,
        ]),
        ..year_query.clone()
    };
    let clinical = runtime
        .block_on(store.timeline(&without_telemetry))
        .unwrap()
        .len();
    group.throughput(Throughput::Elements(clinical as u64));
    group.bench_function(format!("one_year_clinical_kinds_{clinical}_events"), |b| {
        b.iter(|| {
            runtime
                .block_on(store.timeline(&without_telemetry))
                .unwrap()
        })
    });
    let page = TimelineQuery {
        limit: Some(200),
        ..year_query.clone()
    };
    group.throughput(Throughput::Elements(200));
    group.bench_function("one_year_first_page_200", |b| {
        b.iter(|| runtime.block_on(store.timeline(&page)).unwrap())
    });
    group.finish();
}

fn clean_up(runtime: &Runtime, backend: Backend) {
    runtime.block_on(backend.store.close());
    match backend.cleanup {
        Cleanup::Directory(dir) => {
            let _ = std::fs::remove_dir_all(dir);
        }
        Cleanup::Schema { base_url, schema } => runtime.block_on(async {
            let admin = sqlx::PgPool::connect(&base_url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                .execute(&admin)
                .await
                .unwrap();
            admin.close().await;
        }),
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
