//! The storage suite: every test body here runs against SQLite and against PostgreSQL.

mod common;

use common::{TestDb, at, drop_guards, event, note, one_of_each_kind, patient, try_raw_sql};
use record::event::KNOWN_KINDS;
use record::views::InfusionOutcome;
use record::{Body, EventId, NewEvent, RecordError, Source, TimelineQuery};
use serde_json::json;

on_both_backends!(
    append_assigns_ids_and_links_each_patients_chain,
    resent_batch_is_a_no_op_returning_the_original_ids,
    reused_sequence_number_with_other_content_rejects_the_whole_batch,
    verify_reports_the_first_broken_link,
    database_itself_refuses_update_and_delete,
    every_kind_round_trips_through_the_typed_view,
    unknown_kinds_are_kept_verbatim,
    bad_events_are_refused_with_a_clear_message,
    timeline_filters_by_range_kind_and_limit,
    active_alarms_and_alarm_counts_per_day,
    latest_telemetry_per_pump,
    infusions_pair_start_and_end_and_honour_corrections,
    concurrent_writers_keep_one_unbroken_chain,
    migrations_run_once_and_reopen_cleanly,
    a_follower_reads_new_ids_skipped_ids_and_grown_chains_up_to_a_bound,
    a_pumps_identical_state_reports_are_counted_not_chained_and_every_change_is_recorded,
);

fn notes(patient_id: &str, device: &str, seqs: std::ops::Range<u64>) -> Vec<NewEvent> {
    seqs.map(|seq| {
        event(
            patient_id,
            device,
            seq,
            at("2026-03-01T08:00:00Z") + jiff::SignedDuration::from_secs(seq as i64 * 60),
            note(&format!("note {seq}")),
        )
    })
    .collect()
}

async fn count(db: &TestDb, patient_id: &str) -> usize {
    db.store
        .timeline(&TimelineQuery::all(patient(patient_id)))
        .await
        .unwrap()
        .len()
}

async fn append_assigns_ids_and_links_each_patients_chain(db: TestDb) {
    let mut batch = notes("p-1", "pump-a", 0..3);
    batch.extend(notes("p-2", "pump-b", 0..2));
    let receipts = db.store.append(&batch).await.unwrap();
    assert_eq!(receipts.len(), 5);
    assert!(receipts.iter().all(|r| !r.duplicate));
    let ids: Vec<i64> = receipts.iter().map(|r| r.id.0).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids grow: {ids:?}");

    let more = db
        .store
        .append(&notes("p-1", "pump-a", 3..5))
        .await
        .unwrap();
    let timeline = db
        .store
        .timeline(&TimelineQuery::all(patient("p-1")))
        .await
        .unwrap();
    assert_eq!(timeline.len(), 5);
    assert_eq!(
        timeline.iter().map(|e| e.chain_seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(timeline[0].prev_hash, record::chain::GENESIS_HASH);
    for pair in timeline.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash);
    }
    assert_eq!(timeline[4].id, more[1].id);
    assert_eq!(timeline[0].occurred_at_local(), "2026-03-01T09:00:00+01:00");

    let report = db.store.verify().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events_checked, 7);
    let heads: Vec<(String, i64)> = report
        .heads
        .iter()
        .map(|h| (h.patient.to_string(), h.events))
        .collect();
    assert_eq!(heads, vec![("p-1".into(), 5), ("p-2".into(), 2)]);
    assert_eq!(report.heads[0].hash, timeline[4].hash);
}

async fn resent_batch_is_a_no_op_returning_the_original_ids(db: TestDb) {
    let batch = notes("p-1", "pump-a", 10..20);
    let first = db.store.append(&batch).await.unwrap();
    let again = db.store.append(&batch).await.unwrap();
    assert_eq!(
        again.iter().map(|r| r.id).collect::<Vec<_>>(),
        first.iter().map(|r| r.id).collect::<Vec<_>>()
    );
    assert!(again.iter().all(|r| r.duplicate));
    assert_eq!(count(&db, "p-1").await, 10);

    // A batch overlapping the last one: old events are recognised, new ones appended.
    let overlap = notes("p-1", "pump-a", 15..25);
    let receipts = db.store.append(&overlap).await.unwrap();
    assert_eq!(receipts.iter().filter(|r| r.duplicate).count(), 5);
    assert_eq!(receipts[0].id, first[5].id);
    assert_eq!(count(&db, "p-1").await, 15);

    // The same event twice inside one batch is stored once.
    let mut twice = notes("p-1", "pump-a", 30..31);
    twice.push(twice[0].clone());
    let receipts = db.store.append(&twice).await.unwrap();
    assert_eq!(receipts[0].id, receipts[1].id);
    assert_eq!(
        (receipts[0].duplicate, receipts[1].duplicate),
        (false, true)
    );
    assert_eq!(count(&db, "p-1").await, 16);
    assert!(db.store.verify().await.unwrap().is_intact());
}

async fn reused_sequence_number_with_other_content_rejects_the_whole_batch(db: TestDb) {
    let first = db
        .store
        .append(&notes("p-1", "pump-a", 0..3))
        .await
        .unwrap();
    let mut batch = notes("p-1", "pump-a", 3..6);
    let mut changed = notes("p-1", "pump-a", 1..2).remove(0);
    changed.body = note("something else");
    batch.push(changed);
    let error = db.store.append(&batch).await.unwrap_err();
    match &error {
        RecordError::DedupConflict {
            device_id,
            device_seq,
            existing,
        } => {
            assert_eq!((device_id.as_str(), *device_seq), ("pump-a", 1));
            assert_eq!(*existing, first[1].id);
        }
        other => panic!("expected DedupConflict, got {other:?}"),
    }
    assert!(error.to_string().contains("never reuse a sequence number"));
    assert_eq!(
        count(&db, "p-1").await,
        3,
        "no part of the batch was written"
    );
}

async fn verify_reports_the_first_broken_link(db: TestDb) {
    let receipts = db
        .store
        .append(&notes("p-1", "pump-a", 0..5))
        .await
        .unwrap();
    db.store
        .append(&notes("p-2", "pump-b", 0..4))
        .await
        .unwrap();
    db.store
        .append(&notes("p-3", "pump-c", 0..2))
        .await
        .unwrap();
    drop_guards(&db).await;

    // p-1: a payload rewritten in place.
    let altered = receipts[2].id;
    try_raw_sql(
        &db,
        &format!(
            "UPDATE record_events SET payload = '{{\"text\":\"nothing happened\"}}' WHERE id = {altered}"
        ),
    )
    .await
    .unwrap();
    // p-2: an event removed from the middle.
    try_raw_sql(
        &db,
        "DELETE FROM record_events WHERE patient_id = 'p-2' AND chain_seq = 2",
    )
    .await
    .unwrap();

    let report = db.store.verify().await.unwrap();
    assert!(!report.is_intact());
    assert_eq!(report.broken.len(), 2, "{report:?}");
    let p1 = &report.broken[0];
    assert_eq!(
        (p1.patient.as_str(), p1.event_id, p1.chain_seq, p1.problem),
        ("p-1", altered, 3, "hash")
    );
    assert_ne!(p1.expected, p1.found);
    let p2 = &report.broken[1];
    assert_eq!(
        (p2.patient.as_str(), p2.chain_seq, p2.problem),
        ("p-2", 3, "chain_seq")
    );
    assert_eq!((p2.expected.as_str(), p2.found.as_str()), ("2", "3"));
    // The untouched chain still verifies and reports its head.
    assert_eq!(report.heads.len(), 1);
    assert_eq!(report.heads[0].patient.as_str(), "p-3");
}

async fn database_itself_refuses_update_and_delete(db: TestDb) {
    db.store
        .append(&notes("p-1", "pump-a", 0..2))
        .await
        .unwrap();
    let update = try_raw_sql(&db, "UPDATE record_events SET actor = 'x'").await;
    let delete = try_raw_sql(&db, "DELETE FROM record_events").await;
    for result in [update, delete] {
        let message = result.expect_err("the database must refuse");
        assert!(message.contains("append-only"), "{message}");
    }
    assert_eq!(count(&db, "p-1").await, 2);
    assert!(db.store.verify().await.unwrap().is_intact());
}

async fn every_kind_round_trips_through_the_typed_view(db: TestDb) {
    let bodies = one_of_each_kind();
    let mut kinds: Vec<String> = bodies.iter().map(|b| b.kind()).collect();
    kinds.sort();
    let mut known: Vec<String> = KNOWN_KINDS.iter().map(|k| k.to_string()).collect();
    known.sort();
    assert_eq!(kinds, known, "one_of_each_kind covers exactly KNOWN_KINDS");

    let batch: Vec<NewEvent> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            event(
                "p-1",
                "phone-1",
                i as u64,
                at("2026-03-01T08:00:00Z") + jiff::SignedDuration::from_secs(i as i64),
                body.clone(),
            )
        })
        .collect();
    db.store.append(&batch).await.unwrap();
    let stored = db
        .store
        .timeline(&TimelineQuery::all(patient("p-1")))
        .await
        .unwrap();
    let read: Vec<Body> = stored.iter().map(|e| e.body()).collect();
    assert_eq!(read, bodies);
    assert!(stored.iter().all(|e| e.source == Source::Pump));
}

async fn unknown_kinds_are_kept_verbatim(db: TestDb) {
    let payload = json!({"zeta": [1, 2.5, {"b": null, "a": "ü"}], "alpha": true});
    let future = event(
        "p-1",
        "phone-9",
        1,
        at("2026-03-01T08:00:00Z"),
        Body::Unknown {
            kind: "hydration_logged".into(),
            payload: payload.clone(),
        },
    );
    db.store.append(&[future]).await.unwrap();
    let stored = db
        .store
        .timeline(&TimelineQuery::all(patient("p-1")))
        .await
        .unwrap();
    assert_eq!(stored[0].kind, "hydration_logged");
    assert_eq!(
        stored[0].payload,
        r#"{"alpha":true,"zeta":[1,2.5,{"a":"ü","b":null}]}"#
    );
    assert_eq!(
        stored[0].body(),
        Body::Unknown {
            kind: "hydration_logged".into(),
            payload
        }
    );
}

async fn bad_events_are_refused_with_a_clear_message(db: TestDb) {
    async fn check(db: &TestDb, change: impl FnOnce(&mut NewEvent), expect: &str) {
        let mut e = event("p-1", "pump-a", 1, at("2026-03-01T08:00:00Z"), note("x"));
        change(&mut e);
        let error = db.store.append(&[e]).await.unwrap_err();
        assert!(
            matches!(error, RecordError::InvalidEvent { .. }),
            "{error:?}"
        );
        assert_eq!(error.to_string(), expect);
    }
    check(
        &db,
        |e| e.device_id = String::new(),
        "invalid event 0: device id: is empty",
    )
    .await;
    check(
        &db,
        |e| e.actor = " kim".into(),
        "invalid event 0: actor: starts or ends with white space",
    )
    .await;
    check(
        &db,
        |e| e.device_seq = u64::MAX,
        "invalid event 0: device sequence number: 18446744073709551615 is larger than 9223372036854775807",
    )
    .await;
    check(
        &db,
        |e| e.local_offset_s = 20 * 3600,
        "invalid event 0: local offset: 72000 s is beyond ±18 h; give the offset from UTC in seconds (e.g. 3600 for +01:00)",
    )
    .await;
    check(
        &db,
        |e| e.body = Body::Unknown { kind: "Bad Kind".into(), payload: json!({}) },
        "invalid event 0: kind: \"Bad Kind\" is not a kind name: use lower-case letters, digits and `_`, at most 64 bytes",
    )
    .await;
    check(
        &db,
        |e| {
            e.body = Body::Unknown {
                kind: "alarm_raised".into(),
                payload: json!({"alarm": 3}),
            }
        },
        "invalid event 0: payload: does not match the fields of a `alarm_raised` event",
    )
    .await;
    check(
        &db,
        |e| {
            e.body = Body::Unknown {
                kind: "future".into(),
                payload: json!([1]),
            }
        },
        "invalid event 0: payload: must be a JSON object",
    )
    .await;
    check(
        &db,
        |e| e.body = note(&"x".repeat(70_000)),
        "invalid event 0: payload: is 70011 bytes; the limit is 65536 bytes",
    )
    .await;
    assert!(record::PatientId::new("").is_err());
    assert!(record::PatientId::new("a\nb").is_err());
    assert_eq!(count(&db, "p-1").await, 0);
}

async fn timeline_filters_by_range_kind_and_limit(db: TestDb) {
    let t0 = at("2026-03-01T00:00:00Z");
    let hour = jiff::SignedDuration::from_hours(1);
    let mut batch = Vec::new();
    for i in 0..24u64 {
        let body = if i % 3 == 0 {
            Body::AlarmRaised {
                alarm: "air_in_line".into(),
                priority: "high".into(),
                detail: None,
            }
        } else {
            note(&format!("n{i}"))
        };
        batch.push(event("p-1", "pump-a", i, t0 + hour * i as i32, body));
    }
    batch.push(event("p-2", "pump-b", 0, t0, note("other patient")));
    db.store.append(&batch).await.unwrap();

    let query =
        |from: Option<&str>, to: Option<&str>, kinds: &[&str], limit: Option<u32>| TimelineQuery {
            patient: patient("p-1"),
            from: from.map(at),
            to: to.map(at),
            kinds: kinds.iter().map(|k| k.to_string()).collect(),
            limit,
        };
    let seqs = |events: Vec<record::StoredEvent>| -> Vec<i64> {
        events.iter().map(|e| e.device_seq).collect()
    };
    let all = db
        .store
        .timeline(&query(None, None, &[], None))
        .await
        .unwrap();
    assert_eq!(all.len(), 24);
    let range = db
        .store
        .timeline(&query(
            Some("2026-03-01T05:00:00Z"),
            Some("2026-03-01T08:00:00Z"),
            &[],
            None,
        ))
        .await
        .unwrap();
    assert_eq!(seqs(range), vec![5, 6, 7], "from inclusive, to exclusive");
    let alarms = db
        .store
        .timeline(&query(None, None, &["alarm_raised"], None))
        .await
        .unwrap();
    assert_eq!(seqs(alarms), vec![0, 3, 6, 9, 12, 15, 18, 21]);
    let limited = db
        .store
        .timeline(&query(None, None, &["alarm_raised", "note"], Some(4)))
        .await
        .unwrap();
    assert_eq!(seqs(limited), vec![0, 1, 2, 3]);
    let backwards = db
        .store
        .timeline(&query(
            Some("2026-03-02T00:00:00Z"),
            Some("2026-03-01T00:00:00Z"),
            &[],
            None,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        backwards.to_string(),
        "invalid time range: `from` is after `to`"
    );
}

async fn active_alarms_and_alarm_counts_per_day(db: TestDb) {
    let raised = |alarm: &str| Body::AlarmRaised {
        alarm: alarm.into(),
        priority: "high".into(),
        detail: None,
    };
    let cleared = |alarm: &str| Body::AlarmCleared {
        alarm: alarm.into(),
        resolution: Some("fixed".into()),
    };
    // Local offset +01:00: 23:30 UTC on the 1st is the 2nd locally.
    let batch = vec![
        event(
            "p-1",
            "pump-a",
            1,
            at("2026-03-01T10:00:00Z"),
            raised("occlusion_downstream"),
        ),
        event(
            "p-1",
            "pump-a",
            2,
            at("2026-03-01T10:05:00Z"),
            cleared("occlusion_downstream"),
        ),
        event(
            "p-1",
            "pump-a",
            3,
            at("2026-03-01T23:30:00Z"),
            raised("occlusion_downstream"),
        ),
        event(
            "p-1",
            "pump-a",
            4,
            at("2026-03-01T23:31:00Z"),
            Body::AlarmAcknowledged {
                alarm: "occlusion_downstream".into(),
            },
        ),
        event(
            "p-1",
            "pump-a",
            5,
            at("2026-03-02T09:00:00Z"),
            raised("battery_low"),
        ),
        event(
            "p-1",
            "pump-b",
            1,
            at("2026-03-02T09:00:00Z"),
            raised("air_in_line"),
        ),
        event(
            "p-1",
            "pump-b",
            2,
            at("2026-03-02T09:01:00Z"),
            cleared("air_in_line"),
        ),
    ];
    db.store.append(&batch).await.unwrap();
    let active = db.store.active_alarms(&patient("p-1")).await.unwrap();
    let summary: Vec<(&str, &str, bool)> = active
        .iter()
        .map(|a| (a.device_id.as_str(), a.alarm.as_str(), a.acknowledged))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("pump-a", "occlusion_downstream", true),
            ("pump-a", "battery_low", false)
        ]
    );
    let counts = db
        .store
        .alarm_counts_by_day(&patient("p-1"), None, None)
        .await
        .unwrap();
    let counts: Vec<(String, &str, u32)> = counts
        .iter()
        .map(|c| (c.date.to_string(), c.alarm.as_str(), c.count))
        .collect();
    assert_eq!(
        counts,
        vec![
            ("2026-03-01".into(), "occlusion_downstream", 1),
            ("2026-03-02".into(), "air_in_line", 1),
            ("2026-03-02".into(), "battery_low", 1),
            ("2026-03-02".into(), "occlusion_downstream", 1),
        ]
    );
}

async fn latest_telemetry_per_pump(db: TestDb) {
    let telemetry = |delivered_ml: f64| Body::Telemetry {
        state: "infusing".into(),
        rate_ml_per_h: 100.0,
        delivered_ml,
        remaining_ml: 100.0 - delivered_ml,
        battery_percent: 90.0,
        mains_present: true,
        downstream_pressure_mmhg: 80.0,
    };
    let batch = vec![
        event(
            "p-1",
            "pump-a",
            1,
            at("2026-03-01T10:00:00Z"),
            telemetry(1.0),
        ),
        // Arrives later but happened earlier: the newest by occurrence wins.
        event(
            "p-1",
            "pump-a",
            3,
            at("2026-03-01T09:00:00Z"),
            telemetry(0.5),
        ),
        event(
            "p-1",
            "pump-a",
            2,
            at("2026-03-01T10:01:00Z"),
            telemetry(2.0),
        ),
        event(
            "p-1",
            "pump-b",
            1,
            at("2026-03-01T08:00:00Z"),
            telemetry(7.0),
        ),
        event(
            "p-2",
            "pump-c",
            1,
            at("2026-03-01T12:00:00Z"),
            telemetry(9.0),
        ),
    ];
    db.store.append(&batch).await.unwrap();
    let latest = db.store.latest_telemetry(&patient("p-1")).await.unwrap();
    let got: Vec<(String, f64, jiff::Timestamp)> = latest
        .iter()
        .map(|s| (s.device_id.clone(), s.delivered_ml, s.at))
        .collect();
    assert_eq!(
        got,
        vec![
            ("pump-a".into(), 2.0, at("2026-03-01T10:01:00Z")),
            ("pump-b".into(), 7.0, at("2026-03-01T08:00:00Z"))
        ]
    );
}

async fn infusions_pair_start_and_end_and_honour_corrections(db: TestDb) {
    let start = |vtbi_ml: f64| Body::InfusionStarted {
        drug_id: Some("vancomycin".into()),
        rate_ml_per_h: 125.0,
        vtbi_ml,
    };
    let batch = vec![
        event("p-1", "pump-a", 1, at("2026-03-01T08:00:00Z"), start(250.0)),
        event(
            "p-1",
            "pump-a",
            2,
            at("2026-03-01T10:00:00Z"),
            Body::InfusionCompleted {
                delivered_ml: 249.5,
            },
        ),
        event("p-1", "pump-a", 3, at("2026-03-01T20:00:00Z"), start(250.0)),
        event(
            "p-1",
            "pump-a",
            4,
            at("2026-03-01T20:30:00Z"),
            Body::InfusionStopped {
                delivered_ml: 60.0,
                reason: Some("air in line".into()),
            },
        ),
        event("p-1", "pump-a", 5, at("2026-03-02T08:00:00Z"), start(100.0)),
    ];
    let receipts = db.store.append(&batch).await.unwrap();
    let infusions = db
        .store
        .infusions(&patient("p-1"), None, None)
        .await
        .unwrap();
    let got: Vec<(f64, Option<f64>, InfusionOutcome)> = infusions
        .iter()
        .map(|i| (i.expected_ml, i.delivered_ml, i.outcome))
        .collect();
    assert_eq!(
        got,
        vec![
            (250.0, Some(249.5), InfusionOutcome::Completed),
            (250.0, Some(60.0), InfusionOutcome::Stopped),
            (100.0, None, InfusionOutcome::InProgress),
        ]
    );
    // A range selects by start time.
    let second_day = db
        .store
        .infusions(
            &patient("p-1"),
            Some(at("2026-03-01T12:00:00Z")),
            Some(at("2026-03-02T00:00:00Z")),
        )
        .await
        .unwrap();
    assert_eq!(second_day.len(), 1);
    assert_eq!(second_day[0].started_event, receipts[2].id);

    // A nurse corrects the stop that was recorded by mistake: the infusion reads as still running.
    let mut correction = event(
        "p-1",
        "server",
        1,
        at("2026-03-01T21:00:00Z"),
        Body::Correction {
            supersedes: receipts[3].id,
            reason: "stop recorded for the wrong line".into(),
            corrected: None,
        },
    );
    correction.source = Source::Nurse;
    correction.actor = "nurse-kim".into();
    db.store.append(&[correction]).await.unwrap();
    let infusions = db
        .store
        .infusions(&patient("p-1"), None, None)
        .await
        .unwrap();
    assert_eq!(infusions[1].outcome, InfusionOutcome::NoEndRecorded);
    // History itself is unchanged: the stop is still in the timeline.
    assert_eq!(count(&db, "p-1").await, 6);
    assert!(
        db.store
            .superseded(&patient("p-1"))
            .await
            .unwrap()
            .contains(&EventId(receipts[3].id.0))
    );
}

async fn concurrent_writers_keep_one_unbroken_chain(db: TestDb) {
    let store = std::sync::Arc::new(db.store);
    let mut tasks = Vec::new();
    for writer in 0..4u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for batch in 0..5u64 {
                let device = format!("device-{writer}");
                let events = notes("p-1", &device, batch * 10..batch * 10 + 10);
                let mut attempts = 0;
                loop {
                    match store.append(&events).await {
                        Ok(_) => break,
                        // Both errors mean nothing was written; a client retries.
                        Err(RecordError::Locked { .. } | RecordError::Conflict)
                            if attempts < 20 =>
                        {
                            attempts += 1;
                        }
                        Err(e) => panic!("append failed: {e}"),
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let report = store.verify().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.heads[0].events, 200);
}

async fn migrations_run_once_and_reopen_cleanly(db: TestDb) {
    assert_eq!(db.store.schema_version().await.unwrap(), 4);
    db.store
        .append(&notes("p-1", "pump-a", 0..2))
        .await
        .unwrap();
    db.store.close().await;
    let reopened = record::Store::open(record::Config::new(db.url.clone()))
        .await
        .unwrap();
    assert_eq!(reopened.schema_version().await.unwrap(), 4);
    assert_eq!(
        reopened
            .timeline(&TimelineQuery::all(patient("p-1")))
            .await
            .unwrap()
            .len(),
        2
    );
}

/// What a follower on another process reads (issue 15): the events above the id it read to plus the ids it saw
/// skipped (drawn, committed later), and, for the catch-up, the chains that grew up to the id it read to, not
/// beyond (what came after is the next read's).
async fn a_follower_reads_new_ids_skipped_ids_and_grown_chains_up_to_a_bound(db: TestDb) {
    let first = db
        .store
        .append(&notes("p-1", "pump-a", 0..2))
        .await
        .unwrap();
    let second = db
        .store
        .append(&notes("p-2", "pump-b", 0..2))
        .await
        .unwrap();
    let third = db
        .store
        .append(&notes("p-3", "pump-c", 0..1))
        .await
        .unwrap();
    let ids = |events: &[record::StoredEvent]| events.iter().map(|e| e.id.0).collect::<Vec<_>>();

    // Above the first batch, with one of its ids asked for again: that id first, then the newer ones, in order.
    let read = db
        .store
        .events_after_id(first[1].id.0, &[first[0].id.0, 999_999], 10)
        .await
        .unwrap();
    assert_eq!(
        ids(&read),
        vec![first[0].id.0, second[0].id.0, second[1].id.0, third[0].id.0]
    );
    // The limit counts both.
    let read = db
        .store
        .events_after_id(first[1].id.0, &[first[0].id.0], 2)
        .await
        .unwrap();
    assert_eq!(ids(&read), vec![first[0].id.0, second[0].id.0]);
    // Too many ids at once is refused with a message that says the bound.
    let many: Vec<i64> = (1..=record::IDS_LISTED_MAX as i64 + 1).collect();
    let err = db.store.events_after_id(0, &many, 10).await.unwrap_err();
    assert!(err.to_string().contains("at most"), "{err}");

    // Grown chains above the first batch, up to the second's last id: p-2 only, and the top is that id.
    let (grown, top) = db
        .store
        .chains_grown_since(first[1].id.0, second[1].id.0)
        .await
        .unwrap();
    assert_eq!(grown, vec![("p-2".to_string(), 2)]);
    assert_eq!(top, second[1].id.0);
    // Nothing grew in an empty range: the top stays where it was.
    let (grown, top) = db
        .store
        .chains_grown_since(third[0].id.0, i64::MAX)
        .await
        .unwrap();
    assert!(grown.is_empty());
    assert_eq!(top, third[0].id.0);
}

/// A pump's `state_changed` report as the server stores it (with its stamps in the payload).
fn state_report(patient_id: &str, device: &str, seq: u64, data: serde_json::Value) -> NewEvent {
    let mut payload = data;
    payload["device_id"] = device.into();
    payload["seq"] = seq.into();
    event(
        patient_id,
        device,
        seq,
        at("2026-03-01T08:00:00Z") + jiff::SignedDuration::from_secs(seq as i64 * 60),
        Body::Unknown {
            kind: "state_changed".into(),
            payload,
        },
    )
}

async fn a_pumps_identical_state_reports_are_counted_not_chained_and_every_change_is_recorded(
    db: TestDb,
) {
    let infusing = || json!({"state": "infusing"});
    // The first report is recorded; the next two restate it.
    let first = db
        .store
        .append(&[state_report("p-1", "pump-a", 1, infusing())])
        .await
        .unwrap();
    assert!(!first[0].restated && !first[0].duplicate);
    let receipts = db
        .store
        .append(&[
            state_report("p-1", "pump-a", 2, infusing()),
            state_report("p-1", "pump-a", 3, infusing()),
        ])
        .await
        .unwrap();
    let seen: Vec<(i64, bool, bool)> = receipts
        .iter()
        .map(|r| (r.id.0, r.duplicate, r.restated))
        .collect();
    assert_eq!(seen, vec![(first[0].id.0, false, true); 2]);
    assert_eq!(count(&db, "p-1").await, 1);
    let row = db.store.restatement("pump-a").await.unwrap().unwrap();
    assert_eq!(
        (row.event, row.restated, row.last_seq, row.statement.clone()),
        (first[0].id, 2, 3, infusing())
    );
    assert_eq!(row.last_occurred_at, at("2026-03-01T08:03:00Z"));

    // Sent again (its acknowledgement lost): a duplicate, counted once.
    let again = db
        .store
        .append(&[state_report("p-1", "pump-a", 3, infusing())])
        .await
        .unwrap();
    assert_eq!((again[0].duplicate, again[0].restated), (true, true));
    assert_eq!(
        db.store
            .restatement("pump-a")
            .await
            .unwrap()
            .unwrap()
            .restated,
        2
    );

    // An alarm ends the restating: the next report of the same state is recorded.
    let alarm = event(
        "p-1",
        "pump-a",
        4,
        at("2026-03-01T08:04:00Z"),
        Body::AlarmRaised {
            alarm: "occlusion_downstream".into(),
            priority: "high".into(),
            detail: None,
        },
    );
    db.store.append(&[alarm]).await.unwrap();
    assert!(!db.store.restatement("pump-a").await.unwrap().unwrap().open);
    let after_alarm = db
        .store
        .append(&[state_report("p-1", "pump-a", 5, infusing())])
        .await
        .unwrap();
    assert!(!after_alarm[0].restated);
    assert_eq!(
        count(&db, "p-1").await,
        3,
        "first report, alarm, report after it"
    );

    // A change is recorded, and so is going back; a transition is recorded even when repeated.
    let changes = db
        .store
        .append(&[
            state_report("p-1", "pump-a", 6, json!({"state": "paused"})),
            state_report("p-1", "pump-a", 7, infusing()),
            state_report(
                "p-1",
                "pump-a",
                8,
                json!({"from": "infusing", "to": "paused"}),
            ),
            state_report(
                "p-1",
                "pump-a",
                9,
                json!({"from": "infusing", "to": "paused"}),
            ),
            state_report(
                "p-1",
                "pump-a",
                10,
                json!({"state": "paused", "rate_ml_per_h": 0}),
            ),
        ])
        .await
        .unwrap();
    assert!(
        changes.iter().all(|r| !r.restated && !r.duplicate),
        "{changes:?}"
    );
    assert_eq!(count(&db, "p-1").await, 8);

    // Another pump, and the same pump for another patient, start their own rows.
    let other = db
        .store
        .append(&[
            state_report("p-2", "pump-b", 1, infusing()),
            state_report("p-2", "pump-b", 2, infusing()),
            state_report(
                "p-2",
                "pump-a",
                11,
                json!({"state": "paused", "rate_ml_per_h": 0}),
            ),
        ])
        .await
        .unwrap();
    let flags: Vec<bool> = other.iter().map(|r| r.restated).collect();
    assert_eq!(flags, vec![false, true, false]);
    assert_eq!(
        other[1].id, other[0].id,
        "restates the report of this batch"
    );
    let moved = db.store.restatement("pump-a").await.unwrap().unwrap();
    assert_eq!((moved.patient.as_str(), moved.restated), ("p-2", 0));

    // Everything chained still verifies.
    let report = db.store.verify().await.unwrap();
    assert!(report.broken.is_empty(), "{report:?}");
    assert_eq!(report.events_checked, 8 + 2);
}
