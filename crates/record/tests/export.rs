//! Exports checked by independent tools: the CSV with Python's `csv` module (RFC 4180), the FHIR Bundle
//! with the `fhir.resources` package (`pip install fhir.resources`).

mod common;

use common::{at, event, one_of_each_kind, patient};
use record::export::{CSV_COLUMNS, ExportQuery};
use record::{Body, NewEvent, Source, TimelineQuery};
use serde_json::Value;
use std::process::Command;

fn python(script: &str, args: &[&str]) -> String {
    let output = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 must be installed to validate exports (apt-get install python3)");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        !stdout.contains("IMPORT FAILED"),
        "the FHIR validator is missing: pip install fhir.resources ({stdout})"
    );
    assert!(
        output.status.success(),
        "python failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// A record with one event of every kind and two infusions, on a fresh SQLite store.
async fn sample_store() -> (common::TestDb, Vec<NewEvent>) {
    let db = common::sqlite().await;
    let mut events: Vec<NewEvent> = one_of_each_kind()
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            let mut e = event(
                "p-1",
                "pump-1",
                i as u64,
                at("2026-03-01T08:00:00Z") + jiff::SignedDuration::from_mins(i as i64),
                body,
            );
            if matches!(
                e.body,
                Body::SymptomCheck { .. }
                    | Body::Feeling { .. }
                    | Body::Note { .. }
                    | Body::HowIFelt { .. }
                    | Body::QuestionAsked { .. }
            ) {
                e.source = Source::Patient;
                e.actor = "patient, \"Alex\"".into();
            }
            if matches!(e.body, Body::SiteSeen { .. }) {
                e.source = Source::Caregiver;
                e.actor = "robin".into();
            }
            if matches!(e.body, Body::QuestionAnswered { .. }) {
                e.source = Source::Nurse;
                e.actor = "nurse Kim".into();
            }
            e
        })
        .collect();
    // The correction in one_of_each_kind supersedes event 1 (the registration); keep it from hiding the
    // patient by pointing it at the note instead.
    let correction = events
        .iter()
        .position(|e| matches!(e.body, Body::Correction { .. }))
        .unwrap();
    events.remove(correction);
    events.push(event(
        "p-1",
        "pump-1",
        100,
        at("2026-03-02T08:00:00Z"),
        Body::InfusionStarted {
            drug_id: None,
            rate_ml_per_h: 50.0,
            vtbi_ml: 100.0,
        },
    ));
    // A practice run on the teaching pump: in the CSV, never in the clinical FHIR export.
    let mut practice = event(
        "p-1",
        "practice-pump",
        1,
        at("2026-03-02T09:00:00Z"),
        Body::InfusionStarted {
            drug_id: None,
            rate_ml_per_h: 10.0,
            vtbi_ml: 5.0,
        },
    );
    practice.teaching = true;
    events.push(practice);
    db.store.append(&events).await.unwrap();
    (db, events)
}

#[tokio::test]
async fn csv_export_parses_back_field_for_field() {
    let (db, _) = sample_store().await;
    let store = &db.store;
    let csv = store
        .export_csv(&ExportQuery {
            patient: patient("p-1"),
            from: None,
            to: None,
        })
        .await
        .unwrap();
    assert!(csv.ends_with("\r\n"));
    let dir = common::temp_dir("csv");
    let _cleanup = common::DirGuard(dir.clone());
    let path = dir.join("export.csv");
    std::fs::write(&path, &csv).unwrap();
    let parsed = python(
        "import csv, json, sys\nprint(json.dumps(list(csv.reader(open(sys.argv[1], newline='', encoding='utf-8'), strict=True))))",
        &[path.to_str().unwrap()],
    );
    let rows: Vec<Vec<String>> = serde_json::from_str(&parsed).unwrap();
    assert_eq!(rows[0], CSV_COLUMNS);
    let stored = store
        .timeline(&TimelineQuery::all(patient("p-1")))
        .await
        .unwrap();
    assert_eq!(rows.len(), stored.len() + 1);
    for (row, e) in rows[1..].iter().zip(&stored) {
        let field = |name: &str| &row[CSV_COLUMNS.iter().position(|c| *c == name).unwrap()];
        assert_eq!(field("id"), &e.id.to_string());
        assert_eq!(field("actor"), &e.actor);
        assert_eq!(field("kind"), &e.kind);
        assert_eq!(field("payload"), &e.payload);
        assert_eq!(field("hash"), &e.hash);
        assert_eq!(field("local_offset"), "+01:00");
        assert_eq!(field("occurred_at_local"), &e.occurred_at_local());
    }
    // The tricky actor (quote and comma) survived quoting.
    assert!(
        rows.iter()
            .any(|r| r.contains(&"patient, \"Alex\"".to_string()))
    );
}

#[tokio::test]
async fn fhir_export_validates_with_fhir_resources() {
    let (db, _) = sample_store().await;
    let store = &db.store;
    let bundle = store
        .export_fhir(&ExportQuery {
            patient: patient("p-1"),
            from: None,
            to: None,
        })
        .await
        .unwrap();
    let dir = common::temp_dir("fhir");
    let _cleanup = common::DirGuard(dir.clone());
    let path = dir.join("bundle.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&bundle).unwrap()).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/validate_fhir.py");
    let output = python(
        &format!("exec(open({script:?}).read())"),
        &[path.to_str().unwrap()],
    );
    let summary: Value =
        serde_json::from_str(output.trim()).unwrap_or_else(|e| panic!("{e}: {output}"));
    assert_eq!(
        summary["counts"],
        serde_json::json!({
            "Patient": 1,
            "Device": 1,
            // The one_of_each_kind start is stopped then completed; the second start is still running.
            "MedicationAdministration": 2,
            // One alarm, one symptom check, one site check, one feeling, how I felt, what I see at my site.
            "Observation": 6,
            // An escalation and its answer, a question and its answer.
            "Communication": 4,
        }),
        "{output}"
    );
    assert_eq!(
        summary["administrations"],
        serde_json::json!([["stopped", 12.5, true], ["in-progress", null, false]])
    );
    // Patient demographics come from the registration event.
    let patient_resource = &bundle["entry"][0]["resource"];
    assert_eq!(patient_resource["name"][0]["text"], "Alex Example");
    assert_eq!(patient_resource["birthDate"], "1970-04-01");
    // The patient's own log: how I felt follows its infusion and names the patient as its author; what the
    // caregiver saw at the site says who wrote it and carries the photo's fingerprint; the answer points at
    // the question.
    let resources: Vec<&Value> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .collect();
    let felt = resources
        .iter()
        .find(|r| r["code"]["text"] == "How the patient felt compared with before")
        .expect("how I felt is an Observation");
    assert_eq!(felt["valueCodeableConcept"]["coding"][0]["code"], "worse");
    assert_eq!(felt["component"].as_array().unwrap().len(), 2);
    assert_eq!(
        felt["performer"][0]["reference"],
        bundle["entry"][0]["fullUrl"]
    );
    assert!(
        felt["partOf"][0]["reference"]
            .as_str()
            .is_some_and(|r| r.starts_with("urn:uuid:")),
        "{felt}"
    );
    let site = resources
        .iter()
        .find(|r| r["code"]["text"] == "What the patient saw at the access site")
        .expect("what I see at my site is an Observation");
    assert_eq!(site["valueString"], "new redness at site");
    let notes = site["note"].to_string();
    assert!(notes.contains("Written by the caregiver."), "{notes}");
    assert!(notes.contains("SHA-256 9f86d081"), "{notes}");
    let question = resources
        .iter()
        .find(|r| r["category"][0]["text"] == "question for the care team")
        .expect("the question is a Communication");
    assert_eq!(
        question["payload"][0]["contentString"],
        "May I shower with the dressing on?"
    );
    let answer = resources
        .iter()
        .find(|r| r["category"][0]["text"] == "answer from the care team")
        .expect("the answer is a Communication");
    let question_url = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["resource"] == **question)
        .map(|e| e["fullUrl"].clone())
        .unwrap();
    assert_eq!(answer["inResponseTo"][0]["reference"], question_url);
}

#[tokio::test]
async fn fhir_validator_rejects_a_broken_bundle() {
    // The validation above can fail: a Bundle missing a required field is refused.
    let dir = common::temp_dir("fhir-bad");
    let _cleanup = common::DirGuard(dir.clone());
    let path = dir.join("bundle.json");
    std::fs::write(
        &path,
        r#"{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Observation","status":"final"}}]}"#,
    )
    .unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/validate_fhir.py");
    let output = Command::new("python3")
        .arg(script)
        .arg(&path)
        .output()
        .expect("python3");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("code"));
}

/// The sample record plus the branches it does not reach: an alarm never cleared, a clearing without a
/// resolution, an empty symptom check, a site check without changes, feelings with only a rating, only
/// text and neither, an answer to an escalation outside the record, a second (unregistered) pump, and the
/// patient's own log at its barest: how I felt with no symptoms after an infusion outside the range, a site with
/// no changes, an answer to a question outside the range.
async fn golden_store() -> common::TestDb {
    let (db, _) = sample_store().await;
    let t = |min: i64| at("2026-03-03T08:00:00Z") + jiff::SignedDuration::from_mins(min);
    let mut extra = vec![
        event(
            "p-1",
            "pump-2",
            1,
            t(0),
            Body::AlarmRaised {
                alarm: "air_in_line".into(),
                priority: "high".into(),
                detail: None,
            },
        ),
        event(
            "p-1",
            "pump-2",
            2,
            t(1),
            Body::AlarmRaised {
                alarm: "battery_low".into(),
                priority: "low".into(),
                detail: None,
            },
        ),
        event(
            "p-1",
            "pump-2",
            3,
            t(2),
            Body::AlarmCleared {
                alarm: "battery_low".into(),
                resolution: None,
            },
        ),
        event(
            "p-1",
            "pump-2",
            4,
            t(3),
            Body::InfusionStarted {
                drug_id: Some("vancomycin".into()),
                rate_ml_per_h: 125.5,
                vtbi_ml: 500.0,
            },
        ),
        event(
            "p-1",
            "pump-2",
            5,
            t(4),
            Body::InfusionCompleted {
                delivered_ml: 499.9,
            },
        ),
    ];
    let people = [
        Body::SymptomCheck {
            symptoms: vec![],
            triage: "self_care".into(),
            reasons: vec![],
        },
        Body::SiteCheck {
            findings: vec![],
            note: None,
        },
        Body::Feeling {
            rating: Some(5),
            text: None,
        },
        Body::Feeling {
            rating: None,
            text: Some("better".into()),
        },
        Body::Feeling {
            rating: None,
            text: None,
        },
        Body::EscalationAnswered {
            escalation_id: "esc-elsewhere".into(),
            by: "on-call".into(),
            response: "seen".into(),
        },
        Body::HowIFelt {
            compared: "same".into(),
            symptoms: vec![],
            text: None,
            infusion: Some(record::EventId(999_999)),
        },
        Body::SiteSeen {
            signs: vec![],
            text: None,
            photo: None,
        },
        Body::QuestionAnswered {
            question: record::EventId(999_998),
            text: "answered elsewhere".into(),
        },
    ];
    for (i, body) in people.into_iter().enumerate() {
        let mut e = event("p-1", "phone-1", i as u64, t(10 + i as i64), body);
        e.source = Source::Patient;
        e.local_offset_s = -5 * 3600 - 1800;
        extra.push(e);
    }
    db.store.append(&extra).await.unwrap();
    db
}

/// The FHIR Bundle of a fixed record is byte-for-byte the one in `tests/golden/fhir_bundle.json`: a
/// refactoring of the exporter must not change a single byte. After a deliberate change to the export,
/// regenerate it with `INFUSAFE_BLESS=1 cargo test -p record --test export` and review the diff.
#[tokio::test]
async fn fhir_bundle_is_byte_identical_to_the_golden_file() {
    let db = golden_store().await;
    let query = ExportQuery {
        patient: patient("p-1"),
        from: None,
        to: None,
    };
    let events = db
        .store
        .timeline(&TimelineQuery::all(patient("p-1")))
        .await
        .unwrap();
    let superseded = db.store.superseded(&patient("p-1")).await.unwrap();
    let identity: Vec<_> = events
        .iter()
        .filter(|e| matches!(e.kind.as_str(), "patient_registered" | "device_assigned"))
        .cloned()
        .collect();
    let current: Vec<_> = events
        .into_iter()
        .filter(|e| !superseded.contains(&e.id) && !e.teaching)
        .collect();
    let bundle = record::export::fhir_bundle(
        &query.patient,
        &identity,
        &current,
        at("2026-04-01T12:00:00Z"),
    );
    let text = serde_json::to_string_pretty(&bundle).unwrap() + "\n";
    let golden = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/fhir_bundle.json");
    if std::env::var("INFUSAFE_BLESS").as_deref() == Ok("1") {
        std::fs::write(golden, &text).unwrap();
    }
    let expected = std::fs::read_to_string(golden).unwrap_or_else(|e| {
        panic!("cannot read {golden} ({e}): generate it with INFUSAFE_BLESS=1 and review it")
    });
    assert!(
        text == expected,
        "the FHIR Bundle differs from {golden}; if the change is deliberate, re-bless it (INFUSAFE_BLESS=1) and review the diff"
    );
    // The store's own export (which stamps the current time) agrees with the pure function.
    let mut exported = db.store.export_fhir(&query).await.unwrap();
    exported["timestamp"] = bundle["timestamp"].clone();
    assert_eq!(exported, bundle);
}
