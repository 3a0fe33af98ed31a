//! Bad input of every kind gets a 4xx naming what is wrong, never a 500, and writes nothing: huge bodies,
//! malformed JSON, wrong types, unknown fields and ids, other patients' ids, missing CSRF tokens, bad tokens.

use serde_json::{Value, json};

use crate::support::{self, Backend, Session, TestServer, User};

/// (method, path, session, extra headers, body, expected status, text the error must contain)
type Case<'a> = (
    &'a str,
    String,
    Session,
    Vec<(&'a str, &'a str)>,
    Option<Vec<u8>>,
    u16,
    &'a str,
);

async fn hostile_requests_get_clear_4xx(backend: Backend) {
    let Some((app, w)) = TestServer::seeded(backend).await else {
        return;
    };
    let base = app.url.clone();
    let nurse = app.login(User::Nurse).await;
    let patient = app.login(User::Patient1).await;
    let pump_auth = format!("Bearer {}", w.pump1_token);
    let p1 = &w.p1;
    let huge = vec![b'x'; 2 * 1024 * 1024];
    let huge_json = format!("{{\"display_name\": \"{}\"}}", "x".repeat(200 * 1024)).into_bytes();

    // (method, path, session, extra headers, body, expected status, text the error must contain)
    let admin = app.login(User::Admin).await;
    let cases: Vec<Case> = vec![
        ("POST", "/api/session".into(), Session::default(), vec![], Some(b"{not json".to_vec()), 422, "not valid JSON"),
        ("POST", "/api/session".into(), Session::default(), vec![], Some(br#"{"username": 5, "password": "x"}"#.to_vec()), 422, "username"),
        ("POST", "/api/session".into(), Session::default(), vec![], Some(br#"{"username": "a"}"#.to_vec()), 422, "password"),
        ("POST", "/api/session".into(), Session::default(), vec![], Some(br#"{"username": "a", "password": "b", "admin": true}"#.to_vec()), 422, "admin"),
        ("POST", "/api/session".into(), Session::default(), vec![("content-type", "text/plain")], Some(b"hello".to_vec()), 422, "Content-Type"),
        ("PUT", format!("/api/patients/{p1}/plan"), nurse.clone(), vec![], Some(br#"{"plan": [1,2]}"#.to_vec()), 422, "plan"),
        ("PUT", format!("/api/patients/{p1}/plan"), nurse.clone(), vec![], Some(json!({"plan": support::plan_json(0, 10)}).to_string().into_bytes()), 422, "plan.escalation.patient_to_nurse_min"),
        ("PUT", format!("/api/patients/{p1}/plan"), nurse.clone(), vec![], Some(json!({"plan": {"line": "picc2"}}).to_string().into_bytes()), 422, "picc2"),
        ("PUT", format!("/api/patients/{p1}/plan"), nurse.clone(), vec![], Some(json!({"plan": support::plan_json(5, 10), "version": "one"}).to_string().into_bytes()), 422, "version"),
        ("GET", format!("/api/patients/{p1}/timeline?limit=abc"), nurse.clone(), vec![], None, 422, "limit"),
        ("GET", format!("/api/patients/{p1}/timeline?limit=0"), nurse.clone(), vec![], None, 422, "limit"),
        ("GET", format!("/api/patients/{p1}/timeline?kinds=DROP%20TABLE"), nurse.clone(), vec![], None, 422, "kinds"),
        ("GET", "/api/patients/pat_doesnotexist".into(), nurse.clone(), vec![], None, 404, "not found"),
        ("GET", "/api/patients/..%2F..%2Fetc%2Fpasswd".into(), nurse.clone(), vec![], None, 404, "not found"),
        ("GET", format!("/api/patients/{}", w.pb), nurse.clone(), vec![], None, 404, "not found"),
        ("GET", format!("/api/patients/{}", w.p2), patient.clone(), vec![], None, 404, "not found"),
        ("POST", format!("/api/patients/{}/alarms/air_in_line/acknowledge", w.p2), patient.clone(), vec![], Some(b"{}".to_vec()), 404, "not found"),
        ("POST", format!("/api/patients/{p1}/alarms/air_in_line/silence"), patient.clone(), vec![], Some(br#"{"minutes": 900}"#.to_vec()), 422, "minutes"),
        ("POST", format!("/api/patients/{p1}/alarms/air_in_line/silence"), patient.clone(), vec![], Some(br#"{"minutes": -1}"#.to_vec()), 422, "minutes"),
        ("POST", format!("/api/patients/{p1}/alarms/air_in_line/acknowledge"), patient.clone(), vec![], Some(json!({"note": "n".repeat(5000)}).to_string().into_bytes()), 422, "note"),
        // CSRF: a session cookie without the token, or with a wrong one, or from another site.
        ("POST", format!("/api/patients/{p1}/alarms/air_in_line/acknowledge"), Session { cookie: patient.cookie.clone(), csrf: None }, vec![], Some(b"{}".to_vec()), 403, "security token"),
        ("POST", format!("/api/patients/{p1}/alarms/air_in_line/acknowledge"), Session { cookie: patient.cookie.clone(), csrf: Some("wrong".into()) }, vec![], Some(b"{}".to_vec()), 403, "security token"),
        ("POST", format!("/api/patients/{p1}/alarms/air_in_line/acknowledge"), patient.clone(), vec![("origin", "http://evil.example")], Some(b"{}".to_vec()), 403, "another site"),
        // The pump link.
        ("POST", "/api/link/v1/batch".into(), Session::default(), vec![("authorization", "Bearer nope")], Some(b"{}".to_vec()), 401, "device token"),
        ("POST", "/api/link/v1/batch".into(), Session::default(), vec![("authorization", &pump_auth)], Some(br#"{"events": [{"seq": "x"}]}"#.to_vec()), 422, "events[0].seq"),
        ("POST", "/api/link/v1/batch".into(), Session::default(), vec![("authorization", &pump_auth)], Some(br#"{"events": [{"seq": 1, "occurred_at": "yesterday", "kind": "x"}]}"#.to_vec()), 422, "events[0].occurred_at"),
        ("POST", "/api/link/v1/batch".into(), Session::default(), vec![("authorization", &pump_auth)], Some(br#"{"events": [{"seq": 1, "occurred_at": "2026-01-01T00:00:00Z", "kind": "Alarm Raised!"}]}"#.to_vec()), 422, "events[0].kind"),
        ("POST", "/api/link/v1/batch".into(), Session::default(), vec![("authorization", &pump_auth)], Some(br#"{"events": [{"seq": 1, "occurred_at": "2026-01-01T00:00:00Z", "kind": "alarm_raised", "data": {"alarm": "occlusion_downstream", "priority": "urgent"}}]}"#.to_vec()), 422, "events[0].data.priority"),
        ("POST", "/api/link/v1/batch".into(), Session::default(), vec![("authorization", &pump_auth)], Some(br#"{"events": [{"seq": 1, "occurred_at": "2026-01-01T00:00:00Z", "kind": "infusion_started", "data": {"rate_ml_per_h": "fast"}}]}"#.to_vec()), 422, "events[0].data"),
        ("POST", "/api/link/v1/batch".into(), Session::default(), vec![("authorization", &pump_auth)], Some(br#"{"events": [{"seq": 4611686018427387904, "occurred_at": "2026-01-01T00:00:00Z", "kind": "note", "data": {"text": "x"}}]}"#.to_vec()), 422, "events[0].seq"),
        ("POST", "/api/link/v1/heartbeat".into(), Session::default(), vec![("authorization", &pump_auth)], Some(br#"{"telemetry": {"state": "flying", "rate_ml_per_h": 1, "delivered_ml": 0, "remaining_ml": 0, "battery_percent": 50}}"#.to_vec()), 422, "telemetry.state"),
        ("POST", "/api/link/v1/heartbeat".into(), Session::default(), vec![("authorization", &pump_auth)], Some(br#"{"telemetry": {"state": "infusing", "rate_ml_per_h": 1, "delivered_ml": 0, "remaining_ml": 0, "battery_percent": 150}}"#.to_vec()), 422, "telemetry.battery_percent"),
        ("POST", "/api/admin/users".into(), admin.clone(), vec![], Some(br#"{"username": "a b", "display_name": "X", "password": "long-enough-pw", "role": "nurse"}"#.to_vec()), 422, "username"),
        ("POST", "/api/admin/users".into(), admin.clone(), vec![], Some(br#"{"username": "ab", "display_name": "X", "password": "short", "role": "nurse"}"#.to_vec()), 422, "password"),
        ("POST", "/api/admin/users".into(), admin.clone(), vec![], Some(br#"{"username": "ab", "display_name": "X", "password": "long-enough-pw", "role": "god"}"#.to_vec()), 422, "role"),
        ("POST", "/api/admin/users".into(), admin.clone(), vec![], Some(format!(r#"{{"username": "ab", "display_name": "X", "password": "long-enough-pw", "role": "caregiver", "patient_ids": ["{}"]}}"#, w.pb).into_bytes()), 422, "patient_ids[0]"),
        ("POST", "/api/admin/users".into(), admin.clone(), vec![], Some(br#"{"username": "nurse", "display_name": "X", "password": "long-enough-pw", "role": "nurse"}"#.to_vec()), 409, "taken"),
        ("PUT", "/api/admin/webhook".into(), admin.clone(), vec![], Some(br#"{"url": "ftp://x"}"#.to_vec()), 422, "url"),
        ("GET", "/api/nothing-here".into(), nurse.clone(), vec![], None, 404, ""),
    ];
    let mut failures = Vec::new();
    // Oversized bodies: the server answers 413 before reading them all, so they are sent over a raw socket that
    // keeps writing in the background (an HTTP client may see the connection close mid-upload instead).
    for (path, session, body) in [
        ("/api/session", Session::default(), huge),
        ("/api/admin/patients", nurse.clone(), huge_json),
    ] {
        let status = oversized_status(&base, path, &session, body).await;
        if status != 413 {
            failures.push(format!(
                "POST {path} with an oversized body: got {status}, want 413"
            ));
        }
    }
    for (method, path, session, headers, body, status, needle) in &cases {
        let r = app
            .http
            .request(
                method,
                &format!("{base}{path}"),
                session,
                headers,
                body.clone(),
            )
            .await;
        let text = r.text();
        if r.status != *status || !text.contains(needle) {
            failures.push(format!(
                "{method} {path}: got {} {:?}, want {status} containing {needle:?}",
                r.status,
                text.chars().take(300).collect::<String>()
            ));
        }
        if r.status >= 500 {
            failures.push(format!("{method} {path}: server error {}", r.status));
        }
        if r.status == 422 {
            let v: Value = r.json();
            assert!(v["field"].is_string(), "422 without a field: {v}");
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Nothing was written by the refused pump batches: no alarm, no events from the pump.
    let written = app
        .timeline(&nurse, p1, &["alarm_raised", "infusion_started", "note"])
        .await;
    assert!(
        written.is_empty(),
        "refused input must write nothing: {written:?}"
    );
    // A batch with one bad event writes none of its good events.
    let mixed = json!([
        {"seq": 1, "occurred_at": "2026-01-01T00:00:00Z", "kind": "note", "data": {"text": "fine"}},
        {"seq": 2, "occurred_at": "2026-01-01T00:00:00Z", "kind": "infusion_completed", "data": {"delivered_ml": "lots"}}
    ]);
    app.pump(&w.pump1_token)
        .batch(mixed, None)
        .await
        .expect_status(422);
    let notes = app.timeline(&nurse, p1, &["note"]).await;
    assert!(notes.is_empty(), "no partial writes: {notes:?}");
}

async fn oversized_status(base: &str, path: &str, session: &Session, body: Vec<u8>) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://").to_string();
    let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(c) = &session.cookie {
        head.push_str(&format!("Cookie: {c}\r\n"));
    }
    if let Some(t) = &session.csrf {
        head.push_str(&format!("x-csrf-token: {t}\r\n"));
    }
    head.push_str("\r\n");
    tokio::spawn(async move {
        let _ = write.write_all(head.as_bytes()).await;
        let _ = write.write_all(&body).await;
    });
    let mut buf = vec![0u8; 256];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), read.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&buf[..n])
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

async fn logins_are_rate_limited(backend: Backend) {
    let Some((app, w)) = TestServer::seeded(backend).await else {
        return;
    };
    let sign_in = async |password: &str| {
        app.post(
            "/api/session",
            &Session::default(),
            &json!({"username": User::Nurse.username(), "password": password}),
        )
        .await
    };
    for _ in 0..5 {
        sign_in("wrong-password").await.expect_status(403);
    }
    let r = sign_in(support::PASSWORD).await;
    assert_eq!(r.status, 429, "even the right password waits: {}", r.text());
    assert!(r.headers.get("retry-after").is_some());
    // Another account from the same address still works.
    app.login(User::Patient1).await;
    // Failed logins of a known account are recorded (on the clinic audit stream for clinicians).
    let events = app
        .state()
        .journal
        .timeline(&format!("clinic:{}", w.clinic_a), &["login".into()], 50, 1)
        .await
        .unwrap();
    assert!(
        events
            .iter()
            .filter(|e| e.payload["success"] == false)
            .count()
            >= 5,
        "{events:?}"
    );
}

both_backends!(hostile_requests_get_clear_4xx, logins_are_rate_limited);
