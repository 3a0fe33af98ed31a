//! The webhook outbox (issue 15): a notification is leased to one process at a time, a lease that runs out (its
//! process died) makes it due again for any process, and a finished one never comes back. On both backends, with
//! the store's own functions and explicit times (the delivery worker of the test server is idle: no clinic has
//! a webhook, and the times used here are far in the future).

use server::store::webhooks::{Outgoing, enqueue, finish, lease_due, retry_at};

use crate::support::{Backend, TestServer};

both_backends!(
    a_notification_is_leased_to_one_process_at_a_time_and_handed_over_when_the_lease_runs_out
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
    };
    enqueue(db, &o, t).await.unwrap();
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
    // A failed attempt schedules the next one and releases the lease.
    retry_at(db, &o.id, 1, t + 40_000).await.unwrap();
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
    finish(db, &o.id, 2, t + 41_000).await.unwrap();
    assert!(
        lease_due(db, t + 1_000_000, t + 1_030_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
}
