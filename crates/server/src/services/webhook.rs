//! Outgoing notifications to each clinic's integration (SMS, paging): a JSON body signed with HMAC-SHA256 and
//! the clinic's secret, delivered with retries and exponential back-off. A notification is first stored in the
//! outbox (`srv_webhook_outbox`); a delivery worker in every process leases due ones (one process at a time per
//! notification), so when a process dies mid-retry another one carries on once the lease runs out. Every attempt
//! is stored in `srv_webhook_attempts`, and the outcome is an `escalation_sent` event in the record.
//!
//! Receivers verify `X-Infusafe-Signature: sha256=<hex of HMAC-SHA256(secret, raw body)>` and de-duplicate on
//! `X-Infusafe-Notification` (the same id on every retry, by any process: a process that dies between a
//! delivery and writing it down leaves it to be sent again).

use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use link::HttpClient;
use record::Kind;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::config::ServerConfig;
use crate::domain::EventDraft;
use crate::ids::new_id;
use crate::journal::Journal;
use crate::services::now_ms;
use crate::store::Db;
use crate::store::webhooks::{Attempt, Outgoing};

/// Header with the body's signature.
pub const SIGNATURE_HEADER: &str = "x-infusafe-signature";
/// Header with the notification id (stable across retries).
pub const NOTIFICATION_HEADER: &str = "x-infusafe-notification";

/// Something to tell a clinic's integration.
#[derive(Debug, Clone)]
pub struct Notification {
    /// What is notified, when it has a name (an escalation: [`escalation_notification_id`]); queuing the same id
    /// twice sends it once. `None` draws a fresh id.
    pub id: Option<String>,
    pub clinic_id: String,
    pub patient_id: String,
    pub kind: String,
    pub body: Value,
}

impl Notification {
    /// The outbox row: the body as it is signed and sent, with its id and sending time in it.
    fn into_outgoing(self) -> Outgoing {
        let id = self.id.unwrap_or_else(|| new_id("ntf"));
        let mut body = self.body;
        if let Some(obj) = body.as_object_mut() {
            obj.insert("notification_id".into(), json!(id));
            obj.insert("sent_at".into(), json!(jiff::Timestamp::now().to_string()));
        }
        Outgoing {
            id,
            clinic_id: self.clinic_id,
            patient_id: self.patient_id,
            kind: self.kind,
            body: body.to_string(),
            attempts: 0,
            lease_until_ms: 0,
        }
    }
}

/// How often each process looks for due notifications (and at once when it queued one itself).
pub const OUTBOX_POLL_EVERY: std::time::Duration = std::time::Duration::from_millis(500);
/// Notifications one process leases at a time.
const LEASE_BATCH: i64 = 32;
/// A lease outlasts one attempt by this much; when a process dies, its notifications are due again after it.
const LEASE_MARGIN_MS: i64 = 20_000;

/// Handle to the delivery worker.
#[derive(Debug, Clone)]
pub struct Webhooks {
    db: Db,
    wake: Arc<tokio::sync::Notify>,
}

impl Webhooks {
    /// Start this process's delivery worker.
    pub fn start(db: Db, journal: Journal, config: ServerConfig) -> Webhooks {
        let wake = Arc::new(tokio::sync::Notify::new());
        let worker = (db.clone(), wake.clone());
        tokio::spawn(async move {
            let (db, wake) = worker;
            let config = Arc::new(config);
            loop {
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(OUTBOX_POLL_EVERY) => {}
                }
                let now = now_ms();
                let lease = i64::try_from(config.webhook_timeout.as_millis())
                    .unwrap_or(i64::MAX / 4)
                    .saturating_add(LEASE_MARGIN_MS);
                let due = match crate::store::webhooks::lease_due(
                    &db,
                    now,
                    now.saturating_add(lease),
                    LEASE_BATCH,
                )
                .await
                {
                    Ok(d) => d,
                    Err(e) => {
                        eprintln!("infusafe server: cannot read the webhook outbox: {e}");
                        continue;
                    }
                };
                for o in due {
                    // Each on its own task so a dead receiver never delays the others.
                    let (db, journal, config) = (db.clone(), journal.clone(), config.clone());
                    tokio::spawn(async move { attempt(&db, &journal, &config, o).await });
                }
            }
        });
        Webhooks { db, wake }
    }

    /// Look at the outbox now (something was queued behind this process's back).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Queue a notification (durably: it is delivered even if this process dies before it is sent).
    pub async fn notify(&self, n: Notification) {
        let outgoing = n.into_outgoing();
        match crate::store::webhooks::enqueue(&self.db, &outgoing, now_ms()).await {
            Ok(true) => self.wake.notify_one(),
            Ok(false) => {}
            Err(e) => eprintln!(
                "infusafe server: could not queue a webhook notification ({e}); the escalation is in the record and on the dashboards"
            ),
        }
    }
}

/// The notification id of the escalation recorded as record event `event_id`: the process that recorded the
/// rung and the sweep name it alike, so it is queued once.
pub fn escalation_notification_id(event_id: i64) -> String {
    format!("ntf-esc-{event_id}")
}

/// The body of an escalation's notification (before its id and sending time are added).
pub fn escalation_body(
    patient_id: &str,
    alarm: &Value,
    priority: &Value,
    rung: crate::domain::escalation::Rung,
    unacknowledged_for_ms: i64,
    contact: Value,
) -> Value {
    json!({
        "type": "alarm_escalated", "patient_id": patient_id, "alarm": alarm, "priority": priority,
        "rung": rung.name(), "unacknowledged_for_ms": unacknowledged_for_ms, "contact": contact,
    })
}

/// Escalations recorded at most this long ago may still be committing with a lower event id than ones already
/// seen (ids are drawn before commit): the sweep's mark stays behind them.
pub const SWEEP_SETTLE_MS: i64 = 60_000;
/// The recording process queues its escalation within milliseconds; the sweep leaves it this long to do so.
pub const SWEEP_GRACE_MS: i64 = 10_000;
/// Escalation events the sweep reads in one pass.
const SWEEP_BATCH: u32 = 500;

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// The server's own rungs read (beyond the patient's screen, not practice).
    pub escalations: usize,
    /// Of them, notifications that were not queued yet (their process died between recording the rung and
    /// queuing it) and are queued now.
    pub queued: usize,
    /// Of them, rungs found older than `SWEEP_MAX_AGE_MS` without a notification: said in the log, not sent.
    pub too_old: usize,
}

/// A rung found without its notification this long after it was recorded is not paged any more (after a long
/// time with no process running the duties, a page about an alarm long since handled would mislead): the sweep
/// says so in the log instead.
pub const SWEEP_MAX_AGE_MS: i64 = 10 * 60_000;

/// The safety net under "each escalation is sent once": every rung beyond the patient's own screen that the server
/// recorded has its notification in the outbox. The process that wins a rung queues it at once; a process that
/// dies between recording the rung and queuing it leaves it to this sweep, run by the duty holder. It reads the
/// `alarm_escalated` events after its durable mark, keeps the server's own claims (a pump may record an
/// `alarm_escalated` of its own, which never pages anyone), queues each not queued yet under the id the recording
/// process would have used, and moves the mark up to the events settled for `SWEEP_SETTLE_MS` (never past a rung
/// it left to its recording process). The first sweep of a database starts at its newest event.
pub async fn sweep(
    state: &crate::services::AppState,
    now_ms: i64,
) -> Result<Swept, crate::error::AppError> {
    use crate::domain::escalation::Rung;
    let db = &state.db;
    let store = state.journal.store();
    let recorded_before_us = now_ms.saturating_sub(SWEEP_SETTLE_MS).saturating_mul(1000);
    let Some(mark) = crate::store::webhooks::sweep_mark(db).await? else {
        let top = store
            .newest_event_id()
            .await
            .map_err(crate::journal::JournalError::Record)?;
        crate::store::webhooks::set_sweep_mark(db, top).await?;
        return Ok(Swept::default());
    };
    let mut swept = Swept::default();
    let events = store
        .kind_after_id(record::Kind::AlarmEscalated, mark, SWEEP_BATCH)
        .await
        .map_err(crate::journal::JournalError::Record)?;
    let settled = store
        .settled_id(mark, recorded_before_us)
        .await
        .map_err(crate::journal::JournalError::Record)?;
    let full = events.len() == SWEEP_BATCH as usize;
    // The mark may not pass a rung left to its recording process (its grace not over).
    let mut first_waiting: Option<i64> = None;
    let mut candidates = Vec::new();
    for e in &events {
        let server_claim = e.source == record::Source::System
            && u64::try_from(e.device_seq).is_ok_and(|s| s >= record::CLAIM_SEQ_BASE);
        if !server_claim || e.teaching {
            continue;
        }
        let payload: Value = serde_json::from_str(&e.payload).unwrap_or(Value::Null);
        let Some(rung) = payload["rung"].as_str().and_then(Rung::from_name) else {
            continue;
        };
        if rung == Rung::Patient {
            continue;
        }
        let recorded_ms = e.recorded_at.as_millisecond();
        if recorded_ms > now_ms - SWEEP_GRACE_MS {
            first_waiting.get_or_insert(e.id.0);
            continue;
        }
        swept.escalations += 1;
        candidates.push((e, payload, rung, recorded_ms));
    }
    let ids: Vec<String> = candidates
        .iter()
        .map(|(e, ..)| escalation_notification_id(e.id.0))
        .collect();
    let queued_already = crate::store::webhooks::queued_among(db, &ids).await?;
    for ((e, payload, rung, recorded_ms), id) in candidates.into_iter().zip(ids) {
        if queued_already.contains(&id) {
            continue;
        }
        let patient_id = e.patient.as_str();
        if now_ms - recorded_ms > SWEEP_MAX_AGE_MS {
            swept.too_old += 1;
            eprintln!(
                "infusafe server: the {} rung of patient {patient_id}'s alarm (event {}) was recorded without a \
                 webhook notification {} s ago, too long to page now; it is in the record and on the dashboards",
                rung.name(),
                e.id.0,
                (now_ms - recorded_ms) / 1000
            );
            continue;
        }
        let Some((clinic_id, _)) = crate::store::directory::patient(db, patient_id).await? else {
            continue;
        };
        let contact = crate::services::plans::contact_for(state, patient_id, rung);
        let outgoing = Notification {
            id: Some(id),
            clinic_id,
            patient_id: patient_id.to_string(),
            kind: "escalation".into(),
            body: escalation_body(
                patient_id,
                &payload["alarm"],
                &payload["priority"],
                rung,
                payload["unacknowledged_for_ms"].as_i64().unwrap_or(0),
                contact,
            ),
        }
        .into_outgoing();
        if crate::store::webhooks::enqueue(db, &outgoing, now_ms).await? {
            swept.queued += 1;
            eprintln!(
                "infusafe server: the {} rung of patient {patient_id}'s alarm (event {}) was recorded but its \
                 webhook was never queued (its process stopped in between): queued now",
                rung.name(),
                e.id.0
            );
        }
    }
    let mut mark_to = if full {
        events
            .last()
            .map_or(mark, |e| e.id.0)
            .min(settled.unwrap_or(mark).max(mark))
    } else {
        settled.unwrap_or(mark)
    };
    if let Some(waiting) = first_waiting {
        mark_to = mark_to.min(waiting - 1);
    }
    if mark_to > mark {
        crate::store::webhooks::set_sweep_mark(db, mark_to).await?;
    }
    if swept.queued > 0 {
        state.webhooks.wake();
    }
    Ok(swept)
}

/// `sha256=<hex>` over the exact body bytes.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Check a signature header against a body (for receivers written in Rust, and for our tests).
pub fn verify(secret: &str, body: &[u8], header: &str) -> bool {
    let expected = sign(secret, body);
    expected.len() == header.len()
        && expected
            .bytes()
            .zip(header.bytes())
            .fold(0u8, |a, (x, y)| a | (x ^ y))
            == 0
}

/// One attempt at a leased notification: delivered or given up, it leaves the queue and its outcome goes to
/// the record; otherwise it is due again after the back-off.
async fn attempt(db: &Db, journal: &Journal, config: &ServerConfig, o: Outgoing) {
    let (url, secret) = match crate::store::webhooks::target(db, &o.clinic_id).await {
        Ok(Some(target)) => target,
        Ok(None) => {
            let _ = crate::store::webhooks::finish(db, &o, o.attempts, now_ms()).await;
            return;
        }
        Err(e) => {
            eprintln!("infusafe server: webhook lookup failed (tried again later): {e}");
            let _ = crate::store::webhooks::retry_at(db, &o, o.attempts, now_ms() + 1_000).await;
            return;
        }
    };
    let Some(url) = url else {
        finish(
            db,
            journal,
            &o,
            "care team screens (no webhook configured)".into(),
            json!({"delivered": false}),
        )
        .await;
        return;
    };
    let attempt_no = o.attempts + 1;
    let delivery = Delivery {
        url: url.clone(),
        notification_id: o.id.clone(),
        signature: sign(&secret, o.body.as_bytes()),
        body: o.body.clone().into_bytes(),
    };
    let (status, error) = delivery.send(&HttpClient::new(), config).await;
    let delivered = error.is_none();
    let record = Attempt {
        id: new_id("wha"),
        clinic_id: o.clinic_id.clone(),
        notification_id: o.id.clone(),
        attempt: attempt_no,
        at_ms: now_ms(),
        status_code: status,
        error,
        delivered,
    };
    if let Err(e) = crate::store::webhooks::insert_attempt(db, &record).await {
        eprintln!("infusafe server: could not store a webhook attempt: {e}");
    }
    let last = attempt_no >= i64::from(config.webhook_attempts_max);
    if delivered || last {
        let done = Outgoing {
            attempts: attempt_no,
            ..o
        };
        finish(
            db,
            journal,
            &done,
            format!("webhook {url}"),
            json!({"delivered": delivered, "attempts": attempt_no}),
        )
        .await;
        return;
    }
    // Back-off: doubling from the first, at most 5 minutes.
    let first = i64::try_from(config.webhook_backoff_first.as_millis()).unwrap_or(300_000);
    let backoff = first
        .saturating_mul(1i64 << (attempt_no - 1).clamp(0, 20))
        .min(300_000);
    match crate::store::webhooks::retry_at(db, &o, attempt_no, now_ms() + backoff).await {
        Ok(true) => {}
        Ok(false) => eprintln!(
            "infusafe server: webhook notification {} was taken over by another process while this one tried it",
            o.id
        ),
        Err(e) => eprintln!("infusafe server: could not schedule a webhook retry: {e}"),
    }
}

/// Out of the queue, with the outcome in the record (once per notification: if this process's lease ran out
/// and another took the notification over, the other one writes the outcome).
async fn finish(db: &Db, journal: &Journal, o: &Outgoing, to: String, outcome: Value) {
    match crate::store::webhooks::finish(db, o, o.attempts, now_ms()).await {
        Ok(true) => {}
        Ok(false) => {
            eprintln!(
                "infusafe server: webhook notification {} was taken over by another process while this one tried it",
                o.id
            );
            return;
        }
        Err(e) => eprintln!("infusafe server: could not close a webhook notification: {e}"),
    }
    let body: Value = serde_json::from_str(&o.body).unwrap_or(Value::Null);
    let mut payload = json!({"escalation_id": o.id, "to": to, "priority": "urgent", "reason": o.kind, "body": body});
    if let (Some(p), Some(extra)) = (payload.as_object_mut(), outcome.as_object()) {
        p.extend(extra.clone());
    }
    // A claim on the notification: recorded once even if two processes both believed they finished it.
    let mut draft = EventDraft::system(&o.patient_id, Kind::EscalationSent, now_ms(), payload);
    draft.device_seq = Some(crate::journal::claim_seq(&format!("sent/{}", o.id)));
    let _ = journal.append_one(draft).await;
}

/// One notification's signed request.
struct Delivery {
    url: String,
    notification_id: String,
    body: Vec<u8>,
    signature: String,
}

impl Delivery {
    /// One attempt: the status (if the receiver answered) and the error (if it was not a 2xx).
    async fn send(
        &self,
        client: &HttpClient,
        config: &ServerConfig,
    ) -> (Option<i64>, Option<String>) {
        let headers = [
            ("content-type", "application/json".to_string()),
            (SIGNATURE_HEADER, self.signature.clone()),
            (NOTIFICATION_HEADER, self.notification_id.clone()),
        ];
        match client
            .post(
                &self.url,
                &headers,
                self.body.clone(),
                config.webhook_timeout,
            )
            .await
        {
            Ok((status, _)) if (200..300).contains(&status) => (Some(i64::from(status)), None),
            Ok((status, _)) => (Some(i64::from(status)), Some(format!("HTTP {status}"))),
            Err(e) => (None, Some(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_hmac_sha256_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(verify(
            "Jefe",
            b"what do ya want for nothing?",
            &sign("Jefe", b"what do ya want for nothing?")
        ));
        assert!(!verify(
            "Jefe",
            b"what do ya want for nothing!",
            &sign("Jefe", b"what do ya want for nothing?")
        ));
    }
}
