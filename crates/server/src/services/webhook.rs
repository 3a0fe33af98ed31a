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
    let (to, outcome) = match url {
        None => (
            "care team screens (no webhook configured)".to_string(),
            json!({"delivered": false}),
        ),
        Some(url) => {
            let request = Delivery::new(&n, &notification_id, &url, &secret);
            let (delivered, attempts) = request.attempt_all(&db, &config, &n.clinic_id).await;
            (
                format!("webhook {url}"),
                json!({"delivered": delivered, "attempts": attempts}),
            )
        }
    };
    let mut payload = json!({"escalation_id": notification_id, "to": to, "priority": "urgent", "reason": n.kind, "body": n.body});
    if let (Some(p), Some(o)) = (payload.as_object_mut(), outcome.as_object()) {
        p.extend(o.clone());
    }
    let _ = journal
        .append_one(EventDraft::system(
            &n.patient_id,
            Kind::EscalationSent,
            now_ms(),
            payload,
        ))
        .await;
}

/// One notification's signed request, sent until it is delivered or the attempts run out.
struct Delivery {
    url: String,
    notification_id: String,
    body: Vec<u8>,
    signature: String,
}

impl Delivery {
    fn new(n: &Notification, notification_id: &str, url: &str, secret: &str) -> Delivery {
        let mut body_value = n.body.clone();
        if let Some(obj) = body_value.as_object_mut() {
            obj.insert("notification_id".into(), json!(notification_id));
            obj.insert("sent_at".into(), json!(jiff::Timestamp::now().to_string()));
        }
        let body = body_value.to_string().into_bytes();
        Delivery {
            url: url.to_string(),
            notification_id: notification_id.to_string(),
            signature: sign(secret, &body),
            body,
        }
    }

    /// Send with back-off (doubling, at most 5 minutes) until a 2xx or the last attempt, storing every attempt.
    /// Returns whether it was delivered and after how many attempts.
    async fn attempt_all(&self, db: &Db, config: &ServerConfig, clinic_id: &str) -> (bool, u32) {
        let client = HttpClient::new();
        let mut backoff = config.webhook_backoff_first;
        for attempt in 1..=config.webhook_attempts_max {
            let (status, error) = self.send(&client, config).await;
            let delivered = error.is_none();
            let record = Attempt {
                id: new_id("wha"),
                clinic_id: clinic_id.to_string(),
                notification_id: self.notification_id.clone(),
                attempt: i64::from(attempt),
                at_ms: now_ms(),
                status_code: status,
                error,
                delivered,
            };
            if let Err(e) = crate::store::webhooks::insert_attempt(db, &record).await {
                eprintln!("infusafe server: could not store a webhook attempt: {e}");
            }
            if delivered {
                return (true, attempt);
            }
            if attempt < config.webhook_attempts_max {
                tokio::time::sleep(backoff).await;
                backoff = backoff
                    .saturating_mul(2)
                    .min(std::time::Duration::from_secs(300));
            }
        }
        (false, config.webhook_attempts_max)
    }

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
