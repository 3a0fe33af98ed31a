//! The steps of [`Store::append`], split so each fits on a screen: the decisions (which keys to look
//! up, which events of the batch are new, how each new event links to its chain, the receipts) are pure
//! functions; the SQL of each step is written once and compiled for both backends ([`AppendSql`]); the
//! parent, `Store::append`, runs the steps in one transaction and is the only place that writes.

use crate::chain::{GENESIS_HASH, Link};
use crate::error::RecordError;
use crate::event::{EventId, NewEvent, PreparedEvent, StoredEvent};
use crate::restate::{Stated, Target};
use crate::store::{
    BATCH_EVENTS_MAX, Backend, CLAIM_SEQ_BASE, INSERT_ROWS_MAX, Receipt, Store, columns,
    event_from_row, same_content,
};
use sqlx::{QueryBuilder, Row};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Events already recorded, by their de-duplication key `(device_id, device_seq)`.
pub(crate) type Existing = HashMap<(String, i64), StoredEvent>;

/// The current end of each chain a batch extends: patient → (chain_seq, hash).
pub(crate) type Heads = HashMap<String, (i64, String)>;

/// Checks the batch size and every event; an empty batch is `Ok(empty)`.
pub(crate) fn prepare_batch(events: &[NewEvent]) -> Result<Vec<PreparedEvent>, RecordError> {
    if events.len() > BATCH_EVENTS_MAX {
        return Err(RecordError::InvalidEvent {
            what: "batch".into(),
            reason: format!(
                "has {} events; split it into batches of at most {BATCH_EVENTS_MAX}",
                events.len()
            ),
        });
    }
    events
        .iter()
        .enumerate()
        .map(|(i, e)| e.prepare(i))
        .collect()
}

/// The patients whose chains a batch touches, sorted: PostgreSQL locks them in this order, so two
/// batches can never deadlock.
pub(crate) fn chain_patients(prepared: &[PreparedEvent]) -> BTreeSet<&str> {
    prepared.iter().map(|e| e.patient.as_str()).collect()
}

/// One query for already recorded keys of one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyLookup<'a> {
    /// Every sequence number in `low..=high` (the batch's numbers are close together).
    Range {
        device: &'a str,
        low: i64,
        high: i64,
    },
    /// Exactly these numbers (the batch's numbers are far apart), at most `INSERT_ROWS_MAX` of them.
    List { device: &'a str, seqs: Vec<i64> },
}

/// Which keys are already recorded? One range query per device; a device whose sequence numbers in
/// this batch are far apart is asked for exactly its numbers instead, so a batch never reads a long
/// stretch of history.
pub(crate) fn key_lookups(prepared: &[PreparedEvent]) -> Vec<KeyLookup<'_>> {
    let mut seqs_by_device: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for e in prepared {
        seqs_by_device
            .entry(e.device_id.as_str())
            .or_default()
            .push(e.device_seq);
    }
    let mut lookups = Vec::new();
    for (device, mut seqs) in seqs_by_device {
        seqs.sort_unstable();
        seqs.dedup();
        let (low, high) = (seqs[0], seqs[seqs.len() - 1]);
        let span = u64::try_from(high - low).unwrap_or(u64::MAX);
        if span <= 4 * seqs.len() as u64 {
            lookups.push(KeyLookup::Range { device, low, high });
        } else {
            lookups.extend(seqs.chunks(INSERT_ROWS_MAX).map(|chunk| KeyLookup::List {
                device,
                seqs: chunk.to_vec(),
            }));
        }
    }
    lookups
}

/// The batch split into duplicates (with their receipts) and new events.
#[derive(Debug)]
pub(crate) struct Split<'a> {
    /// Filled for events already recorded; `None` for new events and repeats inside the batch.
    pub receipts: Vec<Option<Receipt>>,
    /// Indices of the events to write, in batch order.
    pub fresh: Vec<usize>,
    /// The first occurrence in the batch of each new key.
    pub first_of_key: HashMap<(&'a str, i64), usize>,
}

/// Splits the batch: a key already recorded with the same content is a duplicate, with other content
/// a [`RecordError::DedupConflict`]; a key repeated inside the batch must repeat the same event.
pub(crate) fn split_batch<'a>(
    prepared: &'a [PreparedEvent],
    existing: &Existing,
) -> Result<Split<'a>, RecordError> {
    let mut split = Split {
        receipts: vec![None; prepared.len()],
        fresh: Vec::new(),
        first_of_key: HashMap::new(),
    };
    for (i, e) in prepared.iter().enumerate() {
        let key = (e.device_id.as_str(), e.device_seq);
        if let Some(old) = existing.get(&(e.device_id.clone(), e.device_seq)) {
            if !same_content(e, old) && !is_claim(e.device_seq) {
                return Err(RecordError::DedupConflict {
                    device_id: e.device_id.clone(),
                    device_seq: e.device_seq,
                    existing: old.id,
                });
            }
            split.receipts[i] = Some(Receipt {
                id: old.id,
                duplicate: true,
                restated: false,
            });
        } else if let Some(&first) = split.first_of_key.get(&key) {
            // The same key twice in one batch: fine if identical, resolved after ids exist.
            if prepared[first] != *e {
                return Err(RecordError::InvalidEvent {
                    what: format!("event {i}"),
                    reason: format!(
                        "repeats device {:?} sequence number {} of event {first} with different content",
                        e.device_id, e.device_seq
                    ),
                });
            }
        } else {
            split.first_of_key.insert(key, i);
            split.fresh.push(i);
        }
    }
    Ok(split)
}

/// A claim: the key names a decision, and the first event recorded under it wins (see [`CLAIM_SEQ_BASE`]).
pub(crate) fn is_claim(device_seq: i64) -> bool {
    u64::try_from(device_seq).is_ok_and(|s| s >= CLAIM_SEQ_BASE)
}

/// The patients of the new events, each once, in batch order.
pub(crate) fn fresh_patients<'a>(prepared: &'a [PreparedEvent], fresh: &[usize]) -> Vec<&'a str> {
    let mut seen = BTreeSet::new();
    fresh
        .iter()
        .map(|&i| prepared[i].patient.as_str())
        .filter(|patient| seen.insert(*patient))
        .collect()
}

/// A new event's place: its id, its chain position and the two hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewRow {
    /// Index of the event in the batch.
    pub index: usize,
    pub id: i64,
    pub chain_seq: i64,
    pub prev_hash: String,
    pub hash: String,
}

/// Links each new event to the end of its chain, in batch order; `ids` are the drawn ids, one per
/// fresh event; every fresh event's patient has an entry in `heads`.
pub(crate) fn link_fresh(
    prepared: &[PreparedEvent],
    fresh: &[usize],
    mut heads: Heads,
    ids: &[i64],
    recorded_at_us: i64,
) -> Vec<NewRow> {
    let mut rows = Vec::with_capacity(fresh.len());
    for (&index, &id) in fresh.iter().zip(ids) {
        let e = &prepared[index];
        let head = heads
            .entry(e.patient.as_str().to_owned())
            .or_insert_with(|| (0, GENESIS_HASH.to_string()));
        let chain_seq = head.0 + 1;
        let hash = Link {
            id,
            patient: e.patient.as_str(),
            chain_seq,
            device_id: &e.device_id,
            device_seq: e.device_seq,
            occurred_at_us: e.occurred_at_us,
            local_offset_s: e.local_offset_s,
            recorded_at_us,
            source: e.source.name(),
            actor: &e.actor,
            teaching: e.teaching,
            kind: &e.kind,
            payload: &e.payload,
            prev_hash: &head.1,
        }
        .hash();
        rows.push(NewRow {
            index,
            id,
            chain_seq,
            prev_hash: std::mem::replace(&mut head.1, hash.clone()),
            hash,
        });
        head.0 = chain_seq;
    }
    rows
}

/// One receipt per event, in batch order: duplicates carry the original id, new events their new id,
/// and repeats inside the batch the id of their first occurrence.
pub(crate) fn receipts(
    prepared: &[PreparedEvent],
    split: Split<'_>,
    rows: &[NewRow],
    restated: &[(usize, Target, bool)],
) -> Vec<Receipt> {
    let mut receipts = split.receipts;
    for row in rows {
        receipts[row.index] = Some(Receipt {
            id: EventId(row.id),
            duplicate: false,
            restated: false,
        });
    }
    for &(index, target, duplicate) in restated {
        receipts[index] = Some(Receipt {
            id: EventId(resolve(target, rows)),
            duplicate,
            restated: true,
        });
    }
    let mut out = Vec::with_capacity(prepared.len());
    for (i, e) in prepared.iter().enumerate() {
        let receipt = match &receipts[i] {
            Some(r) => r.clone(),
            None => {
                let first = split.first_of_key[&(e.device_id.as_str(), e.device_seq)];
                let original = receipts[first]
                    .as_ref()
                    .expect("the first occurrence of a key has a receipt");
                Receipt {
                    duplicate: true,
                    ..original.clone()
                }
            }
        };
        out.push(receipt);
    }
    out
}

/// The id of a recorded event a restatement names: stored already, or written in this batch (every index a
/// folding names is one of the batch's new rows).
pub(crate) fn resolve(target: Target, rows: &[NewRow]) -> i64 {
    match target {
        Target::Id(id) => id,
        Target::Index(index) => rows.iter().find(|r| r.index == index).map_or(0, |r| r.id),
    }
}

/// The SQL of each append step, on a connection inside the append's transaction.
pub(crate) trait AppendSql {
    /// PostgreSQL: serialize appends per chain (several app servers may append for one patient).
    async fn lock_chains(
        &mut self,
        store: &Store,
        patients: &BTreeSet<&str>,
    ) -> Result<(), RecordError>;
    async fn existing_events(
        &mut self,
        store: &Store,
        lookups: &[KeyLookup<'_>],
    ) -> Result<Existing, RecordError>;
    /// The current end of a patient's chain: (0, genesis) for a new chain.
    async fn chain_head(
        &mut self,
        store: &Store,
        patient: &str,
    ) -> Result<(i64, String), RecordError>;
    /// Ids, drawn while holding the write lock (SQLite) or from the sequence (PostgreSQL).
    async fn draw_ids(
        &mut self,
        store: &Store,
        backend: Backend,
        count: usize,
    ) -> Result<Vec<i64>, RecordError>;
    /// The stored state rows of these pumps (`restate.rs`).
    async fn restatements(
        &mut self,
        store: &Store,
        devices: &[&str],
    ) -> Result<HashMap<String, Stated>, RecordError>;
    /// Writes the state rows of the pumps in `rows`: an UPDATE of the pumps in `stored` (their rows were read),
    /// an INSERT of the others; `new_rows` give the ids of reports recorded in this batch.
    async fn write_restatements(
        &mut self,
        store: &Store,
        rows: &BTreeMap<String, Stated>,
        stored: &BTreeSet<String>,
        new_rows: &[NewRow],
    ) -> Result<(), RecordError>;
    /// Writes the new rows, many per statement.
    async fn insert_rows(
        &mut self,
        store: &Store,
        prepared: &[PreparedEvent],
        rows: &[NewRow],
        recorded_at_us: i64,
    ) -> Result<(), RecordError>;
}

/// Implements [`AppendSql`] for one backend's connection type: the same SQL text for both.
macro_rules! append_sql {
    ($connection:ty) => {
        impl AppendSql for $connection {
            async fn lock_chains(
                &mut self,
                store: &Store,
                patients: &BTreeSet<&str>,
            ) -> Result<(), RecordError> {
                for patient in patients {
                    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                        .bind(*patient)
                        .execute(&mut *self)
                        .await
                        .map_err(|e| store.err(e))?;
                }
                Ok(())
            }

            async fn existing_events(
                &mut self,
                store: &Store,
                lookups: &[KeyLookup<'_>],
            ) -> Result<Existing, RecordError> {
                let mut existing = Existing::new();
                for lookup in lookups {
                    let mut select = QueryBuilder::new(concat!(
                        "SELECT ",
                        columns!(),
                        " FROM record_events WHERE device_id = "
                    ));
                    match lookup {
                        KeyLookup::Range { device, low, high } => {
                            select.push_bind(*device);
                            select.push(" AND device_seq BETWEEN ").push_bind(*low);
                            select.push(" AND ").push_bind(*high);
                        }
                        KeyLookup::List { device, seqs } => {
                            select.push_bind(*device);
                            select.push(" AND device_seq IN (");
                            let mut list = select.separated(", ");
                            for seq in seqs {
                                list.push_bind(*seq);
                            }
                            select.push(")");
                        }
                    }
                    let rows = select
                        .build()
                        .fetch_all(&mut *self)
                        .await
                        .map_err(|e| store.err(e))?;
                    for row in &rows {
                        let event = event_from_row(row)?;
                        existing.insert((event.device_id.clone(), event.device_seq), event);
                    }
                }
                Ok(existing)
            }

            async fn chain_head(
                &mut self,
                store: &Store,
                patient: &str,
            ) -> Result<(i64, String), RecordError> {
                let head = sqlx::query(
                    "SELECT chain_seq, hash FROM record_events WHERE patient_id = $1 ORDER BY chain_seq DESC LIMIT 1",
                )
                .bind(patient)
                .fetch_optional(&mut *self)
                .await
                .map_err(|e| store.err(e))?;
                Ok(match head {
                    Some(row) => (
                        row.try_get::<i64, _>(0).map_err(|e| store.err(e))?,
                        row.try_get::<String, _>(1).map_err(|e| store.err(e))?,
                    ),
                    None => (0, GENESIS_HASH.to_string()),
                })
            }

            async fn draw_ids(
                &mut self,
                store: &Store,
                backend: Backend,
                count: usize,
            ) -> Result<Vec<i64>, RecordError> {
                Ok(match backend {
                    Backend::Sqlite => {
                        let max: i64 =
                            sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM record_events")
                                .fetch_one(&mut *self)
                                .await
                                .map_err(|e| store.err(e))?;
                        (1..=count as i64).map(|n| max + n).collect()
                    }
                    Backend::Postgres => {
                        let mut ids: Vec<i64> = sqlx::query_scalar(
                            "SELECT nextval('record_event_ids') FROM generate_series(1, $1)",
                        )
                        .bind(count as i64)
                        .fetch_all(&mut *self)
                        .await
                        .map_err(|e| store.err(e))?;
                        ids.sort_unstable();
                        ids
                    }
                })
            }

            async fn restatements(
                &mut self,
                store: &Store,
                devices: &[&str],
            ) -> Result<HashMap<String, Stated>, RecordError> {
                let mut known = HashMap::new();
                for chunk in devices.chunks(INSERT_ROWS_MAX) {
                    let mut select = QueryBuilder::new(format!(
                        "SELECT {} FROM record_restatements WHERE device_id IN (",
                        crate::restate::COLUMNS
                    ));
                    let mut list = select.separated(", ");
                    for device in chunk {
                        list.push_bind(*device);
                    }
                    select.push(")");
                    let rows = select
                        .build()
                        .fetch_all(&mut *self)
                        .await
                        .map_err(|e| store.err(e))?;
                    for row in &rows {
                        let (device, stated) = stated_from_row(row).map_err(|e| store.err(e))?;
                        known.insert(device, stated);
                    }
                }
                Ok(known)
            }

            async fn write_restatements(
                &mut self,
                store: &Store,
                rows: &BTreeMap<String, Stated>,
                stored: &BTreeSet<String>,
                new_rows: &[NewRow],
            ) -> Result<(), RecordError> {
                let (known, new): (Vec<_>, Vec<_>) =
                    rows.iter().partition(|(device, _)| stored.contains(*device));
                // One UPDATE a pump: on PostgreSQL a heap-only update, so the busy table stays small.
                for (device, s) in known {
                    sqlx::query(
                        "UPDATE record_restatements SET patient_id = $2, kind = $3, statement = $4, event_id = $5, \
                         restated = $6, last_seq = $7, last_occurred_at_us = $8, last_recorded_at_us = $9, \
                         open = $10 WHERE device_id = $1",
                    )
                    .bind(device.as_str())
                    .bind(s.patient.as_str())
                    .bind(s.kind.as_str())
                    .bind(s.statement.as_str())
                    .bind(resolve(s.event, new_rows))
                    .bind(s.restated)
                    .bind(s.last_seq)
                    .bind(s.last_occurred_at_us)
                    .bind(s.last_recorded_at_us)
                    .bind(s.open)
                    .execute(&mut *self)
                    .await
                    .map_err(|e| store.err(e))?;
                }
                for chunk in new.chunks(INSERT_ROWS_MAX) {
                    let mut insert = QueryBuilder::new(format!(
                        "INSERT INTO record_restatements ({}) ",
                        crate::restate::COLUMNS
                    ));
                    insert.push_values(chunk, |mut values, (device, s)| {
                        values
                            .push_bind(device.as_str())
                            .push_bind(s.patient.as_str())
                            .push_bind(s.kind.as_str())
                            .push_bind(s.statement.as_str())
                            .push_bind(resolve(s.event, new_rows))
                            .push_bind(s.restated)
                            .push_bind(s.last_seq)
                            .push_bind(s.last_occurred_at_us)
                            .push_bind(s.last_recorded_at_us)
                            .push_bind(s.open);
                    });
                    insert
                        .build()
                        .execute(&mut *self)
                        .await
                        .map_err(|e| store.err(e))?;
                }
                Ok(())
            }

            async fn insert_rows(
                &mut self,
                store: &Store,
                prepared: &[PreparedEvent],
                rows: &[NewRow],
                recorded_at_us: i64,
            ) -> Result<(), RecordError> {
                for chunk in rows.chunks(INSERT_ROWS_MAX) {
                    let mut insert =
                        QueryBuilder::new(concat!("INSERT INTO record_events (", columns!(), ") "));
                    insert.push_values(chunk, |mut values, row| {
                        let e = &prepared[row.index];
                        values
                            .push_bind(row.id)
                            .push_bind(e.patient.as_str())
                            .push_bind(row.chain_seq)
                            .push_bind(e.device_id.as_str())
                            .push_bind(e.device_seq)
                            .push_bind(e.occurred_at_us)
                            .push_bind(e.local_offset_s)
                            .push_bind(recorded_at_us)
                            .push_bind(e.source.name())
                            .push_bind(e.actor.as_str())
                            .push_bind(e.teaching)
                            .push_bind(e.kind.as_str())
                            .push_bind(e.payload.as_str())
                            .push_bind(row.prev_hash.as_str())
                            .push_bind(row.hash.as_str());
                    });
                    insert
                        .build()
                        .execute(&mut *self)
                        .await
                        .map_err(|e| store.err(e))?;
                }
                Ok(())
            }
        }
    };
}

/// A row of `record_restatements` (columns in `restate::COLUMNS` order).
pub(crate) fn stated_from_row<R>(row: &R) -> Result<(String, Stated), sqlx::Error>
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    i64: sqlx::Type<R::Database> + for<'r> sqlx::Decode<'r, R::Database>,
    String: sqlx::Type<R::Database> + for<'r> sqlx::Decode<'r, R::Database>,
    bool: sqlx::Type<R::Database> + for<'r> sqlx::Decode<'r, R::Database>,
{
    Ok((
        row.try_get(0)?,
        Stated {
            patient: row.try_get(1)?,
            kind: row.try_get(2)?,
            statement: row.try_get(3)?,
            event: Target::Id(row.try_get(4)?),
            restated: row.try_get(5)?,
            last_seq: row.try_get(6)?,
            last_occurred_at_us: row.try_get(7)?,
            last_recorded_at_us: row.try_get(8)?,
            open: row.try_get(9)?,
        },
    ))
}

append_sql!(sqlx::SqliteConnection);
append_sql!(sqlx::PgConnection);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Body, PatientId, Source};

    fn prepared(patient: &str, device: &str, seqs: &[u64]) -> Vec<PreparedEvent> {
        seqs.iter()
            .map(|&seq| NewEvent {
                patient: PatientId::new(patient).unwrap(),
                device_id: device.into(),
                device_seq: seq,
                occurred_at: jiff::Timestamp::UNIX_EPOCH,
                local_offset_s: 0,
                source: Source::Pump,
                actor: device.into(),
                teaching: false,
                body: Body::Note {
                    text: format!("n{seq}"),
                },
            })
            .enumerate()
            .map(|(i, e)| e.prepare(i).unwrap())
            .collect()
    }

    #[test]
    fn close_sequence_numbers_are_one_range_far_ones_exact_lists() {
        let mut batch = prepared("p", "a", &[5, 3, 4, 3]);
        batch.extend(prepared("p", "b", &[1, 1_000_000]));
        assert_eq!(
            key_lookups(&batch),
            vec![
                KeyLookup::Range {
                    device: "a",
                    low: 3,
                    high: 5
                },
                KeyLookup::List {
                    device: "b",
                    seqs: vec![1, 1_000_000]
                },
            ]
        );
    }

    #[test]
    fn repeats_in_a_batch_share_the_first_id_and_changed_repeats_are_refused() {
        let mut batch = prepared("p", "a", &[1, 2]);
        batch.push(batch[0].clone());
        let split = split_batch(&batch, &Existing::new()).unwrap();
        assert_eq!(split.fresh, vec![0, 1]);
        let heads = Heads::new();
        let rows = link_fresh(&batch, &split.fresh, heads, &[10, 11], 0);
        assert_eq!((rows[0].chain_seq, rows[1].chain_seq), (1, 2));
        assert_eq!(rows[0].prev_hash, GENESIS_HASH);
        assert_eq!(rows[1].prev_hash, rows[0].hash);
        let ids: Vec<(i64, bool)> = receipts(&batch, split, &rows, &[])
            .iter()
            .map(|r| (r.id.0, r.duplicate))
            .collect();
        assert_eq!(ids, vec![(10, false), (11, false), (10, true)]);

        batch[2].payload = "{\"text\":\"other\"}".into();
        let refused = split_batch(&batch, &Existing::new()).unwrap_err();
        assert!(
            refused.to_string().contains("with different content"),
            "{refused}"
        );
    }

    #[test]
    fn each_fresh_patient_once_in_batch_order() {
        let mut batch = prepared("p-2", "a", &[1]);
        batch.extend(prepared("p-1", "b", &[1, 2]));
        batch.extend(prepared("p-2", "c", &[1]));
        assert_eq!(fresh_patients(&batch, &[0, 1, 2, 3]), vec!["p-2", "p-1"]);
        assert_eq!(fresh_patients(&batch, &[1]), vec!["p-1"]);
    }
}
