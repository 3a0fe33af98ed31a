//! Outgoing notifications to each clinic's integration (SMS, paging): a JSON body signed with HMAC-SHA256 and
//! the clinic's secret, delivered by a background worker with retries and exponential back-off. Every attempt
//! is stored in `srv_webhook_attempts`, and the outcome is an `escalation_sent` event in the record.
//!
//! Receivers verify `X-Infusafe-Signature: sha256=<hex of HMAC-SHA256(secret, raw body)>` and de-duplicate on
//! `X-Infusafe-Notification` (the same id on every retry).

use hmac::{Hmac, KeyInit, Mac};
use link::HttpClient;
use record::Kind;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::mpsc;

use crate::config::ServerConfig;
use crate::domain::EventDraft;
use crate::ids::new_id;
use crate::journal::Journal;
use crate::services::now_ms;
use crate::store::Db;
use crate::store::webhooks::Attempt;

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

/// Notifications queued at most before new ones are refused (and logged): the queue never grows without bound.
pub const QUEUE_MAX: usize = 10_000;

/// Handle to the delivery worker.
#[derive(Debug, Clone)]
pub struct Webhooks {
    sender: mpsc::Sender<Notification>,
}

impl Webhooks {
    /// Start the worker.
    pub fn start(db: Db, journal: Journal, config: ServerConfig) -> Webhooks {
        let (sender, mut receiver) = mpsc::channel::<Notification>(QUEUE_MAX);
        tokio::spawn(async move {
            while let Some(n) = receiver.recv().await {
                // Each notification retries on its own task so a dead receiver never delays the others.
                let (db, journal, config) = (db.clone(), journal.clone(), config.clone());
                tokio::spawn(async move { deliver(db, journal, config, n).await });
            }
        });
        Webhooks { sender }
    }

    pub fn notify(&self, n: Notification) {
        if let Err(e) = self.sender.try_send(n) {
            eprintln!("infusafe server: webhook queue full, notification dropped: {e}");
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

async fn deliver(db: Db, journal: Journal, config: ServerConfig, n: Notification) {
    let (url, secret) = match crate::store::webhooks::target(&db, &n.clinic_id).await {
        Ok(Some(target)) => target,
        Ok(None) => return,
        Err(e) => {
            eprintln!("infusafe server: webhook lookup failed: {e}");
            return;
        }
    };
    let notification_id = new_id("ntf");
    let Some(url) = url else {
        let _ = journal
            .append_one(EventDraft::system(&n.patient_id, Kind::EscalationSent, now_ms(), json!({"escalation_id": notification_id, "to": "care team screens (no webhook configured)", "priority": "urgent", "reason": n.kind, "delivered": false, "body": n.body})))
            .await;
        return;
    };
    let mut body_value = n.body.clone();
    if let Some(obj) = body_value.as_object_mut() {
        obj.insert("notification_id".into(), json!(notification_id));
        obj.insert("sent_at".into(), json!(jiff::Timestamp::now().to_string()));
    }
    let body = body_value.to_string().into_bytes();
    let signature = sign(&secret, &body);
    let client = HttpClient::new();
    let mut backoff = config.webhook_backoff_first;
    let mut delivered = false;
    let mut attempts = 0;
    for attempt in 1..=config.webhook_attempts_max {
        attempts = attempt;
        let headers = [
            ("content-type", "application/json".to_string()),
            (SIGNATURE_HEADER, signature.clone()),
            (NOTIFICATION_HEADER, notification_id.clone()),
        ];
        let result = client
            .post(&url, &headers, body.clone(), config.webhook_timeout)
            .await;
        let (status, error) = match &result {
            Ok((status, _)) => (
                Some(i64::from(*status)),
                if (200..300).contains(status) {
                    None
                } else {
                    Some(format!("HTTP {status}"))
                },
            ),
            Err(e) => (None, Some(e.to_string())),
        };
        delivered = error.is_none();
        let record = Attempt {
            id: new_id("wha"),
            clinic_id: n.clinic_id.clone(),
            notification_id: notification_id.clone(),
            attempt: i64::from(attempt),
            at_ms: now_ms(),
            status_code: status,
            error,
            delivered,
        };
        let stored = crate::store::webhooks::insert_attempt(&db, &record).await;
        if let Err(e) = stored {
            eprintln!("infusafe server: could not store a webhook attempt: {e}");
        }
        if delivered {
            break;
        }
        if attempt < config.webhook_attempts_max {
            tokio::time::sleep(backoff).await;
            backoff = backoff
                .saturating_mul(2)
                .min(std::time::Duration::from_secs(300));
        }
    }
    let _ = journal
        .append_one(EventDraft::system(
            &n.patient_id,
            Kind::EscalationSent,
            now_ms(),
            json!({"escalation_id": notification_id, "to": format!("webhook {url}"), "priority": "urgent", "reason": n.kind, "delivered": delivered, "attempts": attempts, "body": n.body}),
        ))
        .await;
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
