//! Every typed event body and its `record::Kind` agree: the kind a body reports, the name serde stores,
//! and the parsed-back body are the same for each of the known kinds.

mod common;

use record::{Body, Kind};

#[test]
fn every_body_variant_round_trips_through_its_kind() {
    let bodies = common::one_of_each_kind();
    let mut kinds: Vec<Kind> = bodies
        .iter()
        .map(|b| b.typed_kind().expect("a typed body has a kind"))
        .collect();
    for (body, kind) in bodies.iter().zip(&kinds) {
        let (stored_name, payload) = body.to_parts().unwrap();
        assert_eq!(stored_name, kind.name(), "serde names {body:?} differently");
        assert_eq!(body.kind(), kind.name());
        assert_eq!(body.kind_name(), kind.name());
        assert_eq!(Kind::from_name(&stored_name), Some(*kind));
        assert_eq!(&Body::from_parts(kind.name(), payload), body);
    }
    kinds.sort();
    assert_eq!(kinds, Kind::ALL, "one_of_each_kind covers each Kind once");
}

#[test]
fn known_kinds_and_is_known_kind_follow_kind() {
    assert_eq!(
        record::KNOWN_KINDS.to_vec(),
        Kind::ALL.map(Kind::name).to_vec()
    );
    for kind in Kind::ALL {
        assert!(record::event::is_known_kind(kind.name()));
    }
    assert!(!record::event::is_known_kind("pump_rebooted"));
    let unknown = Body::from_parts("pump_rebooted", serde_json::json!({ "after_s": 3 }));
    assert_eq!(unknown.typed_kind(), None);
    assert_eq!(unknown.kind(), "pump_rebooted");
}
