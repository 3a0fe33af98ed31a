//! Typed helpers, one per endpoint the tests use (zero2prod's `TestApp::post_subscriptions`): a test says
//! `app.put_plan(&nurse, &w.p1, plan)` or `app.pump(&w.pump1_token).batch(events, None)` and reads the reply.
//! Helpers that read (timeline, alarms, dashboard) check for 200 and return the JSON; helpers that change
//! something return the `Reply`, so that a test of refusals can read its status.

use serde_json::{Value, json};

use super::{EventStream, Reply, Session, TestServer, User};

impl TestServer {
    /// The absolute URL of a path on this server.
    pub fn url_for(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub async fn login(&self, user: User) -> Session {
        self.http.login(&self.url, user.username()).await
    }

    pub async fn get(&self, path: &str, session: &Session) -> Reply {
        self.http.get(&self.url_for(path), session).await
    }

    pub async fn post(&self, path: &str, session: &Session, body: &Value) -> Reply {
        self.http
            .post_json(&self.url_for(path), session, body)
            .await
    }

    pub async fn put(&self, path: &str, session: &Session, body: &Value) -> Reply {
        self.http
            .request(
                "PUT",
                &self.url_for(path),
                session,
                &[],
                Some(body.to_string().into_bytes()),
            )
            .await
    }

    /// `PUT /api/patients/{patient}/plan` with a new plan (no version: the first plan of a patient).
    pub async fn put_plan(&self, session: &Session, patient: &str, plan: Value) -> Reply {
        self.put(
            &format!("/api/patients/{patient}/plan"),
            session,
            &json!({ "plan": plan }),
        )
        .await
    }

    /// `PUT /api/admin/webhook`.
    pub async fn set_webhook(&self, admin: &Session, url: Option<&str>) -> Reply {
        self.put("/api/admin/webhook", admin, &json!({ "url": url }))
            .await
    }

    /// `POST /api/patients/{patient}/alarms/{alarm}/acknowledge`, with a note or none.
    pub async fn acknowledge(
        &self,
        session: &Session,
        patient: &str,
        alarm: &str,
        note: Option<&str>,
    ) -> Reply {
        let body = match note {
            Some(note) => json!({ "note": note }),
            None => json!({}),
        };
        self.post(
            &format!("/api/patients/{patient}/alarms/{alarm}/acknowledge"),
            session,
            &body,
        )
        .await
    }

    /// `POST /api/patients/{patient}/alarms/{alarm}/silence`.
    pub async fn silence(
        &self,
        session: &Session,
        patient: &str,
        alarm: &str,
        minutes: i64,
    ) -> Reply {
        self.post(
            &format!("/api/patients/{patient}/alarms/{alarm}/silence"),
            session,
            &json!({ "minutes": minutes }),
        )
        .await
    }

    /// `GET /api/patients/{patient}/timeline`, only the given kinds (all when empty), newest 200.
    pub async fn timeline(&self, session: &Session, patient: &str, kinds: &[&str]) -> Vec<Value> {
        let query = if kinds.is_empty() {
            String::new()
        } else {
            format!("?kinds={}", kinds.join(","))
        };
        let r = self
            .get(&format!("/api/patients/{patient}/timeline{query}"), session)
            .await
            .expect_status(200);
        r.json().as_array().expect("a list of events").clone()
    }

    /// `GET /api/patients/{patient}/alarms`: the active alarms.
    pub async fn alarms(&self, session: &Session, patient: &str) -> Value {
        self.get(&format!("/api/patients/{patient}/alarms"), session)
            .await
            .expect_status(200)
            .json()
    }

    /// `GET /api/patients/{patient}`: the patient with the live snapshot.
    pub async fn patient(&self, session: &Session, patient: &str) -> Value {
        self.get(&format!("/api/patients/{patient}"), session)
            .await
            .expect_status(200)
            .json()
    }

    /// `GET /api/dashboard`: the care team's rows, most urgent first.
    pub async fn dashboard(&self, session: &Session) -> Value {
        self.get("/api/dashboard", session)
            .await
            .expect_status(200)
            .json()
    }

    /// `POST /api/patients/{patient}/practice/start`.
    pub async fn practice_start(&self, session: &Session, patient: &str) -> Reply {
        self.post(
            &format!("/api/patients/{patient}/practice/start"),
            session,
            &json!({}),
        )
        .await
    }

    /// `POST /api/patients/{patient}/practice/action`.
    pub async fn practice_action(&self, session: &Session, patient: &str, action: &str) -> Reply {
        self.post(
            &format!("/api/patients/{patient}/practice/action"),
            session,
            &json!({ "action": action }),
        )
        .await
    }

    /// `POST /api/patients/{patient}/practice/stop`.
    pub async fn practice_stop(&self, session: &Session, patient: &str) -> Reply {
        self.post(
            &format!("/api/patients/{patient}/practice/stop"),
            session,
            &json!({}),
        )
        .await
    }

    /// `GET /api/patients/{patient}/stream`: the patient's live screen.
    pub async fn patient_stream(&self, session: &Session, patient: &str) -> EventStream {
        self.http
            .sse(
                &self.url_for(&format!("/api/patients/{patient}/stream")),
                session,
            )
            .await
    }

    /// `GET /api/dashboard/stream`: the care team's live dashboard.
    pub async fn nurse_stream(&self, session: &Session) -> EventStream {
        self.http
            .sse(&self.url_for("/api/dashboard/stream"), session)
            .await
    }

    /// The pump link as a pump with this device token sees it.
    pub fn pump<'a>(&'a self, device_token: &str) -> PumpLink<'a> {
        PumpLink {
            server: self,
            authorization: format!("Bearer {device_token}"),
        }
    }

    /// Everything recorded for a patient (or another record stream), newest first, read from the journal.
    pub async fn record(&self, stream: &str) -> Vec<server::journal::Entry> {
        self.state()
            .journal
            .timeline(stream, &[], 1000, 1)
            .await
            .expect("the record reads")
    }

    /// The number of rows in one of the server's tables.
    pub async fn count_rows(&self, table: &str) -> i64 {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) AS n FROM {table}"
        )))
        .fetch_one(&self.state().db.pool)
        .await
        .expect("the count reads");
        sqlx::Row::try_get(&row, "n").expect("a count")
    }
}

/// One pump on the link (`/api/link/v1/…`, bearer token), sending raw JSON as a pump would.
pub struct PumpLink<'a> {
    server: &'a TestServer,
    authorization: String,
}

impl PumpLink<'_> {
    /// `POST /api/link/v1/batch` with these events, and telemetry when given.
    pub async fn batch(&self, events: Value, telemetry: Option<Value>) -> Reply {
        let mut body = json!({ "events": events });
        if let Some(telemetry) = telemetry {
            body["telemetry"] = telemetry;
        }
        self.send("/api/link/v1/batch", &body).await
    }

    /// `POST /api/link/v1/heartbeat` with telemetry.
    pub async fn heartbeat(&self, telemetry: Value) -> Reply {
        self.send("/api/link/v1/heartbeat", &json!({ "telemetry": telemetry }))
            .await
    }

    async fn send(&self, path: &str, body: &Value) -> Reply {
        self.server
            .http
            .request(
                "POST",
                &self.server.url_for(path),
                &Session::default(),
                &[("authorization", &self.authorization)],
                Some(body.to_string().into_bytes()),
            )
            .await
    }
}
