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
                Body::SymptomCheck { .. } | Body::Feeling { .. } | Body::Note { .. }
            ) {
                e.source = Source::Patient;
                e.actor = "patient, \"Alex\"".into();
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
            // One alarm, one symptom check, one site check, one feeling.
            "Observation": 4,
            "Communication": 2,
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
