//! Safety invariant 2 with a lying encoder: never more than VTBI plus one stroke is delivered, even
//! when the encoder stops counting (or counts short) while the mechanism keeps moving. The core
//! counts delivery as the larger of the encoder's and the motor controller's counts; before that it
//! trusted the encoder alone and ran on until the motor/encoder mismatch check tripped, about
//! 223 µL later.

use pump::harness::{Harness, SensorChange, Step};
use pump::{AlarmKind, BolusProgram, Command, Config, EndAction, ProgramRequest, State};

fn step_all(h: &mut Harness, steps: &[Step]) {
    for step in steps {
        h.step(step)
            .unwrap_or_else(|violation| panic!("invariant broken at {step:?}: {violation}"));
    }
}

/// One run: a healthy infusion until `left_ul` of the VTBI remain, then the encoder reports
/// `encoder_reading` of the real motion from there on.
struct Input {
    rate_ml_per_h: f64,
    vtbi_ml: f64,
    end_action: EndAction,
    left_ul: f64,
    encoder_reading: f64,
}

/// What must hold at the end of the run.
struct Expect {
    state: State,
}

fn check(input: Input, expect: Expect) {
    let what = format!(
        "{} mL/h, VTBI {} mL, encoder × {} with {} µL left",
        input.rate_ml_per_h, input.vtbi_ml, input.encoder_reading, input.left_ul
    );
    let stroke_ul = Config::default().stroke_volume_ul;
    let vtbi_ul = input.vtbi_ml * 1000.0;
    let mut h = Harness::new(Config::default());
    let program = ProgramRequest::continuous(input.rate_ml_per_h, input.vtbi_ml, input.end_action);
    step_all(
        &mut h,
        &[
            Step::Run { ms: 200 },
            Step::Command(Command::Program(program)),
            Step::Command(Command::Start),
        ],
    );
    // Healthy until `left_ul` remain (the leaky mismatch sums are full by then: the worst case).
    let healthy_ms = ((vtbi_ul - input.left_ul) / (input.rate_ml_per_h / 3600.0)) as u64;
    let mut ran_ms = 0;
    while ran_ms < healthy_ms {
        let ms = (healthy_ms - ran_ms).min(10 * 60_000);
        step_all(&mut h, &[Step::Run { ms }]);
        ran_ms += ms;
    }
    assert_eq!(h.pump().state(), State::Infusing, "{what}: setup");
    let record_before_ul = h.pump().delivered_ul();
    step_all(
        &mut h,
        &[Step::Sensors(SensorChange::EncoderReading {
            factor: input.encoder_reading,
        })],
    );
    // Twice the time the rest needs, plus a minute: the harness checks the VTBI bound after every
    // call into the core, so an overrun fails inside this loop.
    let rest_ms = (2.0 * input.left_ul / (input.rate_ml_per_h / 3600.0)) as u64 + 60_000;
    let mut ran_ms = 0;
    while ran_ms < rest_ms {
        step_all(&mut h, &[Step::Run { ms: 1_000 }]);
        ran_ms += 1_000;
    }
    let delivered_ul = h.plant_delivered_ul();
    let at_rate_bound_ul = vtbi_ul + stroke_ul;
    if expect.state == State::Complete {
        assert!(
            delivered_ul <= at_rate_bound_ul,
            "{what}: delivered {delivered_ul:.1} µL, bound {at_rate_bound_ul} µL"
        );
    }
    assert_eq!(h.pump().state(), expect.state, "{what}: final state");
    assert!(
        h.pump().alarm(AlarmKind::InfusionComplete).is_some(),
        "{what}: no infusion_complete"
    );
    // The record keeps the encoder's figure; the limits used the larger count.
    let record_ul = h.pump().delivered_ul() - record_before_ul;
    let reported_ul = input.left_ul * input.encoder_reading;
    assert!(
        record_ul <= reported_ul + 30.0,
        "{what}: the record shows {record_ul:.1} µL, the encoder reported about {reported_ul:.1} µL"
    );
    assert!(
        h.pump().delivered_counted_ul() >= vtbi_ul - 1e-6,
        "{what}: counted {} µL",
        h.pump().delivered_counted_ul()
    );
}

#[test]
fn a_blind_encoder_never_lets_the_pump_run_past_the_vtbi() {
    for rate_ml_per_h in [1.0, 5.0, 36.0, 500.0, 999.0] {
        for left_ul in [50.0, 120.0, 200.0] {
            for encoder_reading in [0.0, 0.5] {
                check(
                    Input {
                        rate_ml_per_h,
                        vtbi_ml: 5.0,
                        end_action: EndAction::Stop,
                        left_ul,
                        encoder_reading,
                    },
                    Expect {
                        state: State::Complete,
                    },
                );
            }
        }
    }
}

#[test]
fn a_blind_encoder_near_the_end_goes_to_kvo_on_time() {
    // With KVO the pump keeps a trickle going after the VTBI; the mismatch check later stops that
    // (a system fault), but the VTBI itself must end on time.
    check(
        Input {
            rate_ml_per_h: 36.0,
            vtbi_ml: 2.0,
            end_action: EndAction::Kvo { rate_ml_per_h: 1.0 },
            left_ul: 150.0,
            encoder_reading: 0.0,
        },
        Expect { state: State::Kvo },
    );
}

#[test]
fn the_hourly_limit_counts_what_a_blind_encoder_misses() {
    // Basal 2 mL/h against a 3 mL/h ceiling with a 0.5 mL bolus: with the encoder blind from the
    // start, only the controller's count can bring the rolling hour to the ceiling (and hold the
    // basal at KVO) before the mismatch check; either way the basal must not go on unchecked.
    let mut h = Harness::new(Config::default());
    let program = ProgramRequest {
        bolus: Some(BolusProgram {
            volume_ml: 0.5,
            lockout_min: 5.0,
            max_ml_per_h: 3.0,
        }),
        ..ProgramRequest::continuous(2.0, 100.0, EndAction::Stop)
    };
    step_all(
        &mut h,
        &[
            Step::Run { ms: 200 },
            Step::Command(Command::Program(program)),
            Step::Command(Command::Start),
            Step::Sensors(SensorChange::EncoderReading { factor: 0.5 }),
            Step::Run { ms: 60_000 },
        ],
    );
    let status = h.pump().status();
    let plant_ml = h.plant_delivered_ul() / 1000.0;
    assert!(
        status.delivered_ml_last_hour >= plant_ml - 1e-6,
        "hourly volume {} mL, really delivered {plant_ml} mL",
        status.delivered_ml_last_hour
    );
    assert!(
        (status.delivered_ml - plant_ml / 2.0).abs() < 0.01,
        "the status keeps the encoder's figure: {} mL",
        status.delivered_ml
    );
}
