//! Property tests of the plant and the driven core over random action sequences: nothing panics,
//! volume is conserved, and the core's safety invariants hold after every tick.

use proptest::prelude::*;
use pump::{MotorCommand, State};
use sim::{Action, PlantConfig, ProgramSpec, Simulation};

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        Just(Action::Start),
        Just(Action::Pause),
        Just(Action::Resume),
        Just(Action::Stop),
        Just(Action::Silence),
        Just(Action::Acknowledge { alarm: None }),
        (0.0..=1.0f64).prop_map(|severity| Action::Kink { severity }),
        Just(Action::Unkink),
        Just(Action::CloseDownstreamClamp),
        Just(Action::OpenDownstreamClamp),
        Just(Action::CloseUpstreamClamp),
        Just(Action::OpenUpstreamClamp),
        (0.0..2000.0f64).prop_map(|volume_ul| Action::AirBubble { volume_ul }),
        Just(Action::OpenDoor),
        Just(Action::CloseDoor),
        Just(Action::UnplugMains),
        Just(Action::PlugMains),
        (0.0..=100.0f64).prop_map(|percent| Action::SetBatteryPercent { percent }),
        Just(Action::MotorFault),
        Just(Action::MotorRunaway),
        Just(Action::PressureSensorStuck),
        Just(Action::DisconnectLine),
        Just(Action::ReconnectLine),
        Just(Action::Cough),
        (0u64..120_000).prop_map(|duration_ms| Action::BendArm { duration_ms }),
        (-100.0..100.0f64).prop_map(|height_cm| Action::MovePump { height_cm }),
        Just(Action::LoosenConnection),
        Just(Action::BlockCatheter),
        Just(Action::UnblockCatheter),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_actions_keep_volume_and_the_door_invariant(
        rate in 0.5f64..300.0,
        seed in any::<u64>(),
        actions in proptest::collection::vec((0u64..600, action()), 1..12),
    ) {
        let program = ProgramSpec {
            rate_ml_per_h: rate,
            vtbi_ml: 20.0,
            kvo_ml_per_h: None,
            bolus_ml: None,
            lockout_min: None,
            max_ml_per_h: None,
            reservoir_ml: None,
            drug_id: None,
        };
        let plant = PlantConfig { reservoir_ml: 30.0, ..PlantConfig::default() };
        // A 30 mL bag holds its overfill too.
        let content_ml = 30.0 * (1.0 + plant.container_overfill_fraction);
        let mut sim = Simulation::with_program(Some(&program), plant, pump::Config::default(), pump::DrugLibrary::default(), seed);
        let _ = sim.apply(Action::Start);
        let mut schedule = actions;
        schedule.sort_by_key(|(t, _)| *t);
        let mut next = 0;
        // Ten simulated minutes, an action now and then.
        while sim.now_ms() < 600_000 {
            while next < schedule.len() && schedule[next].0 * 1000 <= sim.now_ms() {
                let _ = sim.apply(schedule[next].1);
                next += 1;
            }
            sim.step();
            sim.discard_events();
            let r = sim.plant();
            // Volume: nothing appears from nowhere, the container never goes negative.
            prop_assert!(r.reservoir_ml >= -1e-9);
            prop_assert!(r.pumped_ml <= content_ml + 1e-6);
            prop_assert!(r.pumped_ml + r.reservoir_ml <= content_ml + 1e-6);
            // The core has seen this tick's frame: an open door means a stopped motor.
            if !r.door_closed {
                prop_assert_eq!(sim.motor(), MotorCommand::Stopped);
            }
            // A system fault never lets the motor run again.
            if sim.pump().state() == State::Fault {
                prop_assert_eq!(sim.motor(), MotorCommand::Stopped);
            }
            prop_assert!(r.downstream_pressure_mmhg.is_finite());
            prop_assert!(r.battery_percent >= 0.0 && r.battery_percent <= 100.0 + 1e-9);
        }
    }
}

#[test]
fn actions_with_impossible_numbers_change_nothing() {
    // The practice pump receives actions as JSON from a browser: NaN or infinite parameters must not
    // poison the physics.
    let mut plant = sim::Plant::new(PlantConfig::default(), 1);
    let before = plant.readings();
    for event in [
        sim::PlantEvent::SetBatteryPercent { percent: f64::NAN },
        sim::PlantEvent::Kink { severity: f64::NAN },
        sim::PlantEvent::AirBubble {
            volume_ul: f64::INFINITY,
        },
        sim::PlantEvent::MovePump {
            height_cm: f64::NEG_INFINITY,
        },
        sim::PlantEvent::NewContainer {
            volume_ml: f64::NAN,
        },
        sim::PlantEvent::MotorSpeedError { factor: f64::NAN },
    ] {
        plant.apply(event);
    }
    assert_eq!(plant.readings(), before);
    plant.advance(
        MotorCommand::Run {
            rate_ml_per_h: 100.0,
        },
        100,
    );
    let frame = plant.read_sensors();
    assert!(frame.battery_percent.is_finite() && frame.downstream_pressure_mmhg.is_finite());
    assert_eq!(frame.air_ul_since_last_frame, 0.0);
}
