//! What one pump-day of issue 15's load costs the record, all of its tables together: each pump reports its
//! state once a minute (`state_changed {"state": "infusing"}`, with the stamps the server adds, one append per
//! pump per minute as the link makes them), one telemetry sample a minute (written for every pump at once, as
//! the server's grouped writer does), and alarms at the load's rate (3 a second across 10,000 pumps: one every
//! 56 pump-minutes, about 26 a pump-day), each raised and cleared a minute later. Every simulated hour the
//! retention duty runs as the server runs it (hourly), packing each hour of telemetry that ended an hour ago.
//!
//! `cargo run --release -p record --example pump_day_size [PUMPS] [DAYS]` (default 100 pumps, one patient
//! each, ids as the server makes them; 2 days). The figure is the growth of the **last** day: the first day
//! also pays once for what stays the same size (the recent hours kept as rows, one status row per pump).
//! SQLite: `page_count * page_size` after a WAL checkpoint. With `INFUSAFE_TEST_POSTGRES_URL` set
//! (`eval "$(scripts/pg-start)"`), the same days on PostgreSQL, in a schema of its own that is dropped
//! afterwards: `pg_total_relation_size` of each table after a plain `VACUUM` (what autovacuum does), the row
//! table also vacuumed after each hourly retention run (see `one_day`).

mod common;

use common::{open_sqlite, postgres_schema, sqlite_size};
use jiff::{SignedDuration, Timestamp};
use record::{
    Body, Config, NewEvent, PatientId, Source, Store, TelemetryRetention, TelemetrySample,
    TimelineQuery,
};
use serde_json::json;
use std::sync::Arc;

const MINUTES_PER_DAY: usize = 1_440;
/// One alarm every this many pump-minutes: 3 a second across 10,000 pumps is one per 55.6.
const ALARM_EVERY_PUMP_MINUTES: usize = 56;
/// Appends in flight at once (the server's link requests run side by side).
const IN_FLIGHT: usize = 8;

fn patient(pump: usize) -> PatientId {
    PatientId::new(format!("pat_{:024x}", pump * 7919 + 1)).expect("patient id")
}

fn device(pump: usize) -> String {
    format!("dev_{:024x}", pump * 104_729 + 3)
}

/// A pump event as the link stores it: its kind and data, plus the server's `device_id` and `seq` stamps.
fn pump_event(
    pump: usize,
    seq: u64,
    at: Timestamp,
    kind: &str,
    data: serde_json::Value,
) -> NewEvent {
    let mut payload = data;
    payload["device_id"] = device(pump).into();
    payload["seq"] = seq.into();
    NewEvent {
        patient: patient(pump),
        device_id: device(pump),
        device_seq: seq,
        occurred_at: at,
        local_offset_s: 3600,
        source: Source::Pump,
        actor: device(pump),
        teaching: false,
        body: Body::Unknown {
            kind: kind.into(),
            payload,
        },
    }
}

/// Pump `pump`'s batch of minute `i`: its state report, and an alarm raised or cleared when it is due. The
/// pump numbers its events one after another from `next_seq`, as the link client does, and moves it on.
fn batch(pump: usize, pumps: usize, i: usize, at: Timestamp, next_seq: &mut u64) -> Vec<NewEvent> {
    let slot = |minute: usize| (minute * pumps + pump).is_multiple_of(ALARM_EVERY_PUMP_MINUTES);
    let mut seq = *next_seq;
    let mut events = vec![pump_event(
        pump,
        seq,
        at,
        "state_changed",
        json!({"state": "infusing"}),
    )];
    seq += 1;
    let alarm = json!({"alarm": "occlusion_downstream"});
    if slot(i) {
        let mut raised = alarm.clone();
        raised["priority"] = "high".into();
        raised["detail"] = format!("infusafe load #{}", i * pumps + pump).into();
        events.push(pump_event(pump, seq, at, "alarm_raised", raised));
    } else if i > 0 && slot(i - 1) {
        let mut cleared = alarm;
        cleared["resolution"] = "infusafe load".into();
        events.push(pump_event(pump, seq, at, "alarm_cleared", cleared));
    }
    *next_seq = seq + u64::from(events.len() > 1);
    events
}

fn sample(pump: usize, i: usize, at: Timestamp) -> TelemetrySample {
    TelemetrySample {
        patient: patient(pump),
        device_id: device(pump),
        at,
        bucket_s: 0,
        state: "infusing".into(),
        rate_ml_per_h: 100.0,
        delivered_ml: (i % 240) as f64 * 1.666_666_7,
        remaining_ml: 400.0 - (i % 240) as f64 * 1.666_666_7,
        battery_percent: 100.0 - (i as f64) * 0.05,
        mains_present: true,
        downstream_pressure_mmhg: 80.0 + (i % 17) as f64 * 1.3,
        teaching: false,
    }
}

/// Writes day `day` (from 0); returns the events the chain holds and the reports restated that day.
/// `vacuum` (PostgreSQL): the row table to vacuum after each hourly retention run, as autovacuum does in
/// real time (the packing deletes a third of the table's rows, well past autovacuum's default 20 %); a
/// simulated day passes in about a minute, faster than autovacuum's own schedule.
async fn one_day(
    store: Arc<Store>,
    pumps: usize,
    day: usize,
    next_seq: &mut [u64],
    vacuum: Option<(&sqlx::PgPool, &str)>,
) -> (usize, u64) {
    let start: Timestamp = "2026-11-01T00:00:00Z".parse().expect("time");
    let mut restated = 0;
    for i in day * MINUTES_PER_DAY..(day + 1) * MINUTES_PER_DAY {
        let minute = start + SignedDuration::from_secs(i as i64 * 60);
        let mut tasks: tokio::task::JoinSet<Result<u64, record::RecordError>> =
            tokio::task::JoinSet::new();
        for (pump, next) in next_seq.iter_mut().enumerate().take(pumps) {
            if tasks.len() >= IN_FLIGHT {
                let done = tasks.join_next().await.expect("a task");
                restated += done.expect("a task").expect("append");
            }
            let at = minute + SignedDuration::from_millis((pump * 397 % 60_000) as i64);
            let store = store.clone();
            let events = batch(pump, pumps, i, at, next);
            tasks.spawn(async move {
                let receipts = store.append(&events).await?;
                Ok(receipts.iter().filter(|r| r.restated).count() as u64)
            });
        }
        while let Some(done) = tasks.join_next().await {
            restated += done.expect("a task").expect("append");
        }
        let samples: Vec<TelemetrySample> = (0..pumps)
            .map(|pump| sample(pump, i, minute + SignedDuration::from_secs(5)))
            .collect();
        store.append_telemetry(&samples).await.expect("telemetry");
        if i % 60 == 59 {
            // The server's hourly retention duty: packs each hour that ended an hour ago.
            store
                .compact_telemetry(
                    minute + SignedDuration::from_secs(60),
                    &TelemetryRetention::default(),
                )
                .await
                .expect("compact");
            if let Some((admin, table)) = vacuum {
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("VACUUM {table}")))
                    .execute(admin)
                    .await
                    .expect("vacuum");
            }
        }
    }
    let mut chained = 0;
    for pump in 0..pumps {
        chained += store
            .timeline(&TimelineQuery::all(patient(pump)))
            .await
            .expect("timeline")
            .len();
    }
    (chained, restated)
}

async fn close(store: Arc<Store>) {
    Arc::into_inner(store)
        .expect("every append is done")
        .close()
        .await;
}

/// Prints the last day's growth per pump; `sizes` holds the size before the first day and after each;
/// `restated`: the last day's restatements.
fn report(backend: &str, pumps: usize, sizes: &[i64], chained: usize, restated: u64) {
    let per_pump = |bytes: i64| bytes as f64 / pumps as f64 / 1000.0;
    let days = sizes.len() - 1;
    let growth: Vec<String> = sizes
        .windows(2)
        .map(|w| format!("{:.1}", per_pump(w[1] - w[0])))
        .collect();
    println!(
        "{backend}: {:.1} KB per pump-day (day by day: {} KB; {} events chained and {} state reports counted \
         per pump-day)",
        per_pump(sizes[days] - sizes[days - 1]),
        growth.join(", "),
        chained / pumps / days,
        restated / pumps as u64
    );
}

#[tokio::main]
async fn main() {
    let arg = |n: usize, default: usize, what: &str| {
        std::env::args().nth(n).map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{what} is a number, not {v:?}"))
        })
    };
    let pumps = arg(1, 100, "PUMPS").max(1);
    let days = arg(2, 2, "DAYS").max(1);
    println!(
        "{pumps} pumps, {days} days of issue 15's load (a batch and a telemetry sample a minute, ~26 alarms a day)"
    );

    let dir = std::env::temp_dir().join(format!("infusafe-pump-day-{}", std::process::id()));
    let (store, url) = open_sqlite(&dir).await;
    store.close().await;
    let mut sizes = vec![sqlite_size(&url).await];
    let mut outcome = (0, 0);
    let mut next_seq = vec![1; pumps];
    for day in 0..days {
        let (store, _) = open_sqlite(&dir).await;
        let store = Arc::new(store);
        outcome = one_day(store.clone(), pumps, day, &mut next_seq, None).await;
        close(store).await;
        sizes.push(sqlite_size(&url).await);
    }
    report("SQLite", pumps, &sizes, outcome.0, outcome.1);
    let _ = std::fs::remove_dir_all(&dir);

    if let Ok(base) = std::env::var("INFUSAFE_TEST_POSTGRES_URL")
        && !base.is_empty()
    {
        let (url, schema) = postgres_schema(&base, "pump_day").await;
        let store = Arc::new(
            Store::open(Config::new(url))
                .await
                .expect("open postgres store"),
        );
        let admin = sqlx::PgPool::connect(&base).await.expect("postgres");
        let by_table = || async {
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname = $1 \
                 ORDER BY tablename",
            )
            .bind(&schema)
            .fetch_all(&admin)
            .await
            .expect("tables");
            let mut sizes = Vec::with_capacity(tables.len());
            for table in tables {
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("VACUUM {table}")))
                    .execute(&admin)
                    .await
                    .expect("vacuum");
                let bytes: i64 = sqlx::query_scalar("SELECT pg_total_relation_size($1::regclass)")
                    .bind(&table)
                    .fetch_one(&admin)
                    .await
                    .expect("size");
                sizes.push((table, bytes));
            }
            sizes
        };
        let mut tables = vec![by_table().await];
        let mut outcome = (0, 0);
        let mut next_seq = vec![1; pumps];
        for day in 0..days {
            let rows = format!("\"{schema}\".record_telemetry");
            outcome = one_day(
                store.clone(),
                pumps,
                day,
                &mut next_seq,
                Some((&admin, &rows)),
            )
            .await;
            tables.push(by_table().await);
        }
        close(store).await;
        let sizes: Vec<i64> = tables
            .iter()
            .map(|t| t.iter().map(|(_, bytes)| bytes).sum())
            .collect();
        report("PostgreSQL", pumps, &sizes, outcome.0, outcome.1);
        for ((table, old), (_, new)) in tables[days - 1].iter().zip(&tables[days]) {
            println!(
                "  {table}: {:.1} KB per pump-day ({:.1} KB per pump in all)",
                (new - old) as f64 / pumps as f64 / 1000.0,
                *new as f64 / pumps as f64 / 1000.0
            );
        }
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA \"{schema}\" CASCADE"
        )))
        .execute(&admin)
        .await
        .expect("drop schema");
        admin.close().await;
    }
}
