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
    pub clinic_id: String,
    pub patient_id: String,
    pub kind: String,
    pub body: Value,
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

    /// Queue a notification (durably: it is delivered even if this process dies before it is sent).
    pub async fn notify(&self, n: Notification) {
        let id = new_id("ntf");
        let mut body = n.body.clone();
        if let Some(obj) = body.as_object_mut() {
            obj.insert("notification_id".into(), json!(id));
            obj.insert("sent_at".into(), json!(jiff::Timestamp::now().to_string()));
        }
        let outgoing = Outgoing {
            id,
            clinic_id: n.clinic_id,
            patient_id: n.patient_id,
            kind: n.kind,
            body: body.to_string(),
            attempts: 0,
        };
        match crate::store::webhooks::enqueue(&self.db, &outgoing, now_ms()).await {
            Ok(()) => self.wake.notify_one(),
            Err(e) => eprintln!(
                "infusafe server: could not queue a webhook notification ({e}); the escalation is in the record and on the dashboards"
            ),
        }
    }
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
            let _ = crate::store::webhooks::finish(db, &o.id, o.attempts, now_ms()).await;
            return;
        }
        Err(e) => {
            eprintln!("infusafe server: webhook lookup failed (tried again later): {e}");
            let _ = crate::store::webhooks::retry_at(db, &o.id, o.attempts, now_ms() + 1_000).await;
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
    if let Err(e) =
        crate::store::webhooks::retry_at(db, &o.id, attempt_no, now_ms() + backoff).await
    {
        eprintln!("infusafe server: could not schedule a webhook retry: {e}");
    }
}

/// Out of the queue, with the outcome in the record.
async fn finish(db: &Db, journal: &Journal, o: &Outgoing, to: String, outcome: Value) {
    if let Err(e) = crate::store::webhooks::finish(db, &o.id, o.attempts, now_ms()).await {
        eprintln!("infusafe server: could not close a webhook notification: {e}");
    }
    let body: Value = serde_json::from_str(&o.body).unwrap_or(Value::Null);
    let mut payload = json!({"escalation_id": o.id, "to": to, "priority": "urgent", "reason": o.kind, "body": body});
    if let (Some(p), Some(extra)) = (payload.as_object_mut(), outcome.as_object()) {
        p.extend(extra.clone());
    }
    let _ = journal
        .append_one(EventDraft::system(
            &o.patient_id,
            Kind::EscalationSent,
            now_ms(),
            payload,
        ))
        .await;
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
