//! The follower and this process's own pump events (issue 15): with several processes, the follower hears of
//! every commit, this process's own included, and takes its own events in silently (the board applied and
//! announced them when they were written). A pump's events are written first and applied after, so the pump
//! link holds the patient until its board has applied them; otherwise a follower quicker than the link took the
//! alarm in silently, the board then found it already there, and no screen on this process ever heard of it
//! (found by `scripts/bench-load two`: an alarm now and then missing on the stream of the process the pump
//! spoke to). On SQLite there is one process and no follower; the test runs the same steps.

use std::time::Duration;

use serde_json::json;
use server::domain::board::PumpEvent;
use server::domain::{Device, EventDraft, Origin};
use server::services::hub::Filter;

use crate::support::{Backend, TestServer};

both_backends!(this_process_announces_its_own_pump_alarm_even_when_its_follower_hears_of_it_first);

async fn this_process_announces_its_own_pump_alarm_even_when_its_follower_hears_of_it_first(
    backend: Backend,
) {
    let Some((app, w)) = TestServer::seeded(backend).await else {
        return;
    };
    let state = app.state();
    let mut live = state.hub.subscribe(&Filter::Patient(w.p1.clone()));
    let device = Device {
        id: w.pump1_id.clone(),
        patient_id: w.p1.clone(),
        clinic_id: w.clinic_a.clone(),
        teaching: false,
    };
    let data =
        json!({"alarm": "occlusion_downstream", "priority": "high", "detail": "follower-race"});
    // What the pump link does: hold the patient, write the pump's event, then apply it to the board.
    let applying = state.journal.applying(&w.p1).await;
    let mut draft = EventDraft::new(
        &w.p1,
        record::Kind::AlarmRaised,
        Origin::Pump,
        Some(&w.pump1_id),
        server::services::now_ms(),
        data.clone(),
    )
    .for_device(Some(&w.pump1_id));
    draft.device_seq = Some(4242);
    let appended = state.journal.append(vec![draft]).await.unwrap();
    // The follower hears of the commit at once: give it every chance to take the event in before the board.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let event = PumpEvent {
        record_id: appended[0].id,
        kind: "alarm_raised".into(),
        data,
        clock_skew_ms: 0,
    };
    server::services::alarms::apply_batch(state, &device, &[event], None)
        .await
        .unwrap();
    drop(applying);
    // Announced once, by the pump link's path; the follower, taking its own event in afterwards, adds nothing.
    let mut alarms = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while let Ok(Ok(m)) = tokio::time::timeout_at(deadline, live.recv()).await {
        if m.kind == server::domain::MessageKind::Alarm
            && m.data["detail"]["detail"] == "follower-race"
        {
            alarms += 1;
        }
    }
    assert_eq!(alarms, 1, "the alarm reached this process's screens once");
}
