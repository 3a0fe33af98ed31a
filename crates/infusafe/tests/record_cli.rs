//! The record commands as a user runs them: `infusafe record checkpoint`, `infusafe record verify
//! [--checkpoint]` against a record whose newest events were removed, and `infusafe export` of a patient
//! with no record. The attacker's SQL runs through Python's sqlite3 module, behind Infusafe's back.

use record::{Body, Config, NewEvent, PatientId, Source, Store};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir(label: &str) -> TempDir {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "infusafe-cli-{label}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

/// A data directory whose record holds `count` notes for each patient.
fn record_with(dir: &Path, patients: &[(&str, u64)]) {
    let events: Vec<NewEvent> = patients
        .iter()
        .flat_map(|(patient, count)| {
            (0..*count).map(move |seq| NewEvent {
                patient: PatientId::new(*patient).unwrap(),
                device_id: format!("phone-{patient}"),
                device_seq: seq,
                occurred_at: "2026-03-01T08:00:00Z".parse().unwrap(),
                local_offset_s: 0,
                source: Source::Patient,
                actor: "patient".into(),
                teaching: false,
                body: Body::Note {
                    text: format!("note {seq}"),
                },
            })
        })
        .collect();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = Store::open(Config::new(record::default_database_url(dir)))
            .await
            .unwrap();
        store.append(&events).await.unwrap();
        store.close().await;
    });
}

fn infusafe(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_infusafe"))
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("INFUSAFE_DATABASE_URL")
        .env_remove("INFUSAFE_CHECKPOINT_KEY_FILE")
        .output()
        .expect("run infusafe")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Raw SQL on the SQLite file, as someone with access to the database would run it.
fn attacker_sql(dir: &Path, sql: &str) {
    let db = dir.join("infusafe.db");
    let output = Command::new("python3")
        .arg("-c")
        .arg("import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\nc.executescript(sys.argv[2])\nc.commit()\nc.close()")
        .arg(&db)
        .arg(sql)
        .output()
        .expect("python3 must be installed (apt-get install python3)");
    assert!(output.status.success(), "{}", text(&output.stderr));
}

#[test]
fn verify_with_a_checkpoint_names_the_patient_whose_newest_events_were_removed() {
    let tmp = temp_dir("checkpoint");
    let dir = &tmp.0;
    record_with(dir, &[("p-1", 5), ("p-2", 2)]);
    let key = dir.join("checkpoint.key");
    let checkpoint = dir.join("checkpoint.json");
    let key_arg = key.to_str().unwrap();
    let checkpoint_arg = checkpoint.to_str().unwrap();

    let written = infusafe(
        dir,
        &[
            "record",
            "checkpoint",
            "--key-file",
            key_arg,
            "--out",
            checkpoint_arg,
        ],
    );
    assert!(written.status.success(), "{}", text(&written.stderr));
    assert!(text(&written.stderr).contains("created a new checkpoint key"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is its owner's only");
    }
    let args = [
        "record",
        "verify",
        "--checkpoint",
        checkpoint_arg,
        "--key-file",
        key_arg,
    ];
    assert_eq!(infusafe(dir, &args).status.code(), Some(0));

    // Remove the two newest events of p-1 and put the trigger back, leaving no trace in the chain.
    attacker_sql(
        dir,
        "DROP TRIGGER record_events_no_delete;
         DELETE FROM record_events WHERE patient_id = 'p-1' AND chain_seq > 3;
         CREATE TRIGGER record_events_no_delete BEFORE DELETE ON record_events
         BEGIN SELECT RAISE(ABORT, 'record_events is append-only: record a correction event instead'); END;",
    );
    let plain = infusafe(dir, &["record", "verify"]);
    assert_eq!(plain.status.code(), Some(0), "{}", text(&plain.stderr));

    let checked = infusafe(dir, &args);
    let stdout = text(&checked.stdout);
    assert_eq!(
        checked.status.code(),
        Some(3),
        "{stdout}{}",
        text(&checked.stderr)
    );
    assert!(
        stdout.contains("MISSING patient p-1: events_missing (5 events at the checkpoint, 3 now)"),
        "{stdout}"
    );
    assert!(stdout.contains("positions 4 to 5"), "{stdout}");
    assert!(!stdout.contains("MISSING patient p-2"), "{stdout}");

    let json = infusafe(dir, &[&args[..], &["--json"]].concat());
    assert_eq!(json.status.code(), Some(3));
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["checkpoint"]["missing"][0]["patient"], "p-1");
    assert_eq!(report["checkpoint"]["missing"][0]["found_events"], 3);

    // Without the key the checkpoint cannot be trusted: refused as bad input.
    let keyless = infusafe(dir, &["record", "verify", "--checkpoint", checkpoint_arg]);
    assert_eq!(keyless.status.code(), Some(2));
    assert!(text(&keyless.stderr).contains("--key-file"));
}

#[test]
fn verify_reports_a_dropped_trigger_and_other_commands_refuse_the_database() {
    let tmp = temp_dir("trigger");
    let dir = &tmp.0;
    record_with(dir, &[("p-1", 2)]);
    attacker_sql(dir, "DROP TRIGGER record_events_no_update;");

    let verify = infusafe(dir, &["record", "verify"]);
    assert_eq!(verify.status.code(), Some(3), "{}", text(&verify.stderr));
    assert!(
        text(&verify.stdout).contains("MISSING the append-only trigger record_events_no_update")
    );

    let export = infusafe(dir, &["export", "--patient", "p-1", "--format", "csv"]);
    assert_eq!(export.status.code(), Some(2));
    let stderr = text(&export.stderr);
    assert!(
        stderr.contains("record_events_no_update") && stderr.contains("CREATE TRIGGER"),
        "{stderr}"
    );
}

#[test]
fn export_of_a_patient_without_a_record_is_refused() {
    let tmp = temp_dir("export");
    let dir = &tmp.0;
    record_with(dir, &[("p-1", 1)]);
    for format in ["csv", "fhir"] {
        let nope = infusafe(dir, &["export", "--patient", "nope", "--format", format]);
        assert_eq!(nope.status.code(), Some(2), "{format}");
        assert!(nope.stdout.is_empty(), "no bundle is written");
        let stderr = text(&nope.stderr);
        assert!(
            stderr.contains("no record for patient \"nope\""),
            "{stderr}"
        );
        assert!(stderr.contains("infusafe record verify"), "{stderr}");
    }
    let known = infusafe(dir, &["export", "--patient", "p-1", "--format", "fhir"]);
    assert_eq!(known.status.code(), Some(0), "{}", text(&known.stderr));
    let bundle: serde_json::Value = serde_json::from_slice(&known.stdout).unwrap();
    assert_eq!(bundle["resourceType"], "Bundle");
}
