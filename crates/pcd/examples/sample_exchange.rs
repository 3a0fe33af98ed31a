//! Print a sample exchange as docs/api.md shows it: a gateway's ORU^R01, its ORU^R40 for a downstream occlusion,
//! the server's ACKs (AA, and an AE for an unknown device). `cargo run -p pcd --example sample_exchange`.

use pcd::profile::{self, AlarmReport, Header, Observation, Party};
use pcd::{AckCode, ErrorCode, Inactivation, Phase, Rejection};

fn show(title: &str, message: &str) {
    println!("{title}\n```\n{}```\n", message.replace('\r', "\n"));
}

fn main() {
    let at: jiff::Timestamp = "2026-11-27T14:13:41.123Z".parse().expect("a time");
    let gateway = Party::gateway("0012210000000001");
    let o = Observation {
        sender: gateway.clone(),
        control_id: "1764252821123001".into(),
        sent_at: at,
        patient: None,
        state: "infusing".into(),
        rate_ml_per_h: 100.0,
        vtbi_ml: Some(250.0),
        remaining_ml: 187.5,
        delivered_ml: 62.5,
        minutes_left: Some(112.5),
        battery_percent: 80.0,
        battery_minutes_left: Some(600.0),
        downstream_pressure_mmhg: Some(35.0),
        mains_present: Some(true),
    };
    show(
        "Gateway → Infusafe: ORU^R01 (PCD-01)",
        &profile::build_observation(&o),
    );
    let header = |control_id: &str, trigger: &str| Header {
        sender: gateway.clone(),
        control_id: control_id.into(),
        trigger: trigger.into(),
    };
    show(
        "Infusafe → gateway: ACK (AA)",
        &profile::ack(
            Some(&header("1764252821123001", "R01")),
            "ack_5f1c2a9e0b7d4c31a2e8",
            at,
            Ok(()),
        ),
    );
    let a = AlarmReport {
        sender: gateway.clone(),
        control_id: "1764252823456002".into(),
        sent_at: at,
        patient: None,
        alarm_id: "1764252823456002".into(),
        alarm: "occlusion_downstream".into(),
        phase: Phase::Start,
        state: "active".into(),
        inactivation: Inactivation::Enabled,
        priority: Some(pump::Priority::High),
        text: Some("Occlusion { pressure_mmhg: 412.0 }".into()),
    };
    show(
        "Gateway → Infusafe: ORU^R40 (PCD-04), alarm start",
        &profile::build_alarm(&a),
    );
    show(
        "Infusafe → gateway: ACK (AA)",
        &profile::ack(
            Some(&header("1764252823456002", "R40")),
            "ack_0d3b7e51c9a24f86b1c4",
            at,
            Ok(()),
        ),
    );
    let unknown = Rejection::new(
        AckCode::AE,
        ErrorCode::UNKNOWN_KEY,
        "no pump has the PCD device id \"00AA00AA00AA00AA\"; the clinic admin sets it on the pump (pcd_device_id)",
    )
    .at("MSH", 1, 3, 2);
    show(
        "Infusafe → an unregistered gateway: ACK (AE, ERR)",
        &profile::ack(
            Some(&Header {
                sender: Party::gateway("00AA00AA00AA00AA"),
                ..header("42", "R40")
            }),
            "ack_9a6e2f0c4b1d7e35c8a0",
            at,
            Err(&unknown),
        ),
    );
}
