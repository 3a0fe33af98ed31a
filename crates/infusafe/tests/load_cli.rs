//! `infusafe load` as a person runs it: against `infusafe serve` on 127.0.0.1 (a fresh SQLite data directory),
//! 20 pumps create their patients through the admin API, send heartbeats and batches, raise alarms at 2 per
//! second, and every alarm must reach the admin's dashboard stream with no failed request; a second run reuses
//! the setup file. A server address off this machine is refused before anything is sent.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

const PASSWORD: &str = "load-test-password-2026";

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
        "infusafe-load-{label}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

/// `infusafe serve` on a free loopback port; killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_infusafe"))
        .args(["serve", "--bind", "127.0.0.1:0", "--insecure-cookies"])
        .arg("--data-dir")
        .arg(dir)
        .args(["--bootstrap-admin", "admin"])
        .env("INFUSAFE_ADMIN_PASSWORD", PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server starts");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("the server said where it listens")
            .unwrap();
        if let Some(url) = line.strip_prefix("infusafe serve: listening on ") {
            break url.trim().to_string();
        }
    };
    // Keep reading so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server { child, url }
}

fn load(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_infusafe"))
        .arg("load")
        .args(args)
        .env("LOAD_TEST_PASSWORD", PASSWORD)
        .output()
        .expect("the load generator runs")
}

fn report(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {stdout}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn n(v: &Value, path: &str) -> f64 {
    v.pointer(path)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no number at {path} in {v}"))
}

#[test]
fn every_alarm_of_twenty_pumps_reaches_the_dashboard_stream() {
    let tmp = temp_dir("run");
    let server = serve(&tmp.0.join("data"));
    let setup = tmp.0.join("setup.json");
    let setup = setup.to_str().unwrap();
    let pid = server.child.id().to_string();
    let common = [
        "--server",
        &server.url,
        "--pumps",
        "20",
        "--heartbeat-every",
        "1s",
        "--batch-every",
        "2s",
        "--alarms-per-second",
        "2",
        "--admin",
        "admin",
        "--password-env",
        "LOAD_TEST_PASSWORD",
        "--setup-file",
        setup,
        "--server-pid",
        &pid,
        "--json",
    ];

    let first = report(&load(
        &[&common[..], &["--setup", "--duration", "4s"]].concat(),
    ));
    assert_eq!(n(&first, "/errors/total"), 0.0, "{first}");
    // Alarms at 0.5 s, 1.0 s, … 3.5 s of the 4 s run.
    let sent = n(&first, "/alarms/sent");
    assert!(sent >= 6.0, "{first}");
    assert_eq!(n(&first, "/alarms/seen"), sent, "{first}");
    assert_eq!(n(&first, "/alarms/missing"), 0.0, "{first}");
    assert_eq!(n(&first, "/alarm_to_stream_ms/count"), sent, "{first}");
    assert!(n(&first, "/alarm_to_stream_ms/p50") > 0.0, "{first}");
    assert!(
        n(&first, "/alarm_to_stream_ms/max") >= n(&first, "/alarm_to_stream_ms/p99"),
        "{first}"
    );
    // Each pump: about 4 heartbeats and 2 batches in 4 s, a last heartbeat, and the alarms with their clears.
    let requests = n(&first, "/requests/total");
    assert!(requests >= 20.0 * 5.0, "{first}");
    assert_eq!(n(&first, "/link_post_ms/count"), requests, "{first}");
    assert_eq!(n(&first, "/requests/alarm_batches"), sent, "{first}");
    assert!(n(&first, "/server_cpu_percent") > 0.0, "{first}");

    let saved: Value = serde_json::from_str(&std::fs::read_to_string(setup).unwrap()).unwrap();
    assert_eq!(saved["pumps"].as_array().unwrap().len(), 20);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(setup).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "the setup file holds pump tokens");

    // The same pumps again, from the setup file.
    let second = report(&load(&[&common[..], &["--duration", "2s"]].concat()));
    assert_eq!(n(&second, "/errors/total"), 0.0, "{second}");
    assert!(n(&second, "/alarms/sent") >= 3.0, "{second}");
    assert_eq!(
        n(&second, "/alarms/seen"),
        n(&second, "/alarms/sent"),
        "{second}"
    );

    // More pumps than the setup file holds is refused.
    let out = load(&[
        "--server",
        &server.url,
        "--pumps",
        "21",
        "--admin",
        "admin",
        "--password-env",
        "LOAD_TEST_PASSWORD",
        "--setup-file",
        setup,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("holds 20 pumps"), "{stderr}");
}

#[test]
fn servers_off_this_machine_and_unbounded_runs_are_refused() {
    for (args, says) in [
        (
            vec!["--server", "http://10.1.2.3:8080", "--setup"],
            "not a loopback address",
        ),
        (
            vec!["--server", "http://localhost:8080", "--setup"],
            "not a host name",
        ),
        (
            vec![
                "--server",
                "http://127.0.0.1:9",
                "--setup",
                "--pumps",
                "20001",
            ],
            "--pumps",
        ),
        (
            vec![
                "--server",
                "http://127.0.0.1:9",
                "--setup",
                "--duration",
                "2h",
            ],
            "--duration",
        ),
        (vec!["--server", "http://127.0.0.1:9"], "--setup"),
    ] {
        let out = load(
            &[
                &args[..],
                &["--admin", "admin", "--password-env", "LOAD_TEST_PASSWORD"],
            ]
            .concat(),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}
