//! One pump's full-resolution telemetry samples of one hour, packed losslessly into a single value
//! (`record_telemetry_blocks.data`, migration 4). A row per sample costs about 133 bytes on SQLite and 342 on
//! PostgreSQL (the text ids twice, once in the key); packed, a sample costs what changed since the one before.
//!
//! Format, version 1 (every integer an unsigned LEB128 varint):
//! - the version byte, `1`; the number of samples; the number of distinct states, then each state as its length
//!   and its UTF-8 bytes;
//! - per sample, in time order: the milliseconds since the previous sample (the first: since the block's
//!   start); a flags byte (bit 0 mains present, bit 1 teaching, bit 2 the state differs from the previous
//!   sample's, bits 3 to 7 each of the five numbers (rate, delivered, remaining, battery, pressure) differs
//!   from the previous sample's, bit for bit; the first sample sets bits 2 to 7); the state's index when bit 2
//!   is set; each number whose bit is set as its 8 IEEE-754 bytes, little-endian.
//!
//! Decoding checks every length and index and says what is wrong; it never panics on any bytes.

use crate::error::RecordError;
use crate::event::PatientId;
use crate::store::Store;
use crate::telemetry::TelemetrySample;
use jiff::Timestamp;
use sqlx::Row;

/// The span of one block: samples are packed by the hour of their time.
pub(crate) const BLOCK_MS: i64 = 3_600_000;
/// Samples in one block at most: one a second for the hour, and room for re-sent ones.
pub(crate) const BLOCK_SAMPLES_MAX: usize = 7_200;
const VERSION: u8 = 1;
const FIELDS: usize = 5;

/// The start of the block holding a sample at `at_ms`.
pub(crate) fn block_of(at_ms: i64) -> i64 {
    at_ms.div_euclid(BLOCK_MS) * BLOCK_MS
}

fn numbers(s: &TelemetrySample) -> [f64; FIELDS] {
    [
        s.rate_ml_per_h,
        s.delivered_ml,
        s.remaining_ml,
        s.battery_percent,
        s.downstream_pressure_mmhg,
    ]
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Packs one pump's full-resolution samples of the block starting at `block_ms`, sorted by time, each
/// millisecond once (the caller's duty: [`merge`] makes them so).
pub(crate) fn encode(block_ms: i64, samples: &[TelemetrySample]) -> Vec<u8> {
    let mut states: Vec<&str> = Vec::new();
    for s in samples {
        if !states.contains(&s.state.as_str()) {
            states.push(&s.state);
        }
    }
    let mut out = Vec::with_capacity(16 + samples.len() * 36);
    out.push(VERSION);
    put_varint(&mut out, samples.len() as u64);
    put_varint(&mut out, states.len() as u64);
    for state in &states {
        put_varint(&mut out, state.len() as u64);
        out.extend_from_slice(state.as_bytes());
    }
    let mut previous: Option<&TelemetrySample> = None;
    let mut at = block_ms;
    for s in samples {
        let ms = s.at.as_millisecond();
        put_varint(&mut out, u64::try_from(ms.saturating_sub(at)).unwrap_or(0));
        at = ms;
        let mut flags = u8::from(s.mains_present) | (u8::from(s.teaching) << 1);
        let state_changed = previous.is_none_or(|p| p.state != s.state);
        if state_changed {
            flags |= 1 << 2;
        }
        let now = numbers(s);
        let before = previous.map(numbers);
        for (i, value) in now.iter().enumerate() {
            if before.is_none_or(|b| b[i].to_bits() != value.to_bits()) {
                flags |= 1 << (3 + i);
            }
        }
        out.push(flags);
        if state_changed {
            let index = states.iter().position(|st| *st == s.state).unwrap_or(0);
            put_varint(&mut out, index as u64);
        }
        for (i, value) in now.iter().enumerate() {
            if flags & (1 << (3 + i)) != 0 {
                out.extend_from_slice(&value.to_bits().to_le_bytes());
            }
        }
        previous = Some(s);
    }
    out
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, String> {
        let b = *self
            .bytes
            .get(self.at)
            .ok_or_else(|| format!("ends early at byte {}", self.at))?;
        self.at += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            if shift == 63 && b > 1 {
                return Err(format!("a number past 64 bits at byte {}", self.at));
            }
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(format!(
            "a number longer than 64 bits ends at byte {}",
            self.at
        ))
    }

    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| format!("{n} bytes asked at byte {}, past the end", self.at))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }
}

/// Unpacks a block of `patient`'s pump `device_id` that starts at `block_ms`.
pub(crate) fn decode(
    patient: &PatientId,
    device_id: &str,
    block_ms: i64,
    bytes: &[u8],
) -> Result<Vec<TelemetrySample>, RecordError> {
    decode_inner(patient, device_id, block_ms, bytes).map_err(|reason| RecordError::Corrupt {
        id: 0,
        reason: format!(
            "telemetry block of pump {device_id:?} at {block_ms} ms for patient {}: {reason}; restore that row of \
             record_telemetry_blocks from a backup, or delete it (that pump's hour of telemetry is then lost; the \
             hash-chained record is not affected)",
            patient.as_str()
        ),
    })
}

fn decode_inner(
    patient: &PatientId,
    device_id: &str,
    block_ms: i64,
    bytes: &[u8],
) -> Result<Vec<TelemetrySample>, String> {
    let mut r = Reader { bytes, at: 0 };
    let version = r.byte()?;
    if version != VERSION {
        return Err(format!(
            "version {version}; this build reads version {VERSION}"
        ));
    }
    let count = usize::try_from(r.varint()?).unwrap_or(usize::MAX);
    if count > BLOCK_SAMPLES_MAX {
        return Err(format!(
            "{count} samples; a block holds at most {BLOCK_SAMPLES_MAX}"
        ));
    }
    let state_count = usize::try_from(r.varint()?).unwrap_or(usize::MAX);
    if state_count > count {
        return Err(format!("{state_count} states for {count} samples"));
    }
    let mut states = Vec::with_capacity(state_count);
    for _ in 0..state_count {
        let len = usize::try_from(r.varint()?).unwrap_or(usize::MAX);
        let text = std::str::from_utf8(r.take(len)?).map_err(|e| format!("a state: {e}"))?;
        states.push(text.to_string());
    }
    let mut samples: Vec<TelemetrySample> = Vec::with_capacity(count);
    let mut at = block_ms;
    for n in 0..count {
        let delta = i64::try_from(r.varint()?).map_err(|_| format!("sample {n}: time too far"))?;
        if n > 0 && delta == 0 {
            return Err(format!(
                "sample {n} repeats the millisecond of the one before"
            ));
        }
        at = at
            .checked_add(delta)
            .filter(|ms| *ms < block_ms.saturating_add(BLOCK_MS))
            .ok_or_else(|| format!("sample {n} lies past the block's hour"))?;
        let flags = r.byte()?;
        let state = if flags & (1 << 2) != 0 {
            let index = usize::try_from(r.varint()?).unwrap_or(usize::MAX);
            states
                .get(index)
                .cloned()
                .ok_or_else(|| format!("sample {n}: state {index} of {}", states.len()))?
        } else {
            samples
                .last()
                .map(|p| p.state.clone())
                .ok_or_else(|| format!("sample {n}: no state to repeat"))?
        };
        let mut values = match samples.last() {
            Some(p) => numbers(p),
            None if flags >> 3 == 0b1_1111 => [0.0; FIELDS],
            None => return Err("the first sample lacks a number".into()),
        };
        for (i, value) in values.iter_mut().enumerate() {
            if flags & (1 << (3 + i)) != 0 {
                let raw: [u8; 8] = r
                    .take(8)?
                    .try_into()
                    .map_err(|_| format!("sample {n}: a number"))?;
                *value = f64::from_bits(u64::from_le_bytes(raw));
                if !value.is_finite() {
                    return Err(format!("sample {n}: a number is {value}"));
                }
            }
        }
        samples.push(TelemetrySample {
            patient: patient.clone(),
            device_id: device_id.to_string(),
            at: Timestamp::from_millisecond(at).map_err(|e| format!("sample {n}: {e}"))?,
            bucket_s: 0,
            state,
            rate_ml_per_h: values[0],
            delivered_ml: values[1],
            remaining_ml: values[2],
            battery_percent: values[3],
            mains_present: flags & 1 != 0,
            downstream_pressure_mmhg: values[4],
            teaching: flags & 2 != 0,
        });
    }
    if r.at != bytes.len() {
        return Err(format!("{} bytes left over", bytes.len() - r.at));
    }
    Ok(samples)
}

/// One pump's samples from several sources, each millisecond once (the later source wins), in time order.
pub(crate) fn merge(sources: impl IntoIterator<Item = TelemetrySample>) -> Vec<TelemetrySample> {
    let mut by_ms: std::collections::BTreeMap<i64, TelemetrySample> = Default::default();
    for s in sources {
        by_ms.insert(s.at.as_millisecond(), s);
    }
    by_ms.into_values().collect()
}

/// One pump's packed hour, unpacked.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Block {
    pub block_ms: i64,
    pub device_id: String,
    pub samples: Vec<TelemetrySample>,
}

/// The SQL of the blocks' table, on a connection (in a transaction or not); the same text for both backends.
pub(crate) trait BlockSql {
    /// A patient's blocks that may hold samples in `[from_ms, to_ms)`, unpacked, oldest first.
    async fn read_blocks(
        &mut self,
        store: &Store,
        patient: &PatientId,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Block>, RecordError>;
    /// PostgreSQL: makes the transaction a read-only snapshot (REPEATABLE READ), so reads of rows and blocks
    /// see a retention run wholly before or wholly after. SQLite: a transaction's first read already fixes its
    /// snapshot.
    async fn snapshot(&mut self, store: &Store) -> Result<(), RecordError>;
    /// PostgreSQL: holds a patient's telemetry for the rest of the transaction, so two retention runs (a
    /// hand-over of the timed duties) never rewrite the same block from two stale reads. SQLite: nothing to do,
    /// `BEGIN IMMEDIATE` already serializes writers.
    async fn lock_telemetry(
        &mut self,
        store: &Store,
        patient: &PatientId,
    ) -> Result<(), RecordError>;
    /// Removes the blocks `remove` (by start and pump) of a patient, then writes `write` (non-empty ones).
    async fn replace_blocks(
        &mut self,
        store: &Store,
        patient: &PatientId,
        remove: &[(i64, String)],
        write: &[Block],
    ) -> Result<(), RecordError>;
}

macro_rules! block_sql {
    ($connection:ty) => {
        impl BlockSql for $connection {
            async fn read_blocks(
                &mut self,
                store: &Store,
                patient: &PatientId,
                from_ms: i64,
                to_ms: i64,
            ) -> Result<Vec<Block>, RecordError> {
                let rows = sqlx::query(
                    "SELECT block_ms, device_id, data, samples FROM record_telemetry_blocks \
                     WHERE patient_id = $1 AND block_ms > $2 AND block_ms < $3 ORDER BY block_ms, device_id",
                )
                .bind(patient.as_str())
                .bind(from_ms.saturating_sub(BLOCK_MS))
                .bind(to_ms)
                .fetch_all(&mut *self)
                .await
                .map_err(|e| store.err(e))?;
                rows.iter()
                    .map(|row| {
                        let block_ms: i64 = row.try_get(0).map_err(|e| store.err(e))?;
                        let device_id: String = row.try_get(1).map_err(|e| store.err(e))?;
                        let data: Vec<u8> = row.try_get(2).map_err(|e| store.err(e))?;
                        let count: i32 = row.try_get(3).map_err(|e| store.err(e))?;
                        let samples = decode(patient, &device_id, block_ms, &data)?;
                        if usize::try_from(count).ok() != Some(samples.len()) {
                            return Err(RecordError::Corrupt {
                                id: 0,
                                reason: format!(
                                    "telemetry block of pump {device_id:?} at {block_ms} ms for patient {}: its row \
                                     says {count} samples, its data holds {}; restore that row from a backup, or \
                                     delete it (that hour of telemetry is then lost)",
                                    patient.as_str(),
                                    samples.len()
                                ),
                            });
                        }
                        Ok(Block {
                            block_ms,
                            device_id,
                            samples,
                        })
                    })
                    .collect()
            }

            async fn snapshot(&mut self, store: &Store) -> Result<(), RecordError> {
                if store.backend() == crate::store::Backend::Postgres {
                    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                        .execute(&mut *self)
                        .await
                        .map_err(|e| store.err(e))?;
                }
                Ok(())
            }

            async fn lock_telemetry(
                &mut self,
                store: &Store,
                patient: &PatientId,
            ) -> Result<(), RecordError> {
                if store.backend() == crate::store::Backend::Postgres {
                    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 1))")
                        .bind(patient.as_str())
                        .execute(&mut *self)
                        .await
                        .map_err(|e| store.err(e))?;
                }
                Ok(())
            }

            async fn replace_blocks(
                &mut self,
                store: &Store,
                patient: &PatientId,
                remove: &[(i64, String)],
                write: &[Block],
            ) -> Result<(), RecordError> {
                for (block_ms, device_id) in remove {
                    sqlx::query(
                        "DELETE FROM record_telemetry_blocks \
                         WHERE patient_id = $1 AND block_ms = $2 AND device_id = $3",
                    )
                    .bind(patient.as_str())
                    .bind(*block_ms)
                    .bind(device_id.as_str())
                    .execute(&mut *self)
                    .await
                    .map_err(|e| store.err(e))?;
                }
                for block in write.iter().filter(|b| !b.samples.is_empty()) {
                    sqlx::query(
                        "INSERT INTO record_telemetry_blocks (patient_id, block_ms, device_id, samples, data) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(patient.as_str())
                    .bind(block.block_ms)
                    .bind(block.device_id.as_str())
                    .bind(i32::try_from(block.samples.len()).unwrap_or(i32::MAX))
                    .bind(encode(block.block_ms, &block.samples))
                    .execute(&mut *self)
                    .await
                    .map_err(|e| store.err(e))?;
                }
                Ok(())
            }
        }
    };
}

block_sql!(sqlx::SqliteConnection);
block_sql!(sqlx::PgConnection);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(at_ms: i64, state: &str, values: [f64; FIELDS], flags: u8) -> TelemetrySample {
        TelemetrySample {
            patient: PatientId::new("p-1").unwrap(),
            device_id: "pump-1".into(),
            at: Timestamp::from_millisecond(at_ms).unwrap(),
            bucket_s: 0,
            state: state.into(),
            rate_ml_per_h: values[0],
            delivered_ml: values[1],
            remaining_ml: values[2],
            battery_percent: values[3],
            mains_present: flags & 1 != 0,
            downstream_pressure_mmhg: values[4],
            teaching: flags & 2 != 0,
        }
    }

    #[test]
    fn an_hour_of_steady_infusion_packs_into_what_changed() {
        let block = 1_800_000_000_000 / BLOCK_MS * BLOCK_MS;
        let samples: Vec<TelemetrySample> = (0..60)
            .map(|i| {
                let d = f64::from(i) * 1.666_666_7;
                sample(
                    block + i64::from(i) * 60_000 + 397,
                    "infusing",
                    [100.0, d, 400.0 - d, 87.5, 80.0],
                    1,
                )
            })
            .collect();
        let bytes = encode(block, &samples);
        assert!(bytes.len() < 60 * 21, "{} bytes", bytes.len());
        let back = decode(&PatientId::new("p-1").unwrap(), "pump-1", block, &bytes).unwrap();
        assert_eq!(back, samples);
    }

    #[test]
    fn damaged_blocks_are_refused_with_the_reason() {
        let p = PatientId::new("p-1").unwrap();
        let good = encode(0, &[sample(5, "paused", [1.0, 2.0, 3.0, 4.0, 5.0], 0)]);
        for (bytes, says) in [
            (vec![], "ends early"),
            (vec![2], "version 2"),
            (good[..good.len() - 1].to_vec(), "past the end"),
            ([good.clone(), vec![0]].concat(), "left over"),
            (vec![1, 1, 0, 0, 0b1111_1000], "no state to repeat"),
            (vec![1, 1, 1, 1, b'x', 0, 0b0000_0100, 0], "lacks a number"),
            (vec![1, 1, 1, 1, b'x', 0, 0b0000_0100, 7], "state 7 of 1"),
            (vec![1, 0xff, 0xff, 0xff, 0x7f], "at most"),
        ] {
            let error = decode(&p, "pump-1", 0, &bytes).unwrap_err().to_string();
            assert!(error.contains(says), "{bytes:?}: {error}");
        }
        // The same millisecond twice.
        let twice = encode(
            0,
            &[
                sample(5, "paused", [1.0; FIELDS], 0),
                sample(5, "paused", [2.0; FIELDS], 0),
            ],
        );
        let error = decode(&p, "pump-1", 0, &twice).unwrap_err().to_string();
        assert!(error.contains("repeats the millisecond"), "{error}");
        // A number past 64 bits.
        let wide = [vec![1], vec![0xff; 9], vec![0x02]].concat();
        let error = decode(&p, "pump-1", 0, &wide).unwrap_err().to_string();
        assert!(error.contains("past 64 bits"), "{error}");
        // A time past the block's hour.
        let late = [
            vec![1, 1, 1, 6],
            b"paused".to_vec(),
            vec![0xff, 0xff, 0xff, 0x7f],
        ]
        .concat();
        let error = decode(&p, "pump-1", 0, &late).unwrap_err().to_string();
        assert!(error.contains("past the block"), "{error}");
    }

    proptest! {
        #[test]
        fn any_hour_of_samples_round_trips_bit_for_bit(
            raw in proptest::collection::btree_map(
                0i64..BLOCK_MS,
                (0usize..3, proptest::array::uniform5(prop_oneof![Just(0.0), Just(-0.0), -1e9f64..1e9]), 0u8..4),
                0..200,
            ),
            hour in -1000i64..1000,
        ) {
            let block = (1_800_000_000_000 / BLOCK_MS + hour) * BLOCK_MS;
            let samples: Vec<TelemetrySample> = raw
                .into_iter()
                .map(|(offset, (state, values, flags))| {
                    sample(block + offset, ["infusing", "paused", "stopped_by_alarm"][state], values, flags)
                })
                .collect();
            let bytes = encode(block, &samples);
            let back = decode(&PatientId::new("p-1").unwrap(), "pump-1", block, &bytes).unwrap();
            prop_assert_eq!(back.len(), samples.len());
            for (a, b) in back.iter().zip(&samples) {
                prop_assert_eq!(numbers(a).map(f64::to_bits), numbers(b).map(f64::to_bits));
                prop_assert_eq!((a.at, &a.state, a.mains_present, a.teaching), (b.at, &b.state, b.mains_present, b.teaching));
            }
        }

        #[test]
        fn any_damage_to_a_valid_block_is_refused_or_decoded_without_panicking(
            n in 1usize..40,
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            cut in any::<prop::sample::Index>(),
        ) {
            let samples: Vec<TelemetrySample> = (0..n)
                .map(|i| sample(i as i64 * 60_000 + 7, ["infusing", "paused"][i % 2], [i as f64; FIELDS], (i % 4) as u8))
                .collect();
            let mut bytes = encode(0, &samples);
            for (at, value) in flips {
                let i = at.index(bytes.len());
                bytes[i] ^= value | 1;
            }
            let p = PatientId::new("p-1").unwrap();
            let _ = decode(&p, "pump-1", 0, &bytes);
            let _ = decode(&p, "pump-1", 0, &bytes[..cut.index(bytes.len())]);
        }

        #[test]
        fn any_bytes_decode_or_are_refused_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&PatientId::new("p-1").unwrap(), "pump-1", 0, &bytes);
        }
    }
}
