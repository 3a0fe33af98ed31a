//! SQLite-specific faults: a database locked by another writer and a full database give a clear error
//! and write nothing of the batch.

mod common;

use common::{at, event, note, patient};
use record::{Config, RecordError, Store, TimelineQuery};
use sqlx::Connection;

#[tokio::test]
async fn locked_database_gives_a_clear_error_and_writes_nothing() {
    let dir = common::temp_dir("locked");
    let _cleanup = common::DirGuard(dir.clone());
    let mut config = common::sqlite_config(&dir);
    config.busy_timeout_ms = 200;
    let store = Store::open(config.clone()).await.unwrap();
    store
        .append(&[event(
            "p-1",
            "pump-a",
            1,
            at("2026-03-01T08:00:00Z"),
            note("before"),
        )])
        .await
        .unwrap();

    // Another process holds the write lock.
    let mut other = sqlx::SqliteConnection::connect(&config.database_url)
        .await
        .unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();

    let batch: Vec<_> = (2..10)
        .map(|seq| {
            event(
                "p-1",
                "pump-a",
                seq,
                at("2026-03-01T08:00:00Z"),
                note("blocked"),
            )
        })
        .collect();
    let error = store.append(&batch).await.unwrap_err();
    assert!(
        matches!(error, RecordError::Locked { waited_ms: 200 }),
        "{error:?}"
    );
    assert!(
        error.to_string().starts_with(
            "the record database is locked by another writer (waited 200 ms); nothing was written"
        ),
        "{error}"
    );

    sqlx::raw_sql("ROLLBACK").execute(&mut other).await.unwrap();
    other.close().await.unwrap();
    let events = store
        .timeline(&TimelineQuery::all(patient("p-1")))
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    // Once the lock is gone the same batch goes through.
    assert_eq!(store.append(&batch).await.unwrap().len(), 8);
    assert!(store.verify().await.unwrap().is_intact());
}

#[tokio::test]
async fn full_database_gives_a_clear_error_and_writes_nothing() {
    let dir = common::temp_dir("full");
    let _cleanup = common::DirGuard(dir.clone());
    let mut config: Config = common::sqlite_config(&dir);
    config.sqlite_max_page_count = Some(80); // 320 KiB with 4 KiB pages
    let store = Store::open(config).await.unwrap();
    let big = "x".repeat(20_000);
    let mut seq = 0u64;
    let mut written = 0usize;
    let error = loop {
        let batch: Vec<_> = (0..4)
            .map(|_| {
                seq += 1;
                event("p-1", "pump-a", seq, at("2026-03-01T08:00:00Z"), note(&big))
            })
            .collect();
        match store.append(&batch).await {
            Ok(receipts) => written += receipts.len(),
            Err(error) => break error,
        }
        assert!(seq < 1_000, "the size limit never took effect");
    };
    assert!(matches!(error, RecordError::Full), "{error:?}");
    assert_eq!(
        error.to_string(),
        "the record database is full (disk or configured size limit); nothing was written — free disk space or raise the limit, then retry"
    );
    assert!(written > 0);
    let events = store
        .timeline(&TimelineQuery::all(patient("p-1")))
        .await
        .unwrap();
    assert_eq!(
        events.len(),
        written,
        "the failed batch left nothing behind"
    );
    assert!(store.verify().await.unwrap().is_intact());
}

#[tokio::test]
async fn unsupported_urls_are_refused_without_leaking_passwords() {
    async fn check(url: &str, expect: &str) {
        let error = Store::open(Config::new(url))
            .await
            .err()
            .expect("must fail");
        assert_eq!(error.to_string(), expect);
    }
    check(
        "mysql://root:hunter2@localhost/db",
        "unsupported database URL \"mysql://root:***@localhost/db\": use sqlite://PATH (the default, a file in the data directory) or postgres://USER:PASSWORD@HOST:PORT/DATABASE",
    )
    .await;
    check(
        "infusafe.db",
        "unsupported database URL \"infusafe.db\": use sqlite://PATH (the default, a file in the data directory) or postgres://USER:PASSWORD@HOST:PORT/DATABASE",
    )
    .await;
}

#[tokio::test]
async fn a_database_from_a_newer_version_is_refused() {
    let dir = common::temp_dir("newer");
    let _cleanup = common::DirGuard(dir.clone());
    let config = common::sqlite_config(&dir);
    Store::open(config.clone()).await.unwrap().close().await;
    let pool = sqlx::SqlitePool::connect(&config.database_url)
        .await
        .unwrap();
    sqlx::raw_sql(
        "INSERT INTO record_schema_version (version, description, applied_at_us) VALUES (99, 'from the future', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let error = Store::open(config).await.err().expect("must refuse");
    assert!(
        matches!(
            error,
            RecordError::SchemaTooNew {
                found: 99,
                supported: 4
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_unreachable_postgres_server_gives_a_clear_error() {
    // Port 1 on loopback: nothing listens there.
    let mut config = Config::new("postgres://infusafe:secret@127.0.0.1:1/infusafe");
    config.busy_timeout_ms = 100;
    let error = Store::open(config).await.err().expect("must fail");
    assert_eq!(
        error.to_string(),
        "cannot reach the record database within 5100 ms: check the database URL and that the database server is running"
    );
}

#[tokio::test]
async fn an_in_memory_store_keeps_its_data_across_calls() {
    let store = Store::open(Config::new("sqlite::memory:")).await.unwrap();
    for seq in 0..3 {
        store
            .append(&[event(
                "p-1",
                "pump-a",
                seq,
                at("2026-03-01T08:00:00Z"),
                note("x"),
            )])
            .await
            .unwrap();
    }
    let events = store
        .timeline(&TimelineQuery::all(patient("p-1")))
        .await
        .unwrap();
    assert_eq!(events.len(), 3);
}

#[tokio::test]
async fn resending_old_and_new_sequence_numbers_far_apart_is_recognised() {
    let dir = common::temp_dir("sparse");
    let _cleanup = common::DirGuard(dir.clone());
    let store = Store::open(common::sqlite_config(&dir)).await.unwrap();
    let batch: Vec<_> = (0..50)
        .map(|seq| event("p-1", "pump-a", seq, at("2026-03-01T08:00:00Z"), note("x")))
        .collect();
    let first = store.append(&batch).await.unwrap();
    // Sequence numbers 3 and 1,000,000 in one batch: 3 is a duplicate, the other is new.
    let sparse = vec![
        batch[3].clone(),
        event(
            "p-1",
            "pump-a",
            1_000_000,
            at("2026-03-01T09:00:00Z"),
            note("y"),
        ),
    ];
    let receipts = store.append(&sparse).await.unwrap();
    assert_eq!(receipts[0].id, first[3].id);
    assert!(receipts[0].duplicate);
    assert!(!receipts[1].duplicate);
    assert!(store.verify().await.unwrap().is_intact());
}
