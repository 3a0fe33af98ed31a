//! Fuzz target: arbitrary bytes → a sequence of operator commands, sensor changes, passing time,
//! stalled frames and implausible readings, fed to the pump core with every safety invariant checked
//! after every call. The decoding and the checks are `pump::harness::run_bytes`, which the crate's
//! ordinary tests also run (tests/fuzz_bytes.rs), so what the fuzzer checks is what CI checks.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = pump::harness::run_bytes(data) {
        panic!("{violation}");
    }
});
