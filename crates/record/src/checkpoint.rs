//! Signed checkpoints of the chain heads, so that deleting the newest events of a chain is detected.
//!
//! A hash chain shows a changed or removed event in its middle, but a chain cut short at its end is still
//! a valid chain. A checkpoint writes down each chain's head (patient, number of events, last event id,
//! hash) at one moment, signed with HMAC-SHA256 under a key kept away from the database. Kept outside
//! the database, it proves later that each chain still holds at least those events, unchanged:
//! [`crate::Store::verify_checkpoint`].

use crate::chain::{canonical_json, hex};
use crate::error::RecordError;
use crate::event::{EventId, PatientId, StoredEvent};
use crate::store::{ChainHead, VerifyReport};
use hmac::{Hmac, KeyInit, Mac};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::path::Path;

/// The `format` of every checkpoint this build writes and reads.
pub const CHECKPOINT_FORMAT: &str = "infusafe-record-checkpoint-v1";
/// Shortest accepted key, in bytes (HMAC-SHA256's own block of security).
pub const CHECKPOINT_KEY_BYTES_MIN: usize = 32;

/// The secret that signs checkpoints. Keep it off the database server: whoever holds it and can write
/// the database can forge a checkpoint that matches a shortened record.
#[derive(Clone)]
pub struct CheckpointKey(Vec<u8>);

impl std::fmt::Debug for CheckpointKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CheckpointKey(***)")
    }
}

fn key_error(reason: String) -> RecordError {
    RecordError::Checkpoint { reason }
}

impl CheckpointKey {
    /// A key given by the caller: at least [`CHECKPOINT_KEY_BYTES_MIN`] bytes.
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Result<CheckpointKey, RecordError> {
        let bytes = bytes.into();
        if bytes.len() < CHECKPOINT_KEY_BYTES_MIN {
            return Err(key_error(format!(
                "the checkpoint key has {} bytes; use at least {CHECKPOINT_KEY_BYTES_MIN} random bytes",
                bytes.len()
            )));
        }
        Ok(CheckpointKey(bytes))
    }

    /// A key written as hexadecimal (white space around it ignored), the form of a key file.
    pub fn from_hex(text: &str) -> Result<CheckpointKey, RecordError> {
        let text = text.trim();
        let bytes = unhex(text).ok_or_else(|| {
            key_error(
                "the checkpoint key is not hexadecimal: write it as 64 hex digits (32 bytes)"
                    .into(),
            )
        })?;
        CheckpointKey::from_bytes(bytes)
    }

    /// Reads a key file (hexadecimal, as [`CheckpointKey::create`] writes it).
    pub fn load(path: &Path) -> Result<CheckpointKey, RecordError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            key_error(format!(
                "cannot read the checkpoint key file {}: {e}; give the file `infusafe record checkpoint` created",
                path.display()
            ))
        })?;
        CheckpointKey::from_hex(&text).map_err(|e| key_error(format!("{}: {e}", path.display())))
    }

    /// Creates a new key file with 32 random bytes (from the operating system), readable by its owner
    /// only; refuses to overwrite an existing file.
    pub fn create(path: &Path) -> Result<CheckpointKey, RecordError> {
        let fail = |e: std::io::Error| {
            key_error(format!(
                "cannot create the checkpoint key file {}: {e}",
                path.display()
            ))
        };
        let mut bytes = vec![0u8; CHECKPOINT_KEY_BYTES_MIN];
        use std::io::{Read, Write};
        std::fs::File::open("/dev/urandom")
            .and_then(|mut random| random.read_exact(&mut bytes))
            .map_err(fail)?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(fail)?;
        file.write_all(format!("{}\n", hex(&bytes)).as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(fail)?;
        CheckpointKey::from_bytes(bytes)
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("HMAC takes keys of any length")
    }
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// The heads of every intact chain at one moment, signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Always [`CHECKPOINT_FORMAT`].
    pub format: String,
    pub created_at: Timestamp,
    /// One per patient, sorted by patient.
    pub heads: Vec<ChainHead>,
    /// Lower-case hex HMAC-SHA256 of [`Checkpoint::signed_text`] under the checkpoint key.
    pub signature: String,
}

impl Checkpoint {
    /// Signs the heads of the intact chains of a verify report. Refuses when a chain is broken: a
    /// checkpoint would vouch for an altered record.
    pub fn sign(
        report: &VerifyReport,
        created_at: Timestamp,
        key: &CheckpointKey,
    ) -> Result<Checkpoint, RecordError> {
        if let Some(link) = report.broken.first() {
            return Err(key_error(format!(
                "the chain of patient {} is broken at event {} ({}); a checkpoint would vouch for an altered record — run `infusafe record verify` and resolve it first",
                link.patient, link.event_id, link.problem
            )));
        }
        let mut heads = report.heads.clone();
        heads.sort_by(|a, b| a.patient.cmp(&b.patient));
        let mut checkpoint = Checkpoint {
            format: CHECKPOINT_FORMAT.to_owned(),
            created_at,
            heads,
            signature: String::new(),
        };
        checkpoint.signature = hex(&key
            .mac()
            .chain_update(checkpoint.signed_text())
            .finalize()
            .into_bytes());
        Ok(checkpoint)
    }

    /// What the signature covers: the canonical JSON (sorted keys, no spaces) of every field but the
    /// signature.
    pub fn signed_text(&self) -> String {
        canonical_json(&serde_json::json!({
            "format": self.format,
            "created_at": self.created_at,
            "heads": self.heads,
        }))
    }

    /// Checks the format and the signature (in constant time).
    pub fn check(&self, key: &CheckpointKey) -> Result<(), RecordError> {
        if self.format != CHECKPOINT_FORMAT {
            return Err(key_error(format!(
                "the checkpoint has format {:?}; this build reads {CHECKPOINT_FORMAT:?}",
                self.format
            )));
        }
        let signature = unhex(&self.signature).unwrap_or_default();
        key.mac()
            .chain_update(self.signed_text())
            .verify_slice(&signature)
            .map_err(|_| {
                key_error(
                    "the checkpoint's signature does not match: the file was changed, or it was signed with another key — use the key file that signed it".into(),
                )
            })
    }

    /// Reads a checkpoint written by [`Checkpoint::to_json`]; the signature is checked separately.
    pub fn from_json(text: &str) -> Result<Checkpoint, RecordError> {
        serde_json::from_str(text).map_err(|e| {
            key_error(format!(
                "not a record checkpoint ({e}); give a file written by `infusafe record checkpoint`"
            ))
        })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a checkpoint is plain JSON") + "\n"
    }
}

/// A checkpointed chain that no longer holds what the checkpoint saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MissingEvents {
    pub patient: PatientId,
    /// `chain_missing` (no event of the patient is left), `events_missing` (the chain is shorter than
    /// at the checkpoint) or `head_replaced` (the chain is long enough, but the checkpointed event at
    /// that position is not there: events were removed and others appended in their place).
    pub problem: &'static str,
    /// Events in the chain at the checkpoint, and the last of them.
    pub checkpoint_events: i64,
    pub checkpoint_last_id: EventId,
    /// Events in the chain now.
    pub found_events: i64,
    /// What is missing, in words.
    pub detail: String,
}

/// The result of checking the record against a checkpoint: the plain verify report, plus what the
/// checkpoint shows to be missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckpointReport {
    pub checkpoint_created_at: Timestamp,
    pub verify: VerifyReport,
    pub missing: Vec<MissingEvents>,
}

impl CheckpointReport {
    pub fn is_intact(&self) -> bool {
        self.verify.is_intact() && self.missing.is_empty()
    }
}

/// What the record now holds of one checkpointed chain.
#[derive(Debug)]
pub(crate) enum ChainNow<'a> {
    /// The chain is broken; `verify` reports it already.
    Broken,
    /// The patient has no event at all.
    Gone,
    /// The intact chain's head, and the event at the checkpointed position when the chain is at least
    /// that long.
    Intact {
        head: &'a ChainHead,
        at_position: Option<&'a StoredEvent>,
    },
}

/// Judges one checkpointed head against the chain now. Pure.
pub(crate) fn judge(then: &ChainHead, now: ChainNow<'_>) -> Option<MissingEvents> {
    let missing = |problem, found_events: i64, detail: String| MissingEvents {
        patient: then.patient.clone(),
        problem,
        checkpoint_events: then.events,
        checkpoint_last_id: then.last_id,
        found_events,
        detail,
    };
    match now {
        ChainNow::Broken => None,
        ChainNow::Gone => Some(missing(
            "chain_missing",
            0,
            format!(
                "all {} events are missing (the last was event {})",
                then.events, then.last_id
            ),
        )),
        ChainNow::Intact { head, .. } if head.events < then.events => Some(missing(
            "events_missing",
            head.events,
            format!(
                "events at positions {} to {} are missing (the last was event {}, hash {})",
                head.events + 1,
                then.events,
                then.last_id,
                then.hash
            ),
        )),
        ChainNow::Intact { head, at_position } => {
            let (found_id, found_hash) = match at_position {
                Some(event) => (event.id, event.hash.as_str()),
                None => (head.last_id, head.hash.as_str()),
            };
            (found_id != then.last_id || found_hash != then.hash).then(|| {
                missing(
                    "head_replaced",
                    head.events,
                    format!(
                        "position {} holds event {found_id} (hash {found_hash}), not the checkpointed event {} (hash {}): events were removed and others appended in their place",
                        then.events, then.last_id, then.hash
                    ),
                )
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(patient: &str, events: i64, last_id: i64, hash: &str) -> ChainHead {
        ChainHead {
            patient: PatientId::new(patient).unwrap(),
            events,
            last_id: EventId(last_id),
            hash: hash.into(),
        }
    }

    fn key(byte: u8) -> CheckpointKey {
        CheckpointKey::from_bytes(vec![byte; 32]).unwrap()
    }

    #[test]
    fn a_signed_checkpoint_checks_and_any_change_breaks_it() {
        let report = VerifyReport {
            events_checked: 8,
            heads: vec![head("p-2", 3, 8, "bb"), head("p-1", 5, 5, "aa")],
            broken: vec![],
        };
        let at: Timestamp = "2026-03-01T08:00:00Z".parse().unwrap();
        let checkpoint = Checkpoint::sign(&report, at, &key(7)).unwrap();
        assert_eq!(
            checkpoint.heads[0].patient.as_str(),
            "p-1",
            "sorted by patient"
        );
        let read = Checkpoint::from_json(&checkpoint.to_json()).unwrap();
        assert_eq!(read, checkpoint);
        read.check(&key(7)).unwrap();

        let wrong_key = read.check(&key(8)).unwrap_err().to_string();
        assert!(
            wrong_key.contains("signature does not match"),
            "{wrong_key}"
        );
        let mut shortened = read.clone();
        shortened.heads[0].events = 3;
        assert!(shortened.check(&key(7)).is_err());
        let mut garbled = read;
        garbled.signature = "zz".into();
        assert!(garbled.check(&key(7)).is_err());
    }

    #[test]
    fn keys_must_be_long_enough_and_hexadecimal() {
        assert!(CheckpointKey::from_bytes(vec![1; 31]).is_err());
        assert!(CheckpointKey::from_hex(&"ab".repeat(32)).is_ok());
        assert!(CheckpointKey::from_hex(&"xy".repeat(32)).is_err());
        assert!(CheckpointKey::from_hex("abc").is_err());
        assert_eq!(format!("{:?}", key(1)), "CheckpointKey(***)");
    }

    #[test]
    fn judging_a_head_names_what_is_missing() {
        let then = head("p-1", 5, 5, "aa");
        assert!(judge(&then, ChainNow::Broken).is_none());
        let gone = judge(&then, ChainNow::Gone).unwrap();
        assert_eq!((gone.problem, gone.found_events), ("chain_missing", 0));
        let short = head("p-1", 3, 3, "cc");
        let cut = judge(
            &then,
            ChainNow::Intact {
                head: &short,
                at_position: None,
            },
        )
        .unwrap();
        assert_eq!((cut.problem, cut.found_events), ("events_missing", 3));
        assert!(cut.detail.contains("positions 4 to 5"), "{}", cut.detail);
        let same = head("p-1", 5, 5, "aa");
        assert!(
            judge(
                &then,
                ChainNow::Intact {
                    head: &same,
                    at_position: None
                }
            )
            .is_none()
        );
        let regrown = head("p-1", 5, 9, "dd");
        let replaced = judge(
            &then,
            ChainNow::Intact {
                head: &regrown,
                at_position: None,
            },
        )
        .unwrap();
        assert_eq!(replaced.problem, "head_replaced");
    }
}
