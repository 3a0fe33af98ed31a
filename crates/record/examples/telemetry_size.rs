//! Bytes per pump-day of telemetry on SQLite: the compact table at full resolution (one sample a
//! minute, 1,440 a day), the same day downsampled (15-minute buckets), and, for comparison, the same
//! samples as legacy `telemetry` events in the hash-chained record.
//!
//! `cargo run --release -p record --example telemetry_size [PUMPS]` (default 100 pumps, one patient
//! each, ids as the server makes them). Samples are written as the server's writer does: each minute one
//! batch with every pump's sample. The size is `page_count * page_size` after a WAL checkpoint, measured
//! before and after, divided by the number of pumps.
//!
//! With `INFUSAFE_TEST_POSTGRES_URL` set (`eval "$(scripts/pg-start)"`), the table is also measured on
//! PostgreSQL, in a schema of its own that is dropped afterwards: `pg_total_relation_size` (heap, key
//! index, TOAST) after `VACUUM`, and after downsampling and `VACUUM FULL`.

mod common;

use common::{open_sqlite as open, postgres_schema, sqlite_size as size};
use jiff::{SignedDuration, Timestamp};
use record::{
    Body, Config, NewEvent, PatientId, Source, Store, TelemetryRetention, TelemetrySample,
};

const SAMPLES_PER_DAY: usize = 1_440;

fn sample(pump: usize, i: usize, start: Timestamp) -> TelemetrySample {
    TelemetrySample {
        // Ids as the server makes them: a prefix and 24 hex digits.
        patient: PatientId::new(format!("pat_{:024x}", pump * 7919 + 1)).expect("patient id"),
        device_id: format!("dev_{:024x}", pump * 104_729 + 3),
        at: start + SignedDuration::from_secs(i as i64 * 60 + (pump % 60) as i64),
        bucket_s: 0,
        state: if i % 240 < 200 { "infusing" } else { "paused" }.into(),
        rate_ml_per_h: 100.0,
        delivered_ml: (i % 240) as f64 * 1.666_666_7,
        remaining_ml: 400.0 - (i % 240) as f64 * 1.666_666_7,
        battery_percent: 100.0 - (i as f64) * 0.05,
        mains_present: !i.is_multiple_of(100),
        downstream_pressure_mmhg: 80.0 + (i % 17) as f64 * 1.3,
        teaching: false,
    }
}

#[tokio::main]
async fn main() {
    let pumps: usize = std::env::args()
        .nth(1)
        .map_or(100, |n| n.parse().expect("PUMPS is a number"));
    let start: Timestamp = "2026-11-01T00:00:00Z".parse().expect("time");
    let base = std::env::temp_dir().join(format!("infusafe-telemetry-size-{}", std::process::id()));

    // The table: one day at full resolution, then the same day downsampled.
    let dir = base.join("table");
    let (store, url) = open(&dir).await;
    store.close().await;
    let empty = size(&url).await;
    let (store, _) = open(&dir).await;
    // As the server's writer does: every minute, one batch with every pump's sample.
    for i in 0..SAMPLES_PER_DAY {
        let minute: Vec<TelemetrySample> = (0..pumps).map(|pump| sample(pump, i, start)).collect();
        store.append_telemetry(&minute).await.expect("append");
    }
    store.close().await;
    let full = size(&url).await;
    let (store, _) = open(&dir).await;
    let report = store
        .compact_telemetry(
            start + SignedDuration::from_hours(24 * 8),
            &TelemetryRetention::default(),
        )
        .await
        .expect("compact");
    store.close().await;
    let vacuum = sqlx::SqlitePool::connect(&url).await.expect("open");
    sqlx::raw_sql("VACUUM")
        .execute(&vacuum)
        .await
        .expect("vacuum");
    vacuum.close().await;
    let downsampled = size(&url).await;

    // The same samples as legacy events of the hash-chained record.
    let dir_events = base.join("events");
    let (store, url_events) = open(&dir_events).await;
    store.close().await;
    let empty_events = size(&url_events).await;
    let (store, _) = open(&dir_events).await;
    for i in 0..SAMPLES_PER_DAY {
        let minute: Vec<NewEvent> = (0..pumps)
            .map(|pump| {
                let s = sample(pump, i, start);
                NewEvent {
                    patient: s.patient.clone(),
                    device_id: s.device_id.clone(),
                    device_seq: i as u64 + 1,
                    occurred_at: s.at,
                    local_offset_s: 3600,
                    source: Source::Pump,
                    actor: s.device_id.clone(),
                    teaching: false,
                    body: Body::Telemetry {
                        state: s.state,
                        rate_ml_per_h: s.rate_ml_per_h,
                        delivered_ml: s.delivered_ml,
                        remaining_ml: s.remaining_ml,
                        battery_percent: s.battery_percent,
                        mains_present: s.mains_present,
                        downstream_pressure_mmhg: s.downstream_pressure_mmhg,
                    },
                }
            })
            .collect();
        store.append(&minute).await.expect("append events");
    }
    store.close().await;
    let events = size(&url_events).await;
    let _ = std::fs::remove_dir_all(&base);

    let postgres = match std::env::var("INFUSAFE_TEST_POSTGRES_URL") {
        Ok(base) if !base.is_empty() => Some(postgres_sizes(&base, pumps, start).await),
        _ => None,
    };

    let per_pump = |bytes: i64| bytes as f64 / pumps as f64 / 1000.0;
    println!("{pumps} pumps, {SAMPLES_PER_DAY} samples per pump-day (one a minute), SQLite");
    println!(
        "record_telemetry, full resolution: {:.1} KB per pump-day ({:.1} bytes per sample)",
        per_pump(full - empty),
        (full - empty) as f64 / (pumps * SAMPLES_PER_DAY) as f64
    );
    println!(
        "record_telemetry, downsampled to 15-minute buckets ({} rows): {:.1} KB per pump-day",
        report.buckets_written,
        per_pump(downsampled - empty)
    );
    println!(
        "legacy telemetry events in record_events: {:.1} KB per pump-day",
        per_pump(events - empty_events)
    );
    if let Some((full, downsampled)) = postgres {
        println!(
            "PostgreSQL record_telemetry, full resolution: {:.1} KB per pump-day; downsampled: {:.1} KB per pump-day",
            per_pump(full),
            per_pump(downsampled)
        );
    }
}

/// The table's size on PostgreSQL at full resolution and downsampled, in bytes.
async fn postgres_sizes(base: &str, pumps: usize, start: Timestamp) -> (i64, i64) {
    let (url, schema) = postgres_schema(base, "size").await;
    let admin = sqlx::PgPool::connect(base).await.expect("postgres");
    let run = |sql: String| {
        let admin = admin.clone();
        async move {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&admin)
                .await
                .expect("postgres statement");
        }
    };
    let store = Store::open(Config::new(url))
        .await
        .expect("open postgres store");
    for i in 0..SAMPLES_PER_DAY {
        let minute: Vec<TelemetrySample> = (0..pumps).map(|pump| sample(pump, i, start)).collect();
        store.append_telemetry(&minute).await.expect("append");
    }
    let table = format!("\"{schema}\".record_telemetry");
    let size = |admin: sqlx::PgPool, table: String| async move {
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
            "SELECT pg_total_relation_size('{table}')"
        )))
        .fetch_one(&admin)
        .await
        .expect("size")
    };
    run(format!("VACUUM {table}")).await;
    let full = size(admin.clone(), table.clone()).await;
    let index: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT pg_indexes_size('{table}')"
    )))
    .fetch_one(&admin)
    .await
    .expect("index size");
    println!(
        "PostgreSQL, full resolution: {:.1} bytes per sample, of which the key index {:.1}",
        full as f64 / (pumps * SAMPLES_PER_DAY) as f64,
        index as f64 / (pumps * SAMPLES_PER_DAY) as f64
    );
    store
        .compact_telemetry(
            start + SignedDuration::from_hours(24 * 8),
            &TelemetryRetention::default(),
        )
        .await
        .expect("compact");
    store.close().await;
    run(format!("VACUUM FULL {table}")).await;
    let downsampled = size(admin.clone(), table).await;
    run(format!("DROP SCHEMA \"{schema}\" CASCADE")).await;
    admin.close().await;
    (full, downsampled)
}
