//! With the `serde` feature (always on for this crate's tests, through the self dev-dependency),
//! the serialized names are the public contract: they must equal `name()`.

use pump::{AlarmKind, Event, Priority, State, TimedEvent};

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("serializes")
}

#[test]
fn alarm_state_and_priority_names_match_name() {
    for kind in AlarmKind::ALL {
        assert_eq!(json(&kind), format!("\"{}\"", kind.name()));
        let back: AlarmKind = serde_json::from_str(&json(&kind)).expect("deserializes");
        assert_eq!(back, kind);
    }
    for state in State::ALL {
        assert_eq!(json(&state), format!("\"{}\"", state.name()));
    }
    for priority in [Priority::Low, Priority::Medium, Priority::High] {
        assert_eq!(json(&priority), format!("\"{}\"", priority.name()));
    }
}

#[test]
fn events_round_trip() {
    let event = TimedEvent {
        at_ms: 42,
        event: Event::AlarmRaised {
            alarm: AlarmKind::OcclusionDownstream,
            priority: Priority::High,
            detail: pump::AlarmDetail::Pressure {
                pressure_mmhg: 600.0,
                limit_mmhg: 517.0,
            },
        },
    };
    let text = json(&event);
    assert!(text.contains("\"alarm_raised\""), "{text}");
    assert!(text.contains("\"occlusion_downstream\""), "{text}");
    let back: TimedEvent = serde_json::from_str(&text).expect("deserializes");
    assert_eq!(back, event);
}
