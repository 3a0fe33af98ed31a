//! Property tests (the MLLP framing fuzzed): frames split anywhere reassemble exactly; random bytes never panic,
//! never make the deframer hold more than its bound, and every frame it yields was bounded; random and mutated
//! messages never panic the parser, and whatever is refused is refused with an ACK that reads back.

use pcd::mllp::{Deframer, END, START, frame};
use pcd::profile::{self, Party};
use proptest::prelude::*;

fn payload() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        any::<u8>().prop_filter("no frame bytes", |b| *b != START && *b != END),
        0..300,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn frames_split_anywhere_reassemble(payloads in proptest::collection::vec(payload(), 1..6), cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..10)) {
        let stream: Vec<u8> = payloads.iter().flat_map(|p| frame(p)).collect();
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        points.sort();
        let mut d = Deframer::new(1000);
        let mut got = Vec::new();
        let mut last = 0;
        for p in points.into_iter().chain([stream.len()]) {
            got.extend(d.push(&stream[last..p]).unwrap());
            last = p;
        }
        prop_assert_eq!(got, payloads);
        prop_assert!(!d.is_mid_frame());
    }

    #[test]
    fn random_bytes_never_panic_and_stay_bounded(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..10), max in 1usize..100) {
        let mut d = Deframer::new(max);
        for c in chunks {
            match d.push(&c) {
                Ok(frames) => for f in frames { prop_assert!(f.len() <= max) },
                Err(_) => break,
            }
        }
    }

    #[test]
    fn random_text_never_panics_the_parser(text in "\\PC{0,400}") {
        let _ = pcd::parse_inbound(&text);
        let _ = pcd::profile::parse_ack(&text);
    }

    #[test]
    fn mutated_messages_never_panic_and_refusals_answer(seed in any::<u64>(), edits in proptest::collection::vec((any::<prop::sample::Index>(), prop::sample::select(vec!['|', '^', '~', '\\', '&', '\r', 'X', '0', '\u{e9}'])), 1..8)) {
        let a = profile::AlarmReport {
            sender: Party::gateway("0012210000000001"),
            control_id: format!("c{seed}"),
            sent_at: jiff::Timestamp::from_second(1_800_000_000).unwrap(),
            patient: None,
            alarm_id: "a1".into(),
            alarm: "air_in_line".into(),
            phase: pcd::Phase::Start,
            state: "active".into(),
            inactivation: pcd::Inactivation::Enabled,
            priority: Some(pump::Priority::High),
            text: None,
        };
        let mut chars: Vec<char> = profile::build_alarm(&a).chars().collect();
        for (i, c) in edits {
            let at = i.index(chars.len());
            chars[at] = c;
        }
        let text: String = chars.into_iter().collect();
        if let Err(r) = pcd::parse_inbound(&text) {
            let ack = profile::ack(r.header.as_ref(), "ack", jiff::Timestamp::UNIX_EPOCH, Err(&r.rejection));
            let reply = profile::parse_ack(&ack).unwrap();
            prop_assert_eq!(reply.code, r.rejection.ack);
        }
    }
}
