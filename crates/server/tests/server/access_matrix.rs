//! Walks every API route (and the screens of the patient's own log and calendar address) as each role and as an outsider (another clinic's nurse and patient, and nobody),
//! against a table of expected statuses, on SQLite and PostgreSQL.

use serde_json::json;

use crate::support::{self, Backend, Session, TestServer, User};

#[derive(Clone, Copy, Debug)]
enum Who {
    Anonymous,
    Admin,
    Nurse,
    Patient1,
    Caregiver1,
    Patient2,
    NurseB,
    PatientB,
}

const EVERYONE: [Who; 8] = [
    Who::Anonymous,
    Who::Admin,
    Who::Nurse,
    Who::Patient1,
    Who::Caregiver1,
    Who::Patient2,
    Who::NurseB,
    Who::PatientB,
];

fn user(w: Who) -> Option<User> {
    match w {
        Who::Anonymous => None,
        Who::Admin => Some(User::Admin),
        Who::Nurse => Some(User::Nurse),
        Who::Patient1 => Some(User::Patient1),
        Who::Caregiver1 => Some(User::Caregiver1),
        Who::Patient2 => Some(User::Patient2),
        Who::NurseB => Some(User::NurseB),
        Who::PatientB => Some(User::PatientB),
    }
}

/// A fresh session for one row (anonymous: no session at all).
async fn session_of(app: &TestServer, who: Who) -> Session {
    match user(who) {
        Some(u) => app.login(u).await,
        None => Session::default(),
    }
}

/// Expected status per role, in the order of `EVERYONE`.
type Row = (
    &'static str,
    &'static str,
    Option<serde_json::Value>,
    [u16; 8],
);

async fn route_table(backend: Backend) {
    let Some((app, w)) = TestServer::seeded(backend).await else {
        return;
    };
    let p1 = w.p1.clone();
    // A plan first, so GET plan has something to read.
    let nurse = app.login(User::Nurse).await;
    app.put_plan(&nurse, &p1, support::plan_json(5, 10))
        .await
        .expect_status(200);

    //            anon admin nurse pat1 care1 pat2 nurseB patB
    let rows: Vec<Row> = vec![
        (
            "GET",
            "/healthz",
            None,
            [200, 200, 200, 200, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/openapi.json",
            None,
            [200, 200, 200, 200, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/me",
            None,
            [401, 200, 200, 200, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/patients",
            None,
            [401, 200, 200, 200, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/dashboard",
            None,
            [401, 200, 200, 403, 403, 403, 200, 403],
        ),
        (
            "GET",
            "/api/patients/{p1}",
            None,
            [401, 200, 200, 200, 200, 404, 404, 404],
        ),
        (
            "GET",
            "/api/patients/{p1}/alarms",
            None,
            [401, 200, 200, 200, 200, 404, 404, 404],
        ),
        (
            "GET",
            "/api/patients/{p1}/timeline",
            None,
            [401, 200, 200, 200, 200, 404, 404, 404],
        ),
        (
            "GET",
            "/api/patients/{p1}/telemetry",
            None,
            [401, 200, 200, 200, 200, 404, 404, 404],
        ),
        (
            "GET",
            "/api/patients/{p1}/plan",
            None,
            [401, 200, 200, 200, 200, 404, 404, 404],
        ),
        (
            "PUT",
            "/api/patients/{p1}/plan",
            Some(json!({"plan": support::plan_json(5, 10), "version": 99})),
            [401, 409, 409, 403, 403, 403, 404, 403],
        ),
        (
            "POST",
            "/api/patients/{p1}/alarms/occlusion_downstream/acknowledge",
            Some(json!({})),
            [401, 404, 404, 404, 404, 404, 404, 404],
        ),
        (
            "POST",
            "/api/patients/{p1}/alarms/occlusion_downstream/silence",
            Some(json!({"minutes": 2})),
            [401, 404, 404, 404, 404, 404, 404, 404],
        ),
        (
            "GET",
            "/api/patients/{p1}/practice",
            None,
            [401, 200, 200, 200, 200, 404, 404, 404],
        ),
        // Start, press a fix, stop: clinicians run the practice pump; once stopped, a fix finds no pump (409).
        (
            "POST",
            "/api/patients/{p1}/practice/start",
            Some(json!({})),
            [401, 200, 200, 403, 403, 403, 404, 403],
        ),
        (
            "POST",
            "/api/patients/{p1}/practice/action",
            Some(json!({"action": "unkink"})),
            [401, 200, 200, 409, 409, 404, 404, 404],
        ),
        (
            "POST",
            "/api/patients/{p1}/practice/stop",
            Some(json!({})),
            [401, 200, 200, 403, 403, 403, 404, 403],
        ),
        (
            "POST",
            "/api/admin/patients",
            Some(json!({"display_name": "New Person"})),
            [401, 201, 403, 403, 403, 403, 403, 403],
        ),
        (
            "POST",
            "/api/admin/patients/{p1}/devices",
            Some(json!({"label": "Pump X"})),
            [401, 201, 403, 403, 403, 403, 403, 403],
        ),
        (
            "PUT",
            "/api/admin/webhook",
            Some(json!({"url": null})),
            [401, 200, 403, 403, 403, 403, 403, 403],
        ),
        (
            "POST",
            "/api/admin/users",
            Some(
                json!({"username": "x{n}", "display_name": "X", "password": "long-enough-pw", "role": "nurse"}),
            ),
            [401, 201, 403, 403, 403, 403, 403, 403],
        ),
        (
            "POST",
            "/api/link/v1/heartbeat",
            Some(json!({})),
            [401, 401, 401, 401, 401, 401, 401, 401],
        ),
        (
            "POST",
            "/api/link/v1/batch",
            Some(json!({"events": []})),
            [401, 401, 401, 401, 401, 401, 401, 401],
        ),
        (
            "DELETE",
            "/api/session",
            None,
            [401, 204, 204, 204, 204, 204, 204, 204],
        ),
    ];
    let mut failures = Vec::new();
    let mut n = 0;
    for (i, who) in EVERYONE.iter().enumerate() {
        // One sign-in per person (each costs a password hash), and a fresh one after DELETE /api/session so that
        // signing out does not change the answer to the next row.
        let mut session = session_of(&app, *who).await;
        for (method, path, body, expect) in &rows {
            n += 1;
            let path = path.replace("{p1}", &p1);
            let body = body
                .as_ref()
                .map(|b| b.to_string().replace("{n}", &n.to_string()).into_bytes());
            let r = app
                .http
                .request(method, &app.url_for(&path), &session, &[], body)
                .await;
            if r.status != expect[i] {
                failures.push(format!(
                    "{who:?} {method} {path}: got {} want {} ({})",
                    r.status,
                    expect[i],
                    r.text().chars().take(200).collect::<String>()
                ));
            }
            if *method == "DELETE" && path == "/api/session" {
                session = session_of(&app, *who).await;
            }
        }
    }
    // The screens of the patient's own log and the calendar address (issue 13, items 6 and 7): forms post
    // urlencoded bodies; anonymous people are sent to sign in (303), anonymous calendar reads are by token only.
    //            anon admin nurse pat1 care1 pat2 nurseB patB
    let zeros = "0".repeat(64);
    let web_rows: Vec<(&str, String, Option<&str>, [u16; 8])> = vec![
        (
            "GET",
            "/p/{p1}/log/felt".into(),
            None,
            [303, 200, 200, 200, 200, 404, 404, 404],
        ),
        (
            "GET",
            "/p/{p1}/log/felt?after=latest".into(),
            None,
            [303, 200, 200, 200, 200, 404, 404, 404],
        ),
        (
            "GET",
            "/p/{p1}/log/site".into(),
            None,
            [303, 200, 200, 200, 200, 404, 404, 404],
        ),
        (
            "GET",
            "/p/{p1}/log/question".into(),
            None,
            [303, 200, 200, 200, 200, 404, 404, 404],
        ),
        (
            "POST",
            "/p/{p1}/log/felt".into(),
            Some("compared=same"),
            [303, 403, 403, 303, 303, 404, 404, 404],
        ),
        (
            "POST",
            "/p/{p1}/log/site".into(),
            Some("text=ok"),
            [303, 403, 403, 303, 303, 404, 404, 404],
        ),
        (
            "POST",
            "/p/{p1}/log/question".into(),
            Some("text=hello"),
            [303, 403, 403, 303, 303, 404, 404, 404],
        ),
        (
            "GET",
            "/p/{p1}/log/entries/999999".into(),
            None,
            [303, 404, 404, 404, 404, 404, 404, 404],
        ),
        (
            "GET",
            format!("/p/{{p1}}/log/photos/{zeros}"),
            None,
            [303, 404, 404, 404, 404, 404, 404, 404],
        ),
        (
            "POST",
            "/nurse/patients/{p1}/questions/999999/answer".into(),
            Some("text=x"),
            [303, 404, 404, 403, 403, 403, 404, 403],
        ),
        // The dashboard and its live fragments (issue 15): nurses and admins of the clinic only.
        (
            "GET",
            "/nurse?q=Pat&page=2".into(),
            None,
            [303, 200, 200, 403, 403, 403, 200, 403],
        ),
        (
            "GET",
            "/nurse/attention".into(),
            None,
            [303, 200, 200, 403, 403, 403, 200, 403],
        ),
        (
            "GET",
            "/nurse/rows/{p1}".into(),
            None,
            [303, 200, 200, 403, 403, 403, 404, 403],
        ),
        (
            "GET",
            "/p/{p1}/reminders".into(),
            None,
            [303, 200, 200, 200, 200, 404, 404, 404],
        ),
        (
            "POST",
            "/p/{p1}/reminders/calendar-link".into(),
            Some(""),
            [303, 303, 303, 303, 303, 404, 404, 404],
        ),
        (
            "POST",
            "/p/{p1}/reminders/calendar-link/revoke".into(),
            Some(""),
            [303, 303, 303, 303, 303, 404, 404, 404],
        ),
        (
            "GET",
            format!("/cal/{zeros}.ics"),
            None,
            [404, 404, 404, 404, 404, 404, 404, 404],
        ),
    ];
    for (i, who) in EVERYONE.iter().enumerate() {
        let session = session_of(&app, *who).await;
        for (method, path, form, expect) in &web_rows {
            let path = path.replace("{p1}", &p1);
            let headers: &[(&str, &str)] = if form.is_some() {
                &[("content-type", "application/x-www-form-urlencoded")]
            } else {
                &[]
            };
            let r = app
                .http
                .request(
                    method,
                    &app.url_for(&path),
                    &session,
                    headers,
                    form.map(|f| f.as_bytes().to_vec()),
                )
                .await;
            if r.status != expect[i] {
                failures.push(format!(
                    "{who:?} {method} {path}: got {} want {} ({})",
                    r.status,
                    expect[i],
                    r.text().chars().take(200).collect::<String>()
                ));
            }
        }
    }
    // The SSE streams: access is checked before the stream opens.
    for (i, who) in EVERYONE.iter().enumerate() {
        let session = session_of(&app, *who).await;
        for (path, expect) in [
            (
                format!("/api/patients/{p1}/stream"),
                [401, 200, 200, 200, 200, 404, 404, 404],
            ),
            (
                "/api/dashboard/stream".to_string(),
                [401, 200, 200, 403, 403, 403, 200, 403],
            ),
        ] {
            let status = stream_status(&app.url, &path, &session).await;
            if status != expect[i] {
                failures.push(format!(
                    "{who:?} GET {path}: got {status} want {}",
                    expect[i]
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "route × role table mismatches:\n{}",
        failures.join("\n")
    );
}

/// Status of a stream request without waiting for its (endless) body.
async fn stream_status(base: &str, path: &str, session: &Session) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let cookie = session
        .cookie
        .as_ref()
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{cookie}Accept: text/event-stream\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).await.unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    head.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

both_backends!(route_table);
