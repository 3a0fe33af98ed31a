//! Deletion detected: signed checkpoints of the chain heads catch the newest events being removed, which
//! the chain alone cannot; and a store refuses to open a database whose append-only triggers are gone.
//! Every body runs on SQLite and on PostgreSQL.

mod common;

use common::{TestDb, at, drop_guards, event, note, raw_sql};
use record::{Checkpoint, CheckpointKey, Config, NewEvent, RecordError, Store};

on_both_backends!(
    removing_the_newest_events_passes_verify_but_not_the_checkpoint,
    a_checkpoint_survives_new_appends_and_refuses_a_forged_file,
    open_refuses_a_database_without_its_append_only_triggers,
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

fn key() -> CheckpointKey {
    CheckpointKey::from_bytes(*b"a test key of thirty-two bytes!!").unwrap()
}

async fn removing_the_newest_events_passes_verify_but_not_the_checkpoint(db: TestDb) {
    db.store
        .append(&notes("p-1", "pump-a", 0..5))
        .await
        .unwrap();
    db.store
        .append(&notes("p-2", "pump-b", 0..3))
        .await
        .unwrap();
    db.store
        .append(&notes("p-3", "pump-c", 0..2))
        .await
        .unwrap();
    db.store
        .append(&notes("p-4", "pump-d", 0..2))
        .await
        .unwrap();
    let checkpoint = db.store.checkpoint(&key()).await.unwrap();
    assert_eq!(checkpoint.heads.len(), 4);
    let clean = db
        .store
        .verify_checkpoint(&checkpoint, &key())
        .await
        .unwrap();
    assert!(clean.is_intact(), "{clean:?}");

    // The attacker: database access, triggers dropped, the newest events of two chains removed, a
    // third chain removed entirely and a fourth cut and regrown to its old length.
    drop_guards(&db).await;
    raw_sql(
        &db,
        "DELETE FROM record_events WHERE patient_id = 'p-1' AND chain_seq > 3; \
         DELETE FROM record_events WHERE patient_id = 'p-2'; \
         DELETE FROM record_events WHERE patient_id = 'p-3' AND chain_seq = 2;",
    )
    .await;
    raw_sql(
        &db,
        "DELETE FROM record_events WHERE patient_id = 'p-4' AND chain_seq = 2",
    )
    .await;
    db.store
        .append(&notes("p-4", "pump-d2", 0..1))
        .await
        .unwrap();

    let plain = db.store.verify().await.unwrap();
    assert!(
        plain.is_intact(),
        "the chains alone still verify: {plain:?}"
    );

    let report = db
        .store
        .verify_checkpoint(&checkpoint, &key())
        .await
        .unwrap();
    assert!(!report.is_intact());
    let found: Vec<(&str, &str, i64, i64)> = report
        .missing
        .iter()
        .map(|m| {
            (
                m.patient.as_str(),
                m.problem,
                m.checkpoint_events,
                m.found_events,
            )
        })
        .collect();
    assert_eq!(
        found,
        vec![
            ("p-1", "events_missing", 5, 3),
            ("p-2", "chain_missing", 3, 0),
            ("p-3", "events_missing", 2, 1),
            ("p-4", "head_replaced", 2, 2),
        ]
    );
    assert!(
        report.missing[0].detail.contains("positions 4 to 5"),
        "{:?}",
        report.missing[0]
    );
}

async fn a_checkpoint_survives_new_appends_and_refuses_a_forged_file(db: TestDb) {
    db.store
        .append(&notes("p-1", "pump-a", 0..3))
        .await
        .unwrap();
    let checkpoint = db.store.checkpoint(&key()).await.unwrap();
    db.store
        .append(&notes("p-1", "pump-a", 3..6))
        .await
        .unwrap();
    db.store
        .append(&notes("p-9", "pump-z", 0..2))
        .await
        .unwrap();
    let report = db
        .store
        .verify_checkpoint(&checkpoint, &key())
        .await
        .unwrap();
    assert!(
        report.is_intact(),
        "longer chains and new patients are fine: {report:?}"
    );

    // Lowering the checkpointed count to match a shortened chain breaks the signature.
    let mut forged = checkpoint.clone();
    forged.heads[0].events = 1;
    let text = forged.to_json();
    let error = db
        .store
        .verify_checkpoint(&Checkpoint::from_json(&text).unwrap(), &key())
        .await
        .unwrap_err();
    assert!(matches!(error, RecordError::Checkpoint { .. }), "{error}");
    assert!(
        error.to_string().contains("signature does not match"),
        "{error}"
    );
    let other_key = CheckpointKey::from_bytes([9u8; 32]).unwrap();
    assert!(
        db.store
            .verify_checkpoint(&checkpoint, &other_key)
            .await
            .is_err()
    );
}

async fn open_refuses_a_database_without_its_append_only_triggers(db: TestDb) {
    db.store
        .append(&notes("p-1", "pump-a", 0..2))
        .await
        .unwrap();
    assert!(db.store.missing_guards().await.unwrap().is_empty());
    let sqlite = db.url.starts_with("sqlite:");
    let (dropped, drop_sql) = if sqlite {
        (
            "record_events_no_delete",
            "DROP TRIGGER record_events_no_delete",
        )
    } else {
        (
            "record_events_no_truncate",
            "DROP TRIGGER record_events_no_truncate ON record_events",
        )
    };
    raw_sql(&db, drop_sql).await;

    let error = match Store::open(Config::new(db.url.clone())).await {
        Ok(_) => panic!("a store opened a database without its {dropped} trigger"),
        Err(error) => error,
    };
    let message = error.to_string();
    assert!(
        matches!(error, RecordError::GuardMissing { .. }),
        "{message}"
    );
    assert!(message.contains(dropped), "{message}");
    assert!(message.contains("restore the trigger"), "{message}");

    // Inspection still opens it and names the trigger; the printed statement restores it.
    let mut config = Config::new(db.url.clone());
    config.require_append_only_guards = false;
    let inspector = Store::open(config).await.unwrap();
    let missing = inspector.missing_guards().await.unwrap();
    assert_eq!(missing.len(), 1, "{missing:?}");
    let RecordError::GuardMissing { trigger, restore } = &missing[0] else {
        panic!("{:?}", missing[0])
    };
    assert_eq!(trigger, dropped);
    raw_sql(&db, restore).await;
    inspector.close().await;
    let reopened = Store::open(Config::new(db.url.clone())).await.unwrap();
    assert!(reopened.missing_guards().await.unwrap().is_empty());
    reopened.close().await;

    // A trigger disabled on PostgreSQL counts as missing too.
    if !sqlite {
        raw_sql(
            &db,
            "ALTER TABLE record_events DISABLE TRIGGER record_events_no_change",
        )
        .await;
        let error = Store::open(Config::new(db.url.clone()))
            .await
            .err()
            .expect("refused");
        assert!(
            error.to_string().contains("record_events_no_change"),
            "{error}"
        );
    }
}
