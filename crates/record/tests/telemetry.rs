//! The telemetry table (`record_telemetry`): batched appends, the series that merges it with legacy
//! `telemetry` events, the CSV export, and retention. Every body runs on SQLite and on PostgreSQL.

mod common;

use common::{TestDb, at, event, patient, raw_sql};
use jiff::{SignedDuration, Timestamp};
use record::export::ExportQuery;
use record::{Body, RecordError, TelemetryRetention, TelemetrySample};
use record::{Config, Store};

on_both_backends!(
    one_transaction_for_2000_samples_of_500_pumps,
    a_resent_sample_is_not_stored_twice,
    bad_samples_are_refused_by_index,
    series_and_csv_are_the_same_from_legacy_events_rows_or_both,
    latest_telemetry_reads_rows_and_legacy_events,
    compaction_keeps_last_state_and_max_pressure_and_is_idempotent,
    compaction_removes_rows_past_keep_for_and_never_touches_events,
    compaction_of_a_long_backlog_runs_in_short_transactions,
    a_database_from_before_the_table_is_upgraded_and_keeps_its_telemetry_events,
    hours_that_ended_an_hour_ago_are_packed_and_read_back_bit_for_bit,
    two_retention_runs_at_once_lose_no_sample,
    a_damaged_block_is_refused_by_name_and_stops_only_its_patient,
);

fn sample(patient_id: &str, device: &str, time: Timestamp, i: usize) -> TelemetrySample {
    TelemetrySample {
        patient: patient(patient_id),
        device_id: device.into(),
        at: time,
        bucket_s: 0,
        state: if i % 7 == 3 { "paused" } else { "infusing" }.into(),
        rate_ml_per_h: 100.0 + (i % 5) as f64,
        delivered_ml: i as f64 * 1.5,
        remaining_ml: 1000.0 - i as f64 * 1.5,
        battery_percent: 100.0 - (i / 10) as f64,
        mains_present: !i.is_multiple_of(11),
        downstream_pressure_mmhg: 60.0 + (i % 13) as f64 * 10.0,
        teaching: false,
    }
}

fn telemetry_body(s: &TelemetrySample) -> Body {
    Body::Telemetry {
        state: s.state.clone(),
        rate_ml_per_h: s.rate_ml_per_h,
        delivered_ml: s.delivered_ml,
        remaining_ml: s.remaining_ml,
        battery_percent: s.battery_percent,
        mains_present: s.mains_present,
        downstream_pressure_mmhg: s.downstream_pressure_mmhg,
    }
}

/// The same sample as a legacy `telemetry` event of the hash-chained record.
fn legacy(s: &TelemetrySample, seq: u64) -> record::NewEvent {
    event(
        s.patient.as_str(),
        &s.device_id,
        seq,
        s.at,
        telemetry_body(s),
    )
}

/// `n` samples a minute apart from `start`, on one pump.
fn series(patient_id: &str, device: &str, start: Timestamp, n: usize) -> Vec<TelemetrySample> {
    (0..n)
        .map(|i| {
            sample(
                patient_id,
                device,
                start + SignedDuration::from_mins(i as i64),
                i,
            )
        })
        .collect()
}

async fn rows(db: &TestDb) -> i64 {
    count_rows(db, "record_telemetry").await
}

/// Rows of one of the telemetry tables, behind the store's back.
async fn count_rows(db: &TestDb, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    let url = db.url.clone();
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let n = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        n
    } else {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let n = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        n
    }
}

async fn one_transaction_for_2000_samples_of_500_pumps(db: TestDb) {
    let start = at("2026-11-20T08:00:00Z");
    let mut batch = Vec::new();
    for pump in 0..500 {
        let p = format!("p-{:03}", pump / 2);
        batch.extend(series(&p, &format!("pump-{pump:03}"), start, 4));
    }
    assert_eq!(batch.len(), 2_000);
    // A database-level refusal of the very last row (past the first INSERT of 1,000 rows) must leave
    // nothing of the batch behind: all 2,000 are one transaction.
    if db.url.starts_with("sqlite:") {
        raw_sql(
            &db,
            "CREATE TRIGGER poison BEFORE INSERT ON record_telemetry WHEN NEW.device_id = 'poison' \
             BEGIN SELECT RAISE(ABORT, 'poisoned sample'); END;",
        )
        .await;
    } else {
        raw_sql(
            &db,
            "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF NEW.device_id = 'poison' THEN RAISE EXCEPTION 'poisoned sample'; END IF; RETURN NEW; END $$; \
             CREATE TRIGGER poison BEFORE INSERT ON record_telemetry FOR EACH ROW EXECUTE FUNCTION poison();",
        )
        .await;
    }
    let mut poisoned = batch.clone();
    poisoned.last_mut().unwrap().device_id = "poison".into();
    let refused = db.store.append_telemetry(&poisoned).await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(rows(&db).await, 0, "nothing of a refused batch is stored");

    assert_eq!(db.store.append_telemetry(&batch).await.unwrap(), 2_000);
    assert_eq!(rows(&db).await, 2_000);
    let one = db
        .store
        .telemetry_series(&patient("p-007"), None, None)
        .await
        .unwrap();
    assert_eq!(one.len(), 8, "two pumps of four samples");
    assert_eq!(one[0].at, start);
    assert_eq!(one[0].device_id, "pump-014");
    assert_eq!(one[1].device_id, "pump-015");
}

async fn a_resent_sample_is_not_stored_twice(db: TestDb) {
    let batch = series("p-1", "pump-a", at("2026-11-20T08:00:00Z"), 10);
    assert_eq!(db.store.append_telemetry(&batch).await.unwrap(), 10);
    assert_eq!(db.store.append_telemetry(&batch[5..]).await.unwrap(), 0);
    assert_eq!(db.store.append_telemetry(&[]).await.unwrap(), 0);
    assert_eq!(rows(&db).await, 10);
}

async fn bad_samples_are_refused_by_index(db: TestDb) {
    let mut batch = series("p-1", "pump-a", at("2026-11-20T08:00:00Z"), 3);
    batch[2].downstream_pressure_mmhg = f64::NAN;
    let err = db.store.append_telemetry(&batch).await.unwrap_err();
    assert!(
        matches!(&err, RecordError::InvalidEvent { what, reason }
            if what == "telemetry sample 2" && reason.contains("downstream_pressure_mmhg")),
        "{err}"
    );
    batch[2].downstream_pressure_mmhg = 1.0;
    batch[1].device_id = String::new();
    assert!(db.store.append_telemetry(&batch).await.is_err());
    assert_eq!(rows(&db).await, 0);
}

/// The telemetry lines of a CSV export: (time, pump, payload).
fn csv_telemetry(csv: &str) -> Vec<(String, String, serde_json::Value)> {
    csv.split("\r\n")
        .skip(1)
        .filter(|line| line.contains(",telemetry,"))
        .map(|line| {
            // payload is the only quoted field here (it holds commas).
            let (head, rest) = line.split_once(",\"").unwrap();
            let payload = rest.rsplit_once("\",").unwrap().0.replace("\"\"", "\"");
            let fields: Vec<&str> = head.split(',').collect();
            (
                fields[3].to_string(),
                fields[9].to_string(),
                serde_json::from_str(&payload).unwrap(),
            )
        })
        .collect()
}

async fn series_and_csv_are_the_same_from_legacy_events_rows_or_both(db: TestDb) {
    let start = at("2026-11-20T08:00:00Z");
    let make = |p: &str| {
        let mut all = series(p, "pump-a", start, 30);
        all.extend(series(
            p,
            "pump-b",
            start + SignedDuration::from_secs(20),
            30,
        ));
        all
    };
    // Only legacy events.
    let only_events = make("p-events");
    let events: Vec<_> = only_events
        .iter()
        .enumerate()
        .map(|(i, s)| legacy(s, i as u64 + 1))
        .collect();
    db.store.append(&events).await.unwrap();
    // Only rows.
    let only_rows = make("p-rows");
    db.store.append_telemetry(&only_rows).await.unwrap();
    // Both: every other sample in each, and one sample in both.
    let both = make("p-both");
    let (as_events, as_rows): (Vec<_>, Vec<_>) =
        both.iter().enumerate().partition(|(i, _)| i % 2 == 0);
    let mut as_rows: Vec<TelemetrySample> = as_rows.into_iter().map(|(_, s)| s.clone()).collect();
    as_rows.push(both[0].clone());
    db.store.append_telemetry(&as_rows).await.unwrap();
    let events: Vec<_> = as_events
        .into_iter()
        .map(|(i, s)| legacy(s, 1_000 + i as u64))
        .collect();
    db.store.append(&events).await.unwrap();
    // A clinical event between the samples, which the CSV must keep in its place.
    for (seq, p) in (9_000..).zip(["p-events", "p-rows", "p-both"]) {
        db.store
            .append(&[event(
                p,
                "pump-a",
                seq,
                start + SignedDuration::from_secs(610),
                Body::InfusionPaused {},
            )])
            .await
            .unwrap();
    }

    let strip = |samples: Vec<TelemetrySample>| -> Vec<TelemetrySample> {
        samples
            .into_iter()
            .map(|s| TelemetrySample {
                patient: patient("x"),
                ..s
            })
            .collect()
    };
    let from = Some(start + SignedDuration::from_mins(5));
    let to = Some(start + SignedDuration::from_mins(25));
    let mut expected = strip(make("x"));
    expected.sort_by(|a, b| (a.at, &a.device_id).cmp(&(b.at, &b.device_id)));
    let in_range: Vec<TelemetrySample> = expected
        .iter()
        .filter(|s| Some(s.at) >= from && Some(s.at) < to)
        .cloned()
        .collect();
    let mut csvs = Vec::new();
    for p in ["p-events", "p-rows", "p-both"] {
        let all = db
            .store
            .telemetry_series(&patient(p), None, None)
            .await
            .unwrap();
        assert_eq!(strip(all), expected, "{p}: whole series");
        let part = db
            .store
            .telemetry_series(&patient(p), from, to)
            .await
            .unwrap();
        assert_eq!(strip(part), in_range, "{p}: [from, to)");
        let csv = db
            .store
            .export_csv(&ExportQuery {
                patient: patient(p),
                from,
                to,
            })
            .await
            .unwrap();
        // The pause (08:10:10) stays between the samples of 08:10:00 and 08:10:20.
        let lines: Vec<&str> = csv.split("\r\n").collect();
        let pause = lines
            .iter()
            .position(|l| l.contains(",infusion_paused,"))
            .unwrap();
        assert!(
            lines[pause - 1].contains("2026-11-20T08:10:00Z"),
            "{p}: {}",
            lines[pause - 1]
        );
        assert!(
            lines[pause + 1].contains("2026-11-20T08:10:20Z"),
            "{p}: {}",
            lines[pause + 1]
        );
        csvs.push(csv_telemetry(&csv));
    }
    assert_eq!(csvs[0].len(), in_range.len());
    assert_eq!(
        csvs[0], csvs[1],
        "legacy events and rows export the same samples"
    );
    assert_eq!(
        csvs[0], csvs[2],
        "legacy events and rows export the same samples"
    );
}

async fn latest_telemetry_reads_rows_and_legacy_events(db: TestDb) {
    let old = sample("p-1", "pump-a", at("2026-11-20T08:00:00Z"), 1);
    let newer = sample("p-1", "pump-a", at("2026-11-20T09:00:00Z"), 2);
    let b_row = sample("p-1", "pump-b", at("2026-11-20T07:00:00Z"), 3);
    let b_event = sample("p-1", "pump-b", at("2026-11-20T07:30:00Z"), 4);
    db.store
        .append(&[legacy(&old, 1), legacy(&b_event, 1)])
        .await
        .unwrap();
    db.store
        .append_telemetry(&[newer.clone(), b_row])
        .await
        .unwrap();
    let latest = db.store.latest_telemetry(&patient("p-1")).await.unwrap();
    assert_eq!(latest, vec![newer, b_event]);
    assert!(
        db.store
            .latest_telemetry(&patient("p-2"))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn compaction_keeps_last_state_and_max_pressure_and_is_idempotent(db: TestDb) {
    let now = at("2026-11-27T12:00:00Z");
    // Two pumps, two hours ten days ago, one a minute; and an hour yesterday.
    let old_start = at("2026-11-17T08:00:00Z");
    let mut old = series("p-1", "pump-a", old_start, 120);
    old.extend(series("p-1", "pump-b", old_start, 120));
    let recent = series("p-1", "pump-a", at("2026-11-26T08:00:00Z"), 60);
    let other = series("p-2", "pump-c", old_start, 30);
    // A spike in the middle of the second bucket of pump-a, and the state at its end.
    old[20].downstream_pressure_mmhg = 555.0;
    old[29].state = "stopped_by_alarm".into();
    for batch in [&old, &recent, &other] {
        db.store.append_telemetry(batch).await.unwrap();
    }
    let policy = TelemetryRetention::default();
    assert_eq!(policy.full_resolution_for, SignedDuration::from_hours(168));
    assert_eq!(policy.bucket, SignedDuration::from_mins(15));
    assert_eq!(policy.keep_for, None);

    let report = db.store.compact_telemetry(now, &policy).await.unwrap();
    assert_eq!(report.samples_downsampled, 270);
    assert_eq!(report.buckets_written, 8 + 8 + 2);
    assert_eq!(report.rows_removed, 0);
    let after = db
        .store
        .telemetry_series(&patient("p-1"), None, None)
        .await
        .unwrap();
    assert_eq!(
        after.len(),
        16 + 60,
        "8 buckets per pump, the recent hour untouched"
    );
    let a: Vec<&TelemetrySample> = after
        .iter()
        .filter(|s| s.device_id == "pump-a" && s.bucket_s > 0)
        .collect();
    assert_eq!(a.len(), 8);
    assert!(a.iter().all(|b| b.bucket_s == 900));
    let second = a[1];
    assert_eq!(
        second.at, old[29].at,
        "a bucket is stamped with its last sample"
    );
    assert_eq!(second.state, "stopped_by_alarm");
    assert_eq!(second.downstream_pressure_mmhg, 555.0);
    assert_eq!(second.delivered_ml, old[29].delivered_ml);
    assert_eq!(second.remaining_ml, old[29].remaining_ml);
    assert_eq!(second.battery_percent, old[29].battery_percent);
    let mean = old[15..30].iter().map(|s| s.rate_ml_per_h).sum::<f64>() / 15.0;
    assert!((second.rate_ml_per_h - mean).abs() < 1e-9);
    assert_eq!(
        second.mains_present,
        old[15..30].iter().all(|s| s.mains_present)
    );
    let recent_after: Vec<TelemetrySample> =
        after.iter().filter(|s| s.bucket_s == 0).cloned().collect();
    assert_eq!(recent_after, recent);

    // Idempotent: nothing left to do, the series unchanged.
    let again = db.store.compact_telemetry(now, &policy).await.unwrap();
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(
        db.store
            .telemetry_series(&patient("p-1"), None, None)
            .await
            .unwrap(),
        after
    );
    // Later, the recent hour's turn comes; the buckets already made are not downsampled again.
    let later = db
        .store
        .compact_telemetry(now + SignedDuration::from_hours(24 * 7), &policy)
        .await
        .unwrap();
    assert_eq!(later.samples_downsampled, 60);
    assert_eq!(later.buckets_written, 4);
    assert_eq!(
        db.store
            .telemetry_series(&patient("p-1"), None, None)
            .await
            .unwrap()
            .len(),
        16 + 4
    );
}

async fn compaction_removes_rows_past_keep_for_and_never_touches_events(db: TestDb) {
    let now = at("2026-11-27T12:00:00Z");
    let old = series("p-1", "pump-a", at("2026-10-01T08:00:00Z"), 100);
    let kept = series("p-1", "pump-a", at("2026-11-26T08:00:00Z"), 10);
    db.store.append_telemetry(&old).await.unwrap();
    db.store.append_telemetry(&kept).await.unwrap();
    let legacy_old = sample("p-1", "pump-z", at("2026-09-01T08:00:00Z"), 1);
    db.store.append(&[legacy(&legacy_old, 1)]).await.unwrap();
    let policy = TelemetryRetention {
        keep_for: Some(SignedDuration::from_hours(24 * 30)),
        ..TelemetryRetention::default()
    };
    let report = db.store.compact_telemetry(now, &policy).await.unwrap();
    assert_eq!(report.rows_removed, 100);
    assert_eq!(report.samples_downsampled, 0);
    let left = db
        .store
        .telemetry_series(&patient("p-1"), None, None)
        .await
        .unwrap();
    let mut expected = vec![legacy_old];
    expected.extend(kept);
    assert_eq!(
        left, expected,
        "the legacy event stays: the record is append-only"
    );
    assert!(db.store.verify().await.unwrap().is_intact());
    let bad = TelemetryRetention {
        bucket: SignedDuration::from_millis(1500),
        ..TelemetryRetention::default()
    };
    assert!(db.store.compact_telemetry(now, &bad).await.is_err());
    // Periods longer than milliseconds since 1970 can hold mean "never", not a wrapped-around cutoff.
    let forever = TelemetryRetention {
        full_resolution_for: SignedDuration::MAX,
        keep_for: Some(SignedDuration::MAX),
        ..TelemetryRetention::default()
    };
    assert!(
        db.store
            .compact_telemetry(now, &forever)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn compaction_of_a_long_backlog_runs_in_short_transactions(db: TestDb) {
    let now = at("2026-11-27T12:00:00Z");
    // Ten hours, 40 buckets, starting mid-bucket; at most 16 buckets per transaction.
    let backlog = series("p-1", "pump-a", at("2026-11-10T00:07:00Z"), 600);
    db.store.append_telemetry(&backlog).await.unwrap();
    let report = db
        .store
        .compact_telemetry(now, &TelemetryRetention::default())
        .await
        .unwrap();
    assert_eq!(report.samples_downsampled, 600);
    assert_eq!(report.buckets_written, 41);
    assert_eq!(report.transactions, 3);
    let buckets = db
        .store
        .telemetry_series(&patient("p-1"), None, None)
        .await
        .unwrap();
    assert_eq!(buckets.len(), 41);
    assert_eq!(
        buckets.last().unwrap().delivered_ml,
        backlog[599].delivered_ml
    );
    // A sample that arrives late, older than the newest bucket, stays as it is; nothing else changes.
    let late = sample("p-1", "pump-b", at("2026-11-10T01:00:30Z"), 1);
    db.store
        .append_telemetry(std::slice::from_ref(&late))
        .await
        .unwrap();
    let again = db
        .store
        .compact_telemetry(now, &TelemetryRetention::default())
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
    let series = db
        .store
        .telemetry_series(&patient("p-1"), None, None)
        .await
        .unwrap();
    assert_eq!(series.len(), 42);
    assert!(series.contains(&late));
}

async fn a_database_from_before_the_table_is_upgraded_and_keeps_its_telemetry_events(db: TestDb) {
    // A database at schema version 1: telemetry only as events of the hash-chained record.
    let old = series("p-1", "pump-a", at("2026-11-20T08:00:00Z"), 5);
    let events: Vec<_> = (1..).zip(&old).map(|(seq, s)| legacy(s, seq)).collect();
    db.store.append(&events).await.unwrap();
    let url = db.url.clone();
    db.store.close().await;
    raw_sql(
        &TestDb {
            store: Store::open(Config::new(url.clone())).await.unwrap(),
            url: url.clone(),
            dir: None,
        },
        "DROP TABLE record_telemetry; DROP TABLE record_restatements; DROP TABLE record_telemetry_blocks; \
         DELETE FROM record_schema_version WHERE version >= 2;",
    )
    .await;
    let store = Store::open(Config::new(url)).await.unwrap();
    assert_eq!(
        store.schema_version().await.unwrap(),
        4,
        "migrations 2 to 4 ran"
    );
    let new = series("p-1", "pump-a", at("2026-11-20T08:05:00Z"), 5);
    store.append_telemetry(&new).await.unwrap();
    let mut expected = old.clone();
    expected.extend(new);
    assert_eq!(
        store
            .telemetry_series(&patient("p-1"), None, None)
            .await
            .unwrap(),
        expected
    );
    assert!(store.verify().await.unwrap().is_intact());
    store.close().await;
}

async fn hours_that_ended_an_hour_ago_are_packed_and_read_back_bit_for_bit(db: TestDb) {
    let now = at("2026-11-27T12:30:00Z");
    // Pump a: 08:10 to 12:29, a sample a minute. Pump b: 09:00 to 09:59, then silent. Another patient's
    // pump: yesterday.
    let mut all = series("p-1", "pump-a", at("2026-11-27T08:10:00Z"), 260);
    all.extend(series("p-1", "pump-b", at("2026-11-27T09:00:00Z"), 60));
    let other = series("p-2", "pump-c", at("2026-11-26T23:30:00Z"), 45);
    // Values that only survive bit for bit (a zero's sign is as the database kept it), and a teaching sample.
    all[3].downstream_pressure_mmhg = -0.0;
    all[4].rate_ml_per_h = f64::MIN_POSITIVE / 4.0;
    all[5].teaching = true;
    db.store.append_telemetry(&all).await.unwrap();
    db.store.append_telemetry(&other).await.unwrap();
    let before = db
        .store
        .telemetry_series(&patient("p-1"), None, None)
        .await
        .unwrap();

    let report = db
        .store
        .compact_telemetry(now, &TelemetryRetention::default())
        .await
        .unwrap();
    // Packed: whatever lies before 11:00 (the hour that ended at least an hour ago): pump a 08:10-10:59
    // (170 samples, 3 blocks), pump b (60, 1 block), p-2 (45, 2 blocks).
    assert_eq!(report.samples_packed, 170 + 60 + 45, "{report:?}");
    assert_eq!(report.blocks_written, 3 + 1 + 2, "{report:?}");
    assert_eq!(report.samples_downsampled, 0);
    assert_eq!(rows(&db).await, 90, "pump a from 11:00 stays as rows");
    assert_eq!(count_rows(&db, "record_telemetry_blocks").await, 6);
    let after = db
        .store
        .telemetry_series(&patient("p-1"), None, None)
        .await
        .unwrap();
    assert_eq!(after, before);
    let bits = |s: &TelemetrySample| {
        [
            s.rate_ml_per_h,
            s.delivered_ml,
            s.remaining_ml,
            s.battery_percent,
            s.downstream_pressure_mmhg,
        ]
        .map(f64::to_bits)
    };
    assert!(after.iter().zip(&before).all(|(a, b)| bits(a) == bits(b)));
    assert_eq!(after[4].rate_ml_per_h, f64::MIN_POSITIVE / 4.0);
    // A range that cuts blocks reads only its samples.
    let window = db
        .store
        .telemetry_series(
            &patient("p-1"),
            Some(at("2026-11-27T09:30:00Z")),
            Some(at("2026-11-27T11:15:00Z")),
        )
        .await
        .unwrap();
    let expected: Vec<TelemetrySample> = before
        .iter()
        .filter(|s| s.at >= at("2026-11-27T09:30:00Z") && s.at < at("2026-11-27T11:15:00Z"))
        .cloned()
        .collect();
    assert_eq!(window, expected);
    // Pump b's newest sample is packed; the latest reader finds it.
    let latest = db.store.latest_telemetry(&patient("p-1")).await.unwrap();
    assert_eq!(latest.len(), 2);
    assert_eq!(
        latest[1],
        before
            .iter()
            .rev()
            .find(|s| s.device_id == "pump-b")
            .unwrap()
            .clone()
    );

    // A packed sample sent again comes back as a row and is merged into its block: never twice.
    db.store.append_telemetry(&all[20..22]).await.unwrap();
    assert_eq!(
        db.store
            .telemetry_series(&patient("p-1"), None, None)
            .await
            .unwrap(),
        before
    );
    let again = db
        .store
        .compact_telemetry(now, &TelemetryRetention::default())
        .await
        .unwrap();
    assert_eq!(
        (again.samples_packed, again.blocks_written),
        (2, 1),
        "{again:?}"
    );
    assert_eq!(rows(&db).await, 90);
    assert!(
        db.store
            .compact_telemetry(now, &TelemetryRetention::default())
            .await
            .unwrap()
            .is_empty()
    );

    // Retention reaches into a block: only its older part goes.
    let keep = TelemetryRetention {
        keep_for: Some(SignedDuration::from_mins(3 * 60 + 5)),
        ..TelemetryRetention::default()
    };
    let trimmed = db.store.compact_telemetry(now, &keep).await.unwrap();
    // Before 09:25: pump a 08:10-09:24 (75) and pump b 09:00-09:24 (25); p-2 entirely (45).
    assert_eq!(trimmed.rows_removed, 75 + 25 + 45, "{trimmed:?}");
    let left = db
        .store
        .telemetry_series(&patient("p-1"), None, None)
        .await
        .unwrap();
    let expected: Vec<TelemetrySample> = before
        .into_iter()
        .filter(|s| s.at >= at("2026-11-27T09:25:00Z"))
        .collect();
    assert_eq!(left, expected);
    assert!(
        db.store
            .telemetry_series(&patient("p-2"), None, None)
            .await
            .unwrap()
            .is_empty()
    );

    // Seven days after 10:15 the cutoff falls inside the 10:00 block: its first quarter hour becomes buckets,
    // the rest of the hour stays packed at full resolution.
    let cut = db
        .store
        .compact_telemetry(at("2026-12-04T10:15:00Z"), &TelemetryRetention::default())
        .await
        .unwrap();
    assert!(cut.failures.is_empty(), "{cut:?}");
    let series = db
        .store
        .telemetry_series(&patient("p-1"), None, None)
        .await
        .unwrap();
    let full: Vec<TelemetrySample> = series.iter().filter(|s| s.bucket_s == 0).cloned().collect();
    let expected_full: Vec<TelemetrySample> = left
        .iter()
        .filter(|s| s.at >= at("2026-11-27T10:15:00Z"))
        .cloned()
        .collect();
    assert_eq!(full, expected_full);
    assert_eq!(
        cut.samples_downsampled,
        (left.len() - expected_full.len()) as u64
    );
    // Each bucket: the last sample's state and time, the highest pressure.
    let bucket = series
        .iter()
        .find(|s| {
            s.bucket_s == 900
                && s.device_id == "pump-a"
                && s.at < at("2026-11-27T10:00:00Z")
                && s.at >= at("2026-11-27T09:45:00Z")
        })
        .unwrap();
    let of_bucket: Vec<&TelemetrySample> = left
        .iter()
        .filter(|s| {
            s.device_id == "pump-a"
                && s.at >= at("2026-11-27T09:45:00Z")
                && s.at < at("2026-11-27T10:00:00Z")
        })
        .collect();
    let last = of_bucket.last().unwrap();
    assert_eq!((bucket.at, &bucket.state), (last.at, &last.state));
    let highest = of_bucket
        .iter()
        .map(|s| s.downstream_pressure_mmhg)
        .fold(f64::MIN, f64::max);
    assert_eq!(bucket.downstream_pressure_mmhg, highest);
    let again = db
        .store
        .compact_telemetry(at("2026-12-04T10:15:00Z"), &TelemetryRetention::default())
        .await
        .unwrap();
    assert!(again.is_empty() && again.blocks_written == 0, "{again:?}");

    // A week later the packed hours are downsampled like rows.
    let week = db
        .store
        .compact_telemetry(
            now + SignedDuration::from_hours(24 * 8),
            &TelemetryRetention::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        week.samples_downsampled,
        expected_full.len() as u64,
        "{week:?}"
    );
    assert_eq!(count_rows(&db, "record_telemetry_blocks").await, 0);
    assert!(
        db.store
            .telemetry_series(&patient("p-1"), None, None)
            .await
            .unwrap()
            .iter()
            .all(|s| s.bucket_s == 900)
    );
}

async fn two_retention_runs_at_once_lose_no_sample(db: TestDb) {
    let now = at("2026-11-27T12:30:00Z");
    let patients: Vec<String> = (0..6).map(|p| format!("p-{p}")).collect();
    let mut first = Vec::new();
    for p in &patients {
        first.extend(series(p, "pump-a", at("2026-11-27T08:00:00Z"), 180));
        first.extend(series(p, "pump-b", at("2026-11-27T08:00:00Z"), 180));
    }
    db.store.append_telemetry(&first).await.unwrap();
    db.store
        .compact_telemetry(now, &TelemetryRetention::default())
        .await
        .unwrap();
    // Samples of the same hours arrive late (half a minute off), so the next runs merge them into blocks
    // that already exist: two runs at once, as two processes in a hand-over would.
    let late: Vec<TelemetrySample> = first
        .iter()
        .map(|s| TelemetrySample {
            at: s.at + SignedDuration::from_secs(30),
            ..s.clone()
        })
        .collect();
    db.store.append_telemetry(&late).await.unwrap();
    let other = Store::open(Config::new(db.url.clone())).await.unwrap();
    let policy = TelemetryRetention::default();
    let (a, b) = tokio::join!(
        db.store.compact_telemetry(now, &policy),
        other.compact_telemetry(now, &policy)
    );
    // A run that met the other may fail (and is tried again an hour later); none may lose a sample.
    let packed = a.map_or(0, |r| r.samples_packed) + b.map_or(0, |r| r.samples_packed);
    let again = db.store.compact_telemetry(now, &policy).await.unwrap();
    assert_eq!(packed + again.samples_packed, late.len() as u64);
    assert_eq!(rows(&db).await, 0);
    for p in &patients {
        let mut expected: Vec<TelemetrySample> = first
            .iter()
            .chain(&late)
            .filter(|s| s.patient.as_str() == p)
            .cloned()
            .collect();
        expected.sort_by(|x, y| (x.at, &x.device_id).cmp(&(y.at, &y.device_id)));
        let got = db
            .store
            .telemetry_series(&patient(p), None, None)
            .await
            .unwrap();
        assert_eq!(got.len(), expected.len(), "{p}");
        assert_eq!(got, expected, "{p}");
    }
    other.close().await;
}

async fn a_damaged_block_is_refused_by_name_and_stops_only_its_patient(db: TestDb) {
    let now = at("2026-11-27T12:30:00Z");
    let mut all = series("p-1", "pump-a", at("2026-11-27T08:00:00Z"), 120);
    all.extend(series("p-2", "pump-b", at("2026-11-27T08:00:00Z"), 120));
    db.store.append_telemetry(&all).await.unwrap();
    db.store
        .compact_telemetry(now, &TelemetryRetention::default())
        .await
        .unwrap();
    let damage = if db.url.starts_with("sqlite:") {
        "UPDATE record_telemetry_blocks SET data = X'01' WHERE patient_id = 'p-1'"
    } else {
        "UPDATE record_telemetry_blocks SET data = '\\x01'::bytea WHERE patient_id = 'p-1'"
    };
    raw_sql(&db, damage).await;
    let error = db
        .store
        .telemetry_series(&patient("p-1"), None, None)
        .await
        .unwrap_err();
    assert!(matches!(error, RecordError::Corrupt { .. }), "{error:?}");
    let said = error.to_string();
    assert!(
        said.contains("pump-a") && said.contains("delete it"),
        "{said}"
    );
    // More samples of both patients, p-1's into its damaged hour: its retention is skipped and said, the
    // other's goes on.
    let later = [
        series("p-1", "pump-a", at("2026-11-27T08:00:30Z"), 60),
        series("p-2", "pump-b", at("2026-11-27T10:00:00Z"), 60),
    ]
    .concat();
    db.store.append_telemetry(&later).await.unwrap();
    let report = db
        .store
        .compact_telemetry(
            now + SignedDuration::from_hours(2),
            &TelemetryRetention::default(),
        )
        .await
        .unwrap();
    assert_eq!(report.failures.len(), 1, "{report:?}");
    assert!(report.failures[0].starts_with("patient p-1"), "{report:?}");
    assert_eq!(
        report.samples_packed, 60,
        "p-2's hour is packed: {report:?}"
    );
    assert_eq!(
        db.store
            .telemetry_series(&patient("p-2"), None, None)
            .await
            .unwrap()
            .len(),
        180
    );
}
