//! The profile end to end without I/O: what we build, we read back the same; every message we build (ORU^R01,
//! ORU^R40 for every alarm, ACKs with and without ERR) is validated by hl7apy (HL7 v2.6, strict); bad input is
//! refused with the right ACK code, HL7 error code and location.

use std::process::Command;

use pcd::profile::{self, AlarmReport, Header, Observation, Party};
use pcd::{AckCode, ErrorCode, Inactivation, Inbound, Phase, Rejection};

fn at() -> jiff::Timestamp {
    "2026-11-27T14:13:41.123Z".parse().unwrap()
}

fn observation() -> Observation {
    Observation {
        sender: Party::gateway("0012210000000001"),
        control_id: "c-1".into(),
        sent_at: at(),
        patient: None,
        state: "infusing".into(),
        rate_ml_per_h: 100.0,
        vtbi_ml: Some(250.0),
        remaining_ml: 200.5,
        delivered_ml: 49.5,
        minutes_left: Some(120.3),
        battery_percent: 80.0,
        battery_minutes_left: Some(600.0),
        downstream_pressure_mmhg: Some(35.25),
        mains_present: Some(true),
    }
}

fn alarm(name: &str, phase: Phase) -> AlarmReport {
    AlarmReport {
        sender: Party::gateway("0012210000000001"),
        control_id: format!("c-{name}-{}", phase.name()),
        sent_at: at(),
        patient: Some(("pat_1".into(), "Alex | the ^patient".into())),
        alarm_id: "a-7".into(),
        alarm: name.into(),
        phase,
        state: if phase == Phase::End {
            "inactive"
        } else {
            "active"
        }
        .into(),
        inactivation: Inactivation::Enabled,
        priority: Some(pump::Priority::High),
        text: Some("Line blocked & pressure high: check the clamp\\tubing".into()),
    }
}

/// Run hl7apy over messages; panics with its words if one is not valid HL7 v2.6.
pub fn hl7apy_validates(messages: &[String]) {
    let dir = std::env::temp_dir().join(format!("pcd-hl7apy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let paths: Vec<_> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let p = dir.join(format!("m{i}.hl7"));
            std::fs::write(&p, m).unwrap();
            p
        })
        .collect();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/validate_hl7.py");
    let out = Command::new("python3")
        .arg(script)
        .args(&paths)
        .output()
        .expect("python3 must be installed to validate HL7 messages");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains("IMPORT FAILED"),
        "the HL7 validator is missing: python3 -m pip install hl7apy==1.3.5"
    );
    assert!(
        out.status.success(),
        "hl7apy refused a message: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches(" valid").count(), messages.len(), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_observation_reads_back_as_built() {
    let o = observation();
    let text = profile::build_observation(&o);
    match pcd::parse_inbound(&text) {
        Ok(Inbound::Observation(back)) => assert_eq!(back, o),
        other => panic!("{other:?}\n{text}"),
    }
}

#[test]
fn every_alarm_in_every_phase_reads_back_as_built() {
    for code in pcd::codes::ALARMS
        .iter()
        .filter(|a| a.alarm != "pump_silent")
    {
        for phase in [Phase::Start, Phase::Continue, Phase::End] {
            let a = alarm(code.alarm, phase);
            let text = profile::build_alarm(&a);
            match pcd::parse_inbound(&text) {
                Ok(Inbound::Alarm(back)) => assert_eq!(back, a),
                other => panic!("{other:?}\n{text}"),
            }
        }
    }
}

#[test]
fn what_we_build_is_valid_hl7_v2_6_for_hl7apy() {
    let mut messages = vec![profile::build_observation(&observation())];
    let mut bare = observation();
    (bare.vtbi_ml, bare.minutes_left, bare.battery_minutes_left) = (None, None, None);
    (bare.downstream_pressure_mmhg, bare.mains_present) = (None, None);
    messages.push(profile::build_observation(&bare));
    for code in pcd::codes::ALARMS {
        messages.push(profile::build_alarm(&alarm(code.alarm, Phase::Start)));
    }
    let mut acked = alarm("air_in_line", Phase::Continue);
    acked.inactivation = Inactivation::AlertAcknowledged;
    acked.priority = None;
    acked.text = None;
    messages.push(profile::build_alarm(&acked));
    let header = Header {
        sender: Party::gateway("0012210000000001"),
        control_id: "c-1".into(),
        trigger: "R40".into(),
    };
    messages.push(profile::ack(Some(&header), "ack-1", at(), Ok(())));
    let rejection = Rejection::new(
        AckCode::AE,
        ErrorCode::TABLE_VALUE_NOT_FOUND,
        "alarm condition 1^X^MDC | unknown",
    )
    .at("OBX", 1, 5, 1);
    messages.push(profile::ack(Some(&header), "ack-2", at(), Err(&rejection)));
    messages.push(profile::ack(
        None,
        "ack-3",
        at(),
        Err(&Rejection::new(
            AckCode::AR,
            ErrorCode::SEGMENT_SEQUENCE,
            "no MSH",
        )),
    ));
    hl7apy_validates(&messages);
}

fn refused(text: &str) -> (Option<Header>, Rejection) {
    let r = pcd::parse_inbound(text).expect_err(text);
    (r.header, r.rejection)
}

#[test]
fn bad_messages_get_the_right_code_and_place() {
    let good = profile::build_alarm(&alarm("occlusion_downstream", Phase::Start));
    type Case<'a> = (String, AckCode, u16, Option<(&'a str, usize)>);
    let cases: Vec<Case> = vec![
        ("PID|1".into(), AckCode::AR, 100, None),
        (good.replace("|2.6|", "|2.5|"), AckCode::AR, 203, Some(("MSH", 12))),
        (good.replace("|P|2.6", "|X|2.6"), AckCode::AR, 202, Some(("MSH", 11))),
        (good.replace("ORU^R40^ORU_R40", "ADT^A01^ADT_A01"), AckCode::AR, 200, Some(("MSH", 9))),
        (good.replace("ORU^R40^ORU_R40", "ORU^R30^ORU_R30"), AckCode::AR, 201, Some(("MSH", 9))),
        (good.replace("|c-occlusion_downstream-start|", "||"), AckCode::AR, 101, Some(("MSH", 10))),
        (good.replace("INFUSAFE_PUMP^0012210000000001^EUI-64", "INFUSAFE_PUMP"), AckCode::AE, 101, Some(("MSH", 3))),
        (good.replace("196940^MDC_EVT_FLUID_LINE_OCCL^MDC^occlusion_downstream^occlusion_downstream^99INFUSAFE", "999999^MDC_EVT_MADE_UP^MDC"), AckCode::AE, 103, Some(("OBX", 5))),
        (good.replace("|start|", "|begin|"), AckCode::AE, 103, Some(("OBX", 5))),
        (good.replace("|PH|", "|PX|"), AckCode::AE, 103, Some(("OBX", 5))),
        (good.replace("Line blocked", "Line \\Q\\ blocked"), AckCode::AE, 102, Some(("OBX", 5))),
    ];
    for (text, ack, code, place) in cases {
        let (_, r) = refused(&text);
        assert_eq!((r.ack, r.code.0), (ack, code), "{r}\n{text}");
        assert_eq!(
            r.location.as_ref().map(|l| (l.segment.as_str(), l.field)),
            place,
            "{r}"
        );
        assert!(!r.message.is_empty());
    }
    let obs = profile::build_observation(&observation());
    let (_, r) = refused(&obs.replace("|100|265266", "|fast|265266"));
    assert_eq!((r.code.0, r.location.unwrap().field), (102, 5));
    let (_, r) = refused(&obs.replace(
        "|100|265266^MDC_DIM_MILLI_L_PER_HR^MDC^mL/h^mL/h^UCUM",
        "|100|l/min",
    ));
    assert_eq!(r.code.0, 103, "{r}");
    let (_, r) = refused(&obs.replace("|infusing|", "|dancing|"));
    assert_eq!(r.code.0, 103, "{r}");
    let without_rate: String = obs
        .split('\r')
        .filter(|s| !s.contains("158014"))
        .collect::<Vec<_>>()
        .join("\r");
    let (_, r) = refused(&without_rate);
    assert_eq!(r.code.0, 101, "{r}");
    assert!(r.message.contains("158014"), "{r}");
}

#[test]
fn a_gateway_without_our_local_codes_is_read_by_mdc_codes_alone() {
    let obs = profile::build_observation(&observation());
    let mdc_only: String = obs
        .split('\r')
        .filter(|s| !s.contains("99INFUSAFE"))
        .collect::<Vec<_>>()
        .join("\r");
    match pcd::parse_inbound(&mdc_only) {
        Ok(Inbound::Observation(o)) => {
            assert_eq!(o.state, "infusing");
            assert_eq!(o.downstream_pressure_mmhg, None);
        }
        other => panic!("{other:?}"),
    }
    let a = profile::build_alarm(&alarm("occlusion_downstream", Phase::Start))
        .replace("^occlusion_downstream^occlusion_downstream^99INFUSAFE", "");
    match pcd::parse_inbound(&a) {
        Ok(Inbound::Alarm(r)) => assert_eq!(r.alarm, "occlusion_downstream"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn acks_read_back() {
    let header = Header {
        sender: Party::gateway("x"),
        control_id: "c|9".into(),
        trigger: "R01".into(),
    };
    let ok = pcd::profile::parse_ack(&profile::ack(Some(&header), "a", at(), Ok(()))).unwrap();
    assert_eq!(
        (ok.code, ok.control_id.as_str(), ok.error),
        (AckCode::AA, "c|9", None)
    );
    let r = Rejection::new(
        AckCode::AE,
        ErrorCode::UNKNOWN_KEY,
        "device x is not registered",
    );
    let bad = pcd::profile::parse_ack(&profile::ack(Some(&header), "a", at(), Err(&r))).unwrap();
    assert_eq!(bad.code, AckCode::AE);
    assert_eq!(bad.error, Some((204, "device x is not registered".into())));
}

#[test]
fn hl7_times_read_with_and_without_offsets() {
    let t = |s| profile::parse_dtm(s);
    assert_eq!(t("20261127141341.123+0000"), Some(at()));
    assert_eq!(t("20261127151341.123+0100"), Some(at()));
    assert_eq!(
        t("202611271413").unwrap().to_string(),
        "2026-11-27T14:13:00Z"
    );
    assert_eq!(t("2026112714"), None);
    assert_eq!(t("20261327141341"), None);
    assert_eq!(t("20261127141341+01"), None);
    assert_eq!(profile::dtm(at()), "20261127141341.123+0000");
}
