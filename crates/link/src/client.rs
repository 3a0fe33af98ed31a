//! A small HTTP/1.1 client (hyper-util's, with rustls and the Mozilla root certificates for https), used by pumps
//! and by the server's webhooks, and the pump-link client: an outbox of numbered events that are removed only once the server has
//! confirmed them, so a failed send is retried without losing or duplicating anything.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::wire::{
    BatchResponse, Heartbeat, LINK_BATCH_EVENTS_MAX, LinkBatch, LinkEvent, Telemetry,
};

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{url:?} is not a valid http:// or https:// URL")]
    BadUrl { url: String },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("could not reach the server: {0}")]
    Connect(String),
    #[error("the server answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("the server's answer was not understood: {0}")]
    Decode(String),
    /// The server read the message and will never accept it as it is (a PCD ACK with AE or AR).
    #[error("the server refused the message: {message}")]
    Refused { message: String },
}

/// Largest response body read.
pub const RESPONSE_BYTES_MAX: usize = 1024 * 1024;

/// HTTP and HTTPS client with connection reuse. HTTPS verifies the server against the Mozilla root certificates.
#[derive(Clone, Debug)]
pub struct HttpClient {
    inner: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Default for HttpClient {
    fn default() -> Self {
        HttpClient::new()
    }
}

impl HttpClient {
    pub fn new() -> HttpClient {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        connector.set_nodelay(true);
        connector.enforce_http(false);
        // ring supports the safe default protocol versions (TLS 1.2 and 1.3); anything else is a build error of
        // ours, not a runtime condition.
        let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports TLS 1.2 and 1.3")
        .with_root_certificates(rustls::RootCertStore::from_iter(
            webpki_roots::TLS_SERVER_ROOTS.iter().cloned(),
        ))
        .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        HttpClient {
            inner: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    /// POST `body`; returns the status and the body. Non-2xx statuses are returned, not errors.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<(u16, Bytes), ClientError> {
        let uri: http::Uri = url
            .parse()
            .map_err(|_| ClientError::BadUrl { url: url.into() })?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(ClientError::BadUrl { url: url.into() });
        }
        let mut builder = http::Request::post(uri);
        for (k, v) in headers {
            builder = builder.header(*k, v);
        }
        let request = builder
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| ClientError::BadUrl { url: url.into() })?;
        let fut = async {
            let response = self
                .inner
                .request(request)
                .await
                .map_err(|e| ClientError::Connect(e.to_string()))?;
            let status = response.status().as_u16();
            let limited = http_body_util::Limited::new(response.into_body(), RESPONSE_BYTES_MAX);
            let bytes = limited
                .collect()
                .await
                .map_err(|e| ClientError::Connect(e.to_string()))?
                .to_bytes();
            Ok((status, bytes))
        };
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| ClientError::Timeout(timeout))?
    }
}

/// The pump side of the link.
#[derive(Debug)]
pub struct LinkClient {
    base_url: String,
    token: String,
    http: HttpClient,
    outbox: VecDeque<LinkEvent>,
    next_seq: u64,
    timeout: Duration,
}

/// Events kept while the server is unreachable; beyond this the oldest telemetry-only information would be
/// lost, so the pump keeps every event and the caller is told (`outbox_len`) to raise its own alarm.
pub const OUTBOX_WARN: usize = 10_000;

impl LinkClient {
    /// `base_url` like `http://127.0.0.1:8080`. Sequence numbers start from the current time in microseconds
    /// so a restarted pump process never reuses a number it sent before (the server would drop it as a copy).
    pub fn new(base_url: &str, token: &str) -> LinkClient {
        let start = u64::try_from(jiff::Timestamp::now().as_microsecond()).unwrap_or(1);
        LinkClient {
            base_url: base_url.trim_end_matches('/').to_string(),
            token: token.to_string(),
            http: HttpClient::new(),
            outbox: VecDeque::new(),
            next_seq: start,
            timeout: Duration::from_secs(10),
        }
    }

    /// Queue an event; it gets the next sequence number.
    pub fn push(
        &mut self,
        kind: &str,
        occurred_at: jiff::Timestamp,
        data: serde_json::Value,
    ) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.outbox.push_back(LinkEvent {
            seq,
            occurred_at,
            kind: kind.into(),
            data,
        });
        seq
    }

    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    /// Send the oldest queued events (up to a batch) with the telemetry. On success the confirmed events
    /// (stored now or earlier) leave the outbox; on failure nothing is removed and the call can be repeated.
    pub async fn flush(
        &mut self,
        telemetry: Option<Telemetry>,
    ) -> Result<BatchResponse, ClientError> {
        let events: Vec<LinkEvent> = self
            .outbox
            .iter()
            .take(LINK_BATCH_EVENTS_MAX)
            .cloned()
            .collect();
        let (path, body) = if events.is_empty() {
            ("heartbeat", serde_json::to_vec(&Heartbeat { telemetry }))
        } else {
            (
                "batch",
                serde_json::to_vec(&LinkBatch { events, telemetry }),
            )
        };
        let body = body.map_err(|e| ClientError::Decode(e.to_string()))?;
        let url = format!("{}/api/link/v1/{path}", self.base_url);
        let headers = [
            ("content-type", "application/json".to_string()),
            ("authorization", format!("Bearer {}", self.token)),
        ];
        let (status, bytes) = self.http.post(&url, &headers, body, self.timeout).await?;
        if !(200..300).contains(&status) {
            return Err(ClientError::Status {
                status,
                body: String::from_utf8_lossy(&bytes).chars().take(300).collect(),
            });
        }
        let response: BatchResponse =
            serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()))?;
        let confirmed: std::collections::HashSet<u64> = response
            .accepted
            .iter()
            .chain(&response.duplicates)
            .copied()
            .collect();
        self.outbox.retain(|e| !confirmed.contains(&e.seq));
        Ok(response)
    }

    /// `flush` until it succeeds, waiting 0.25 s, 0.5 s, … up to `backoff_max` between attempts. Only a
    /// 4xx other than 408/429 (a request the server will never accept, such as a revoked token) stops it.
    pub async fn flush_with_retry(
        &mut self,
        telemetry: Option<Telemetry>,
        backoff_max: Duration,
    ) -> Result<BatchResponse, ClientError> {
        let mut wait = Duration::from_millis(250);
        loop {
            match self.flush(telemetry.clone()).await {
                Ok(r) => return Ok(r),
                Err(ClientError::Status { status, body })
                    if (400..500).contains(&status) && status != 408 && status != 429 =>
                {
                    return Err(ClientError::Status { status, body });
                }
                Err(e) => {
                    eprintln!(
                        "infusafe pump: sending to the server failed ({e}); retrying in {wait:?}"
                    );
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(backoff_max);
                }
            }
        }
    }
}
