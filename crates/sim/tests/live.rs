//! The live-pump API the server uses (practice pump, demo): actions applied now, events drained,
//! telemetry snapshots.

use pump::{Event, State};
use sim::{Action, PlantConfig, ProgramSpec, Simulation};

fn live() -> Simulation {
    let program = ProgramSpec {
        rate_ml_per_h: 30.0,
        vtbi_ml: 100.0,
        kvo_ml_per_h: None,
        bolus_ml: None,
        lockout_min: None,
        max_ml_per_h: None,
        reservoir_ml: None,
        drug_id: None,
    };
    Simulation::with_program(
        Some(&program),
        PlantConfig::default(),
        pump::Config::default(),
        pump::DrugLibrary::default(),
        9,
    )
}

#[test]
fn practice_pump_round_trip() {
    let mut sim = live();
    assert_eq!(sim.pump().state(), State::Programmed);
    sim.apply(Action::Start).expect("start accepted");
    sim.run_until(60_000);
    assert_eq!(sim.now_ms(), 60_000);
    let t = sim.telemetry();
    assert_eq!(t.state, State::Infusing);
    assert_eq!(t.rate_ml_per_h, 30.0);
    assert!((t.delivered_ml - 0.5).abs() < 0.05, "{t:?}");
    assert!(t.active_alarms.is_empty());
    let events = sim.drain_events();
    assert!(
        events.iter().any(|e| matches!(
            e.event,
            Event::StateChanged {
                to: State::Infusing,
                ..
            }
        )),
        "{events:?}"
    );
    assert!(sim.drain_events().is_empty(), "drained events are gone");

    // A fault injected now shows at the next tick; the button refused while it lasts says why.
    sim.apply(Action::OpenDoor)
        .expect("plant actions always apply");
    sim.step();
    let t = sim.telemetry();
    assert_eq!(t.state, State::StoppedByAlarm);
    assert_eq!(t.rate_ml_per_h, 0.0);
    assert_eq!(t.sounding.map(|k| k.name()), Some("door_open"));
    assert!(
        sim.apply(Action::Resume).is_err(),
        "resume with the door open must be refused"
    );
    sim.apply(Action::Silence).expect("silence");
    assert!(sim.telemetry().audio_paused);
    sim.apply(Action::CloseDoor).expect("close");
    sim.step();
    sim.apply(Action::Acknowledge { alarm: None })
        .expect("acknowledge all");
    sim.apply(Action::Resume)
        .expect("resume once the cause is gone and acknowledged");
    sim.step();
    assert_eq!(sim.telemetry().state, State::Infusing);

    // The snapshot's JSON uses the public names.
    let json = serde_json::to_value(sim.telemetry()).expect("json");
    assert_eq!(json["state"], "infusing");
    for key in [
        "rate_ml_per_h",
        "delivered_ml",
        "remaining_ml",
        "battery_percent",
        "downstream_pressure_mmhg",
        "active_alarms",
    ] {
        assert!(json.get(key).is_some(), "telemetry lacks {key}: {json}");
    }
    let record = &sim.alarm_history()[0];
    assert_eq!(record.kind.name(), "door_open");
    assert!(record.cleared_at_ms.is_some());
    assert!(sim.plant().delivered_to_patient_ml > 0.4);
}
