//! The transport: a plain HTTP client that talks to the server like a browser or a pump would, with a
//! session's cookie and CSRF token, and reads server-sent event streams into a channel.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use super::PASSWORD;
use super::wait::EventStream;

/// A response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The reply itself, after checking its status (the body is shown when it is not the one wanted).
    #[track_caller]
    pub fn expect_status(self, want: u16) -> Reply {
        assert_eq!(
            self.status,
            want,
            "status {} instead of {want}: {}",
            self.status,
            self.text().chars().take(400).collect::<String>()
        );
        self
    }

    /// The first `Set-Cookie` value, without its attributes (`name=value`).
    pub fn cookie(&self) -> String {
        self.headers
            .get("set-cookie")
            .expect("a Set-Cookie header")
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string()
    }
}

/// A signed-in (or anonymous) client.
#[derive(Clone, Debug, Default)]
pub struct Session {
    pub cookie: Option<String>,
    pub csrf: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Http {
    pub fn new() -> Http {
        Http {
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    pub async fn request(
        &self,
        method: &str,
        url: &str,
        session: &Session,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Reply {
        let mut b = http::Request::builder().method(method).uri(url);
        if let Some(c) = &session.cookie {
            b = b.header("cookie", c);
        }
        if let Some(t) = &session.csrf {
            b = b.header("x-csrf-token", t);
        }
        let has_ct = headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        if body.is_some() && !has_ct {
            b = b.header("content-type", "application/json");
        }
        let req = b
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .unwrap();
        let res = tokio::time::timeout(Duration::from_secs(20), self.client.request(req))
            .await
            .expect("request timed out")
            .expect("request");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, url: &str, session: &Session) -> Reply {
        self.request("GET", url, session, &[], None).await
    }

    pub async fn post_json(&self, url: &str, session: &Session, body: &Value) -> Reply {
        self.request(
            "POST",
            url,
            session,
            &[],
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    /// Sign in with a username and password through the API (the session cookie and CSRF token kept).
    pub async fn login_with(&self, base: &str, username: &str, password: &str) -> Session {
        let r = self
            .post_json(
                &format!("{base}/api/session"),
                &Session::default(),
                &json!({"username": username, "password": password}),
            )
            .await;
        assert_eq!(r.status, 200, "login {username}: {}", r.text());
        Session {
            cookie: Some(r.cookie()),
            csrf: r.json()["csrf_token"].as_str().map(str::to_string),
        }
    }

    /// Sign in one of the seeded people (they all have the test password).
    pub async fn login(&self, base: &str, username: &str) -> Session {
        self.login_with(base, username, PASSWORD).await
    }

    /// Open a server-sent event stream; its events arrive as (event name, data JSON).
    pub async fn sse(&self, url: &str, session: &Session) -> EventStream {
        let mut b = http::Request::builder()
            .method("GET")
            .uri(url)
            .header("accept", "text/event-stream");
        if let Some(c) = &session.cookie {
            b = b.header("cookie", c);
        }
        let req = b.body(Full::new(Bytes::new())).unwrap();
        let res = self.client.request(req).await.expect("stream request");
        assert_eq!(res.status().as_u16(), 200, "stream {url}");
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut body = res.into_body();
        tokio::spawn(async move {
            let mut buf = String::new();
            while let Some(Ok(frame)) = body.frame().await {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                buf.push_str(&String::from_utf8_lossy(&data));
                while let Some(end) = buf.find("\n\n") {
                    let block: String = buf.drain(..end + 2).collect();
                    let mut event = String::from("message");
                    let mut data = String::new();
                    for line in block.lines() {
                        if let Some(e) = line.strip_prefix("event:") {
                            event = e.trim().to_string();
                        } else if let Some(d) = line.strip_prefix("data:") {
                            data.push_str(d.trim_start());
                        }
                    }
                    if data.is_empty() {
                        continue;
                    }
                    let value = serde_json::from_str(&data).unwrap_or(Value::String(data));
                    if tx.send((event, value)).is_err() {
                        return;
                    }
                }
            }
        });
        EventStream::new(rx)
    }
}
