//! Property tests of the record's invariants, on SQLite: whatever batches arrive (with re-sent events
//! mixed in), every distinct event is stored exactly once, receipts point at it, and every chain verifies.
//! The canonical JSON encoding is also checked to be a fixed point.

mod common;

use proptest::prelude::*;
use record::{Store, TimelineQuery};
use std::collections::BTreeMap;

/// (patient 0..3, device 0..3, sequence number 0..40) per event; batches of 1..12.
fn batches() -> impl Strategy<Value = Vec<Vec<(u8, u8, u8)>>> {
    prop::collection::vec(
        prop::collection::vec((0u8..3, 0u8..3, 0u8..40), 1..12),
        1..8,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn every_distinct_event_is_stored_once_and_chains_verify(batches in batches()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let db = common::sqlite().await;
            let store: &Store = &db.store;
            // A device's sequence number names one event: its patient and content follow from the key,
            // so re-sent events are identical, as a correct device's are.
            let mut ids: BTreeMap<(u8, u8), record::EventId> = BTreeMap::new();
            let mut patients_of: BTreeMap<(u8, u8), u8> = BTreeMap::new();
            for batch in &batches {
                let events: Vec<_> = batch
                    .iter()
                    .map(|&(patient, device, seq)| {
                        let patient = *patients_of.entry((device, seq)).or_insert(patient);
                        common::event(
                            &format!("p-{patient}"),
                            &format!("d-{device}"),
                            u64::from(seq),
                            common::at("2026-03-01T08:00:00Z") + jiff::SignedDuration::from_secs(i64::from(seq)),
                            common::note(&format!("{device}/{seq}")),
                        )
                    })
                    .collect();
                let receipts = store.append(&events).await.unwrap();
                for (&(_, device, seq), receipt) in batch.iter().zip(&receipts) {
                    let id = *ids.entry((device, seq)).or_insert(receipt.id);
                    assert_eq!(id, receipt.id, "a key always maps to its first id");
                }
            }
            let mut stored = 0;
            for patient in 0..3 {
                stored += store
                    .timeline(&TimelineQuery::all(common::patient(&format!("p-{patient}"))))
                    .await
                    .unwrap()
                    .len();
            }
            assert_eq!(stored, ids.len());
            let report = store.verify().await.unwrap();
            assert!(report.is_intact(), "{report:?}");
            assert_eq!(report.events_checked as usize, ids.len());
        });
    }

    #[test]
    fn canonical_json_is_a_fixed_point(value in json_value()) {
        let once = record::chain::canonical_json(&value);
        let reparsed: serde_json::Value = serde_json::from_str(&once).unwrap();
        prop_assert_eq!(&reparsed, &value);
        prop_assert_eq!(record::chain::canonical_json(&reparsed), once);
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        (-1e12f64..1e12).prop_map(serde_json::Value::from),
        ".{0,8}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(".{0,6}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}
