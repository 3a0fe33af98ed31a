//! Runs the fuzz target's exact code (`pump::harness::run_bytes`: decode bytes into steps, drive the
//! core, check every invariant after every call) over random bytes, so CI exercises it on stable.

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_break_an_invariant(bytes in proptest::collection::vec(any::<u8>(), 0..160)) {
        if let Err(violation) = pump::harness::run_bytes(&bytes) {
            prop_assert!(false, "{violation}\nbytes: {bytes:?}");
        }
    }
}

#[test]
fn empty_and_tiny_inputs_run() {
    for bytes in [&[][..], &[0], &[4, 0, 0, 0, 0, 0, 0], &[255; 40]] {
        pump::harness::run_bytes(bytes).unwrap();
    }
}
