//! Fault test: a writer killed with SIGKILL in the middle of a stream loses no event it acknowledged, and
//! every chain verifies afterwards. The test binary re-executes itself as the writer (selected by the
//! `INFUSAFE_KILL_WRITER_URL` variable), reads its acknowledgements, kills it, and checks the database.

mod common;

use record::{Body, Config, EventId, NewEvent, Source, Store, TimelineQuery};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

const WRITER_ENV: &str = "INFUSAFE_KILL_WRITER_URL";
const ROUND_ENV: &str = "INFUSAFE_KILL_WRITER_ROUND";
/// Acknowledgements the parent waits for before it kills the writer; varied per round so the kill
/// lands at different points of a batch.
const ACKS_BEFORE_KILL: [usize; 3] = [150, 401, 777];

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Ok(url) = std::env::var(WRITER_ENV) {
        let round: u64 = std::env::var(ROUND_ENV)
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(0);
        runtime.block_on(writer(url, round));
        return;
    }
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));

    if wanted("kill_sqlite_writer") {
        let dir = common::temp_dir("kill");
        let _cleanup = common::DirGuard(dir.clone());
        let url = record::default_database_url(&dir);
        runtime.block_on(kill_and_check(&url));
        println!("test kill_sqlite_writer ... ok");
    }
    if wanted("kill_postgres_writer") {
        match common::postgres_url() {
            Some(base) => {
                let url = runtime.block_on(common::postgres_schema_url(&base));
                runtime.block_on(kill_and_check(&url));
                println!("test kill_postgres_writer ... ok");
            }
            None => println!("test kill_postgres_writer ... SKIPPED (INFUSAFE_SKIP_POSTGRES=1)"),
        }
    }
}

/// Appends batches of 1 to 37 events forever, printing `ack <id>` for each event once `append` returned.
async fn writer(url: String, round: u64) {
    let store = Store::open(Config::new(url))
        .await
        .expect("writer opens store");
    let device = format!("kill-pump-{round}");
    let mut seq = 0u64;
    let mut stdout = std::io::stdout().lock();
    for batch_number in 0u64.. {
        let size = 1 + (batch_number * 7919 % 37) as usize;
        let batch: Vec<NewEvent> = (0..size)
            .map(|_| {
                seq += 1;
                NewEvent {
                    patient: common::patient(if seq.is_multiple_of(3) {
                        "kill-p2"
                    } else {
                        "kill-p1"
                    }),
                    device_id: device.clone(),
                    device_seq: seq,
                    occurred_at: jiff::Timestamp::now(),
                    local_offset_s: 0,
                    source: Source::Pump,
                    actor: device.clone(),
                    teaching: false,
                    body: Body::Telemetry {
                        state: "infusing".into(),
                        rate_ml_per_h: 100.0,
                        delivered_ml: seq as f64 / 10.0,
                        remaining_ml: 100.0,
                        battery_percent: 90.0,
                        mains_present: true,
                        downstream_pressure_mmhg: 80.0,
                    },
                }
            })
            .collect();
        let receipts = store.append(&batch).await.expect("writer append");
        for receipt in receipts {
            writeln!(stdout, "ack {}", receipt.id).expect("stdout");
        }
        stdout.flush().expect("flush");
    }
}

async fn kill_and_check(url: &str) {
    // Create the schema before the first writer so the rounds only race on appends.
    Store::open(Config::new(url))
        .await
        .expect("open")
        .close()
        .await;
    let mut acknowledged: BTreeSet<EventId> = BTreeSet::new();
    for (round, acks_before_kill) in ACKS_BEFORE_KILL.into_iter().enumerate() {
        let mut child = Command::new(std::env::current_exe().expect("current exe"))
            .env(WRITER_ENV, url)
            .env(ROUND_ENV, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn writer");
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let mut seen = 0;
        while seen < acks_before_kill {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("writer ended after {seen} acks"))
                .expect("read ack");
            acknowledged.insert(parse_ack(&line));
            seen += 1;
        }
        child.kill().expect("SIGKILL the writer"); // SIGKILL on unix
        child.wait().expect("reap writer");
        // Whatever the writer printed before dying was acknowledged too.
        for line in lines {
            let line = line.expect("read ack");
            if line.starts_with("ack ") && line.len() > 4 {
                acknowledged.insert(parse_ack(&line));
            }
        }

        let store = Store::open(Config::new(url))
            .await
            .expect("reopen after kill");
        let mut stored: BTreeSet<EventId> = BTreeSet::new();
        for patient in ["kill-p1", "kill-p2"] {
            let events = store
                .timeline(&TimelineQuery::all(common::patient(patient)))
                .await
                .expect("timeline");
            stored.extend(events.iter().map(|e| e.id));
        }
        let lost: Vec<&EventId> = acknowledged.difference(&stored).collect();
        assert!(
            lost.is_empty(),
            "round {round}: {} acknowledged events lost after SIGKILL, e.g. {:?}",
            lost.len(),
            &lost[..lost.len().min(5)]
        );
        let report = store.verify().await.expect("verify");
        assert!(report.is_intact(), "round {round}: {report:?}");
        assert_eq!(report.events_checked as usize, stored.len());
        store.close().await;
    }
}

fn parse_ack(line: &str) -> EventId {
    let id = line
        .strip_prefix("ack ")
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("unexpected writer output {line:?}"));
    EventId(id)
}
