//! The webhook outbox and the timed duties across processes (issue 15): a notification is leased to one process
//! at a time, a lease that runs out (its process died) makes it due again for any process, a process whose lease
//! ran out cannot write over its successor, and a finished one never comes back; a rung recorded by a process
//! that died before queuing its webhook is queued by the sweep, once; the duty lock is held by one process and
//! probed; a follower reads only the pump contacts another process wrote last. On both backends, with the store's own functions and explicit times (the delivery worker of the test
//! server is idle: no clinic has a webhook, and the times used here are far in the future).

use serde_json::json;
use server::store::webhooks::{Outgoing, enqueue, finish, lease_due, retry_at, sweep_mark};

use crate::support::{Backend, TestServer, database_url};

both_backends!(
    a_notification_is_leased_to_one_process_at_a_time_and_handed_over_when_the_lease_runs_out,
    a_rung_recorded_by_a_process_that_died_before_queuing_its_webhook_is_queued_once,
    the_duties_are_held_by_one_process_whose_connection_is_probed,
    a_follower_reads_the_contacts_another_process_wrote_last,
);

async fn a_notification_is_leased_to_one_process_at_a_time_and_handed_over_when_the_lease_runs_out(
    backend: Backend,
) {
    let Some((app, w)) = TestServer::seeded(backend).await else {
        return;
    };
    let db = &app.running.state.db;
    // Far in the future, so the test server's own worker (polling at the real time) never finds it due.
    let t = 4_000_000_000_000i64;
    let o = Outgoing {
        id: "ntf_outbox_test".into(),
        clinic_id: w.clinic_a.clone(),
        patient_id: w.p1.clone(),
        kind: "escalation".into(),
        body: "{\"type\":\"alarm_escalated\"}".into(),
        attempts: 0,
        lease_until_ms: 0,
    };
    assert!(enqueue(db, &o, t).await.unwrap());
    assert!(
        !enqueue(db, &o, t).await.unwrap(),
        "the same notification queued twice is there once"
    );
    let first = lease_due(db, t, t + 30_000, 10).await.unwrap();
    assert_eq!(first.len(), 1, "due at once and leased");
    assert_eq!(first[0].body, o.body, "the body is sent as stored");
    // Another process looking while the lease holds finds nothing.
    assert!(
        lease_due(db, t + 1_000, t + 31_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        lease_due(db, t + 29_999, t + 59_999, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // The holder died: once the lease ran out, another process takes it over.
    let again = lease_due(db, t + 30_000, t + 60_000, 10).await.unwrap();
    assert_eq!(again.len(), 1, "handed over");
    // The first holder was only slow: its late outcome changes nothing (the new holder's lease is not its own).
    assert!(!finish(db, &first[0], 1, t + 30_500).await.unwrap());
    assert!(!retry_at(db, &first[0], 1, t + 31_000).await.unwrap());
    // A failed attempt schedules the next one and releases the lease.
    assert!(retry_at(db, &again[0], 1, t + 40_000).await.unwrap());
    assert!(
        lease_due(db, t + 39_999, t + 70_000, 10)
            .await
            .unwrap()
            .is_empty(),
        "not before the back-off"
    );
    let retried = lease_due(db, t + 40_000, t + 70_000, 10).await.unwrap();
    assert_eq!(retried[0].attempts, 1);
    // Delivered: out of the queue for good.
    assert!(finish(db, &retried[0], 2, t + 41_000).await.unwrap());
    assert!(
        lease_due(db, t + 1_000_000, t + 1_030_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_rung_recorded_by_a_process_that_died_before_queuing_its_webhook_is_queued_once(
    backend: Backend,
) {
    let Some((app, w)) = TestServer::seeded(backend).await else {
        return;
    };
    let state = app.state();
    let db = &state.db;
    let now = server::services::now_ms();
    // The first sweep of a database starts at its newest event (the test server's own duties may have run it).
    server::services::webhook::sweep(state, now).await.unwrap();
    let start = sweep_mark(db)
        .await
        .unwrap()
        .expect("the sweep set its mark");
    // What a process leaves when it records rungs and dies before queuing their webhooks: the claims alone.
    let rung = |alarm_id: &str, rung: &str, teaching: bool| {
        let mut d = server::domain::EventDraft::system(
            &w.p1,
            record::Kind::AlarmEscalated,
            now,
            json!({"alarm": "occlusion_downstream", "priority": "high", "rung": rung,
                   "unacknowledged_for_s": 300, "unacknowledged_for_ms": 300_000,
                   "raised_at_ms": now - 300_000, "alarm_id": alarm_id}),
        )
        .teaching(teaching);
        d.device_seq = Some(server::journal::claim_seq(&format!(
            "escalated/{}/{alarm_id}/{rung}",
            w.p1
        )));
        d
    };
    let nurse = state
        .journal
        .append_one(rung("pmp-sweep-1", "nurse", false))
        .await
        .unwrap();
    let patient_only = state
        .journal
        .append_one(rung("pmp-sweep-1", "patient", false))
        .await
        .unwrap();
    let practice = state
        .journal
        .append_one(rung("pmp-sweep-2", "nurse", true))
        .await
        .unwrap();
    // A pump may record an `alarm_escalated` of its own (its own screen's ladder): that pages no one.
    let from_pump = state
        .journal
        .append_one({
            let mut d = server::domain::EventDraft::new(
                &w.p1,
                record::Kind::AlarmEscalated,
                server::domain::Origin::Pump,
                Some(&w.pump1_id),
                now,
                json!({"alarm": "occlusion_downstream", "priority": "high", "rung": "on_call",
                       "unacknowledged_for_s": 1, "unacknowledged_for_ms": 1_000}),
            )
            .for_device(Some(&w.pump1_id));
            d.device_seq = Some(777);
            d
        })
        .await
        .unwrap();
    assert!(nurse > start && patient_only > start && practice > start && from_pump > start);
    let queued = |id: i64| async move {
        sqlx::query_scalar::<_, String>("SELECT body FROM srv_webhook_outbox WHERE id = $1")
            .bind(server::services::webhook::escalation_notification_id(id))
            .fetch_optional(&db.pool)
            .await
            .unwrap()
    };
    // Within the grace the recording process has to queue it, the sweep leaves it alone.
    let swept = server::services::webhook::sweep(state, now + 1_000)
        .await
        .unwrap();
    assert_eq!(swept.queued, 0);
    assert!(queued(nurse).await.is_none());
    // After it, the nurse rung is queued under the id its process would have used; the patient's own rung and
    // practice are not notified.
    let swept = server::services::webhook::sweep(state, now + 15_000)
        .await
        .unwrap();
    assert_eq!((swept.escalations, swept.queued), (1, 1), "{swept:?}");
    let body: serde_json::Value =
        serde_json::from_str(&queued(nurse).await.expect("queued")).unwrap();
    assert_eq!(body["type"], "alarm_escalated");
    assert_eq!(body["rung"], "nurse");
    assert_eq!(body["alarm"], "occlusion_downstream");
    assert_eq!(body["patient_id"], w.p1.as_str());
    assert_eq!(body["unacknowledged_for_ms"], 300_000);
    assert_eq!(
        body["notification_id"],
        server::services::webhook::escalation_notification_id(nurse)
    );
    assert!(queued(patient_only).await.is_none());
    assert!(queued(practice).await.is_none());
    assert!(
        queued(from_pump).await.is_none(),
        "a pump cannot page on-call"
    );
    // Swept again (by this process or another): still once.
    let swept = server::services::webhook::sweep(state, now + 20_000)
        .await
        .unwrap();
    assert_eq!(swept.queued, 0);
    let rows: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM srv_webhook_outbox WHERE patient_id = $1 AND kind = 'escalation'",
    )
    .bind(w.p1.clone())
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(rows, 1);
    // Once the events have settled the mark passes them, and they are not read again.
    server::services::webhook::sweep(state, now + 120_000)
        .await
        .unwrap();
    let mark = sweep_mark(db).await.unwrap().unwrap();
    assert!(mark >= practice, "mark {mark} passed event {practice}");
    let swept = server::services::webhook::sweep(state, now + 130_000)
        .await
        .unwrap();
    assert_eq!(swept.escalations, 0);
    // A rung found without its notification long after (no process ran the duties for a while) is not paged
    // any more: a page about an alarm long since handled would mislead. The log says so.
    let stale = state
        .journal
        .append_one(rung("pmp-sweep-3", "on_call", false))
        .await
        .unwrap();
    let swept = server::services::webhook::sweep(state, now + 11 * 60_000)
        .await
        .unwrap();
    assert_eq!((swept.escalations, swept.queued, swept.too_old), (1, 0, 1));
    assert!(queued(stale).await.is_none());
}

async fn the_duties_are_held_by_one_process_whose_connection_is_probed(backend: Backend) {
    use server::store::cluster::DutyLock;
    let Some(app) = TestServer::start(backend).await else {
        return;
    };
    let db = &app.state().db;
    if backend == Backend::Sqlite {
        // One process per SQLite file: it always holds its duties.
        let mut lock = DutyLock::new(db, &app.state().config.database_url);
        assert!(lock.hold().await);
        return;
    }
    // A schema of its own, so the test server's duties (its lock) are not involved.
    let dir = std::env::temp_dir();
    let url = database_url(backend, &dir).await.expect("a PostgreSQL URL");
    let mut a = DutyLock::new(db, &url);
    let mut b = DutyLock::new(db, &url);
    assert!(a.hold().await, "the first process takes the duties");
    assert!(!b.hold().await, "a second process waits");
    assert!(a.hold().await, "the holder keeps them");
    let idle = a
        .keepalive_idle_s()
        .await
        .expect("the duty connection answers");
    assert!(
        idle.trim_end_matches('s') == server::store::cluster::DUTY_KEEPALIVE_S.to_string(),
        "PostgreSQL probes the duty connection every {} s, not {idle}",
        server::store::cluster::DUTY_KEEPALIVE_S
    );
    // The holder is gone (its connection closed): the other takes over.
    drop(a);
    crate::support::wait_until(
        std::time::Duration::from_secs(10),
        "the duties move to the other process",
        async || {
            if b.hold().await {
                Ok(())
            } else {
                Err("still held".to_string())
            }
        },
    )
    .await;
}

/// The shared pump contacts: a follower reads those another process wrote last (its own are on its board),
/// a restart reads them all, and a newer contact written by another process is read again.
async fn a_follower_reads_the_contacts_another_process_wrote_last(backend: Backend) {
    use server::store::cluster::{Contact, contacts_written_since, write_contacts};
    let Some((app, w)) = TestServer::seeded(backend).await else {
        return;
    };
    let db = &app.running.state.db;
    // Far in the future, so the test server's own contacts (written at the real time) are not among them.
    let t = 4_000_000_000_000i64;
    let contact = |device: &str, at_ms: i64| Contact {
        device_id: device.into(),
        patient_id: w.p1.clone(),
        teaching: false,
        at_ms,
        telemetry: None,
    };
    write_contacts(db, &[contact("pump-x", t)], t, 101)
        .await
        .unwrap();
    write_contacts(db, &[contact("pump-y", t)], t, 102)
        .await
        .unwrap();
    let devices = |c: Vec<Contact>| c.into_iter().map(|c| c.device_id).collect::<Vec<_>>();
    let mut all = devices(contacts_written_since(db, t, None).await.unwrap());
    all.sort();
    assert_eq!(
        all,
        vec!["pump-x", "pump-y"],
        "a restart reads every contact"
    );
    assert_eq!(
        devices(contacts_written_since(db, t, Some(101)).await.unwrap()),
        vec!["pump-y"],
        "process 101 reads only what another process wrote"
    );
    // The pump then talks to process 102: 101 reads that contact now.
    write_contacts(db, &[contact("pump-x", t + 10)], t + 10, 102)
        .await
        .unwrap();
    let mut from_101 = devices(contacts_written_since(db, t, Some(101)).await.unwrap());
    from_101.sort();
    assert_eq!(from_101, vec!["pump-x", "pump-y"]);
    assert!(
        contacts_written_since(db, t, Some(102))
            .await
            .unwrap()
            .is_empty(),
        "process 102 wrote both last"
    );
}
