//! The record's tables and their versioned migrations, applied when a store opens.
//!
//! The record keeps its own version table (`record_schema_version`) so its migrations never collide with
//! the server's, which live in the same database. Migrations only ever add; the SQL here and everywhere
//! in this crate never updates or deletes an event (the `append_only` test greps for it), and triggers
//! make the database itself refuse UPDATE and DELETE on `record_events`. The one exception is
//! `record_telemetry` (migration 2) and `record_telemetry_blocks` (migration 4): sampled pump telemetry,
//! not hash-chained, which retention packs, downsamples and removes (`telemetry.rs`); and `record_restatements` (migration 3): one status row per pump,
//! replaced when the pump reports its state (`restate.rs`).

pub(crate) struct Migration {
    pub version: i64,
    pub description: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

pub(crate) const VERSION_TABLE_SQLITE: &str = "CREATE TABLE IF NOT EXISTS record_schema_version (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at_us BIGINT NOT NULL
)";

pub(crate) const VERSION_TABLE_POSTGRES: &str = "CREATE TABLE IF NOT EXISTS record_schema_version (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at_us BIGINT NOT NULL
)";

/// Every migration, in order. Never edit one that has shipped: add a new one.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "record_events: the append-only, hash-chained event log",
        sqlite: r#"
CREATE TABLE record_events (
    id INTEGER PRIMARY KEY,
    patient_id TEXT NOT NULL,
    chain_seq BIGINT NOT NULL,
    device_id TEXT NOT NULL,
    device_seq BIGINT NOT NULL,
    occurred_at_us BIGINT NOT NULL,
    local_offset_s INTEGER NOT NULL,
    recorded_at_us BIGINT NOT NULL,
    source TEXT NOT NULL,
    actor TEXT NOT NULL,
    teaching BOOLEAN NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    CONSTRAINT record_events_dedup UNIQUE (device_id, device_seq),
    CONSTRAINT record_events_chain UNIQUE (patient_id, chain_seq)
);
CREATE INDEX record_events_timeline ON record_events (patient_id, occurred_at_us, id);
CREATE INDEX record_events_by_kind ON record_events (patient_id, kind, occurred_at_us);
CREATE TRIGGER record_events_no_update BEFORE UPDATE ON record_events
BEGIN
    SELECT RAISE(ABORT, 'record_events is append-only: record a correction event instead');
END;
CREATE TRIGGER record_events_no_delete BEFORE DELETE ON record_events
BEGIN
    SELECT RAISE(ABORT, 'record_events is append-only: record a correction event instead');
END;
"#,
        postgres: r#"
CREATE SEQUENCE record_event_ids;
CREATE TABLE record_events (
    id BIGINT PRIMARY KEY,
    patient_id TEXT NOT NULL,
    chain_seq BIGINT NOT NULL,
    device_id TEXT NOT NULL,
    device_seq BIGINT NOT NULL,
    occurred_at_us BIGINT NOT NULL,
    local_offset_s INTEGER NOT NULL,
    recorded_at_us BIGINT NOT NULL,
    source TEXT NOT NULL,
    actor TEXT NOT NULL,
    teaching BOOLEAN NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    CONSTRAINT record_events_dedup UNIQUE (device_id, device_seq),
    CONSTRAINT record_events_chain UNIQUE (patient_id, chain_seq)
);
CREATE INDEX record_events_timeline ON record_events (patient_id, occurred_at_us, id);
CREATE INDEX record_events_by_kind ON record_events (patient_id, kind, occurred_at_us);
CREATE FUNCTION record_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    RAISE EXCEPTION 'record_events is append-only: record a correction event instead';
END
$fn$;
CREATE TRIGGER record_events_no_change BEFORE UPDATE OR DELETE ON record_events
    FOR EACH ROW EXECUTE FUNCTION record_events_append_only();
CREATE TRIGGER record_events_no_truncate BEFORE TRUNCATE ON record_events
    FOR EACH STATEMENT EXECUTE FUNCTION record_events_append_only();
"#,
    },
    Migration {
        version: 2,
        description: "record_telemetry: pump telemetry samples, compact, downsampled after a retention period",
        // Not hash-chained and not append-only: retention replaces old samples by one row per bucket and
        // may remove them (`Store::compact_telemetry`). Clinical events stay in `record_events`.
        // `bucket_s` 0 is a sample at full resolution; otherwise the row sums up that many seconds.
        // WITHOUT ROWID: the key is the row's address, so (patient, time) is not stored twice. No other
        // index: retention finds its place by walking the key (see `telemetry.rs`), which keeps rows small.
        sqlite: r#"
CREATE TABLE record_telemetry (
    patient_id TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    device_id TEXT NOT NULL,
    bucket_s INTEGER NOT NULL,
    state TEXT NOT NULL,
    rate_ml_per_h REAL NOT NULL,
    delivered_ml REAL NOT NULL,
    remaining_ml REAL NOT NULL,
    battery_percent REAL NOT NULL,
    mains_present BOOLEAN NOT NULL,
    downstream_pressure_mmhg REAL NOT NULL,
    teaching BOOLEAN NOT NULL,
    PRIMARY KEY (patient_id, at_ms, device_id)
) WITHOUT ROWID;
"#,
        postgres: r#"
CREATE TABLE record_telemetry (
    patient_id TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    device_id TEXT NOT NULL,
    bucket_s INTEGER NOT NULL,
    state TEXT NOT NULL,
    rate_ml_per_h DOUBLE PRECISION NOT NULL,
    delivered_ml DOUBLE PRECISION NOT NULL,
    remaining_ml DOUBLE PRECISION NOT NULL,
    battery_percent DOUBLE PRECISION NOT NULL,
    mains_present BOOLEAN NOT NULL,
    downstream_pressure_mmhg DOUBLE PRECISION NOT NULL,
    teaching BOOLEAN NOT NULL,
    PRIMARY KEY (patient_id, at_ms, device_id)
);
"#,
    },
    Migration {
        version: 3,
        description: "record_restatements: per pump, its last recorded state report and the identical reports since",
        // Status, not history: one row per pump, updated in the append that takes the pump's next state
        // report (`restate.rs`). The events it points at stay in `record_events`.
        sqlite: concat!(restatements_table!(), ";"),
        // Half-full pages: each report UPDATEs its pump's row, which then stays on its page (a heap-only
        // update, no index entry), so the table does not grow between vacuums.
        postgres: concat!(restatements_table!(), " WITH (fillfactor = 50);"),
    },
    Migration {
        version: 4,
        description: "record_telemetry_blocks: one pump's full-resolution telemetry of one hour, packed",
        // Not hash-chained, like `record_telemetry`: compaction packs each hour's samples an hour after it
        // ended and unpacks what it downsamples or removes (`telemetry.rs`, format in `telemetry_block.rs`).
        sqlite: r#"
CREATE TABLE record_telemetry_blocks (
    patient_id TEXT NOT NULL,
    block_ms BIGINT NOT NULL,
    device_id TEXT NOT NULL,
    samples INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (patient_id, block_ms, device_id)
);
"#,
        postgres: r#"
CREATE TABLE record_telemetry_blocks (
    patient_id TEXT NOT NULL,
    block_ms BIGINT NOT NULL,
    device_id TEXT NOT NULL,
    samples INTEGER NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (patient_id, block_ms, device_id)
);
"#,
    },
];

/// Migration 3's table, without its end (PostgreSQL adds a fill factor).
macro_rules! restatements_table {
    () => {
        "
CREATE TABLE record_restatements (
    device_id TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    statement TEXT NOT NULL,
    event_id BIGINT NOT NULL,
    restated BIGINT NOT NULL,
    last_seq BIGINT NOT NULL,
    last_occurred_at_us BIGINT NOT NULL,
    last_recorded_at_us BIGINT NOT NULL,
    open BOOLEAN NOT NULL
)"
    };
}
use restatements_table;

/// The schema version this build writes.
pub(crate) fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// An append-only trigger every store must find on `record_events`, and the statement that restores it.
pub(crate) struct Guard {
    pub name: &'static str,
    pub restore: &'static str,
}

/// The triggers of migration 1 on SQLite.
pub(crate) const GUARDS_SQLITE: &[Guard] = &[
    Guard {
        name: "record_events_no_update",
        restore: "CREATE TRIGGER record_events_no_update BEFORE UPDATE ON record_events BEGIN SELECT RAISE(ABORT, 'record_events is append-only: record a correction event instead'); END;",
    },
    Guard {
        name: "record_events_no_delete",
        restore: "CREATE TRIGGER record_events_no_delete BEFORE DELETE ON record_events BEGIN SELECT RAISE(ABORT, 'record_events is append-only: record a correction event instead'); END;",
    },
];

/// The triggers of migration 1 on PostgreSQL (both call `record_events_append_only()`).
pub(crate) const GUARDS_POSTGRES: &[Guard] = &[
    Guard {
        name: "record_events_no_change",
        restore: "CREATE TRIGGER record_events_no_change BEFORE UPDATE OR DELETE ON record_events FOR EACH ROW EXECUTE FUNCTION record_events_append_only();",
    },
    Guard {
        name: "record_events_no_truncate",
        restore: "CREATE TRIGGER record_events_no_truncate BEFORE TRUNCATE ON record_events FOR EACH STATEMENT EXECUTE FUNCTION record_events_append_only();",
    },
];

/// The names of the triggers present (and, on PostgreSQL, enabled) on `record_events`.
pub(crate) const GUARD_NAMES_SQLITE: &str =
    "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'record_events'";
pub(crate) const GUARD_NAMES_POSTGRES: &str = "SELECT tgname::text FROM pg_trigger \
     WHERE tgrelid = 'record_events'::regclass AND NOT tgisinternal AND tgenabled <> 'D'";
