//! The hash chain: the canonical encoding of an event and its SHA-256 link to the previous one.
//!
//! The encoding is fixed here and versioned by its first field; changing it would break every stored
//! chain, so it must never change for existing records (a new encoding gets a new version tag).

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The previous-hash of a chain's first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const ENCODING_TAG: &str = "infusafe-record-event-v1";

/// The fields of a stored event that the hash covers: all of them, except the hash itself.
#[derive(Clone, Copy)]
pub(crate) struct Link<'a> {
    pub id: i64,
    pub patient: &'a str,
    pub chain_seq: i64,
    pub device_id: &'a str,
    pub device_seq: i64,
    pub occurred_at_us: i64,
    pub local_offset_s: i32,
    pub recorded_at_us: i64,
    pub source: &'a str,
    pub actor: &'a str,
    pub teaching: bool,
    pub kind: &'a str,
    pub payload: &'a str,
    pub prev_hash: &'a str,
}

impl Link<'_> {
    /// SHA-256 over the length-prefixed fields, as lower-case hex. Length prefixes make the encoding
    /// unambiguous: no two different events share a byte string.
    pub fn hash(&self) -> String {
        let mut hasher = Sha256::new();
        let mut text = |s: &str| {
            hasher.update((s.len() as u64).to_le_bytes());
            hasher.update(s.as_bytes());
        };
        text(ENCODING_TAG);
        text(self.patient);
        text(self.device_id);
        text(self.source);
        text(self.actor);
        text(self.kind);
        text(self.payload);
        text(self.prev_hash);
        for number in [
            self.id,
            self.chain_seq,
            self.device_seq,
            self.occurred_at_us,
            i64::from(self.local_offset_s),
            self.recorded_at_us,
            i64::from(self.teaching),
        ] {
            hasher.update(number.to_le_bytes());
        }
        hex(&hasher.finalize())
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0x0f)] as char);
    }
    out
}

/// JSON with object keys sorted at every level and no insignificant white space, independent of the
/// key order serde_json keeps (which depends on a cargo feature another crate could switch on).
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expect: &str) {
        let value: Value = serde_json::from_str(input).expect("test input is JSON");
        assert_eq!(canonical_json(&value), expect, "input {input}");
    }

    #[test]
    fn canonical_json_sorts_keys_and_drops_spaces() {
        check(
            r#"{"b": 1, "a": [ {"d":true, "c":null} ]}"#,
            r#"{"a":[{"c":null,"d":true}],"b":1}"#,
        );
        check(r#"{"é": "x\"y", "e": 1.5}"#, r#"{"e":1.5,"é":"x\"y"}"#);
        check(r#"{}"#, r#"{}"#);
        check(r#"[1, -2, 3.25e3]"#, r#"[1,-2,3250.0]"#);
    }

    fn base_link() -> Link<'static> {
        Link {
            id: 1,
            patient: "p",
            chain_seq: 1,
            device_id: "d",
            device_seq: 1,
            occurred_at_us: 1,
            local_offset_s: 0,
            recorded_at_us: 1,
            source: "pump",
            actor: "a",
            teaching: false,
            kind: "note",
            payload: "{}",
            prev_hash: GENESIS_HASH,
        }
    }

    #[test]
    fn hash_changes_with_every_field() {
        let base = base_link();
        let h = base.hash();
        assert_eq!(h.len(), 64);
        let variants = [
            Link { id: 2, ..base },
            Link {
                patient: "q",
                ..base
            },
            Link {
                chain_seq: 2,
                ..base
            },
            Link {
                device_id: "e",
                ..base
            },
            Link {
                device_seq: 2,
                ..base
            },
            Link {
                occurred_at_us: 2,
                ..base
            },
            Link {
                local_offset_s: 60,
                ..base
            },
            Link {
                recorded_at_us: 2,
                ..base
            },
            Link {
                source: "nurse",
                ..base
            },
            Link { actor: "b", ..base },
            Link {
                teaching: true,
                ..base
            },
            Link {
                kind: "feeling",
                ..base
            },
            Link {
                payload: "{\"a\":1}",
                ..base
            },
            Link {
                prev_hash: "x",
                ..base
            },
            // Moving a byte between adjacent text fields must change the hash too.
            Link {
                patient: "pd",
                device_id: "",
                ..base
            },
        ];
        for variant in variants {
            assert_ne!(variant.hash(), h);
        }
    }
}
