//! Issue 13, items 6 and 7, over real HTTP on both backends: the patient's own log (how I felt, what I see at my
//! site with a photo, a question for the nurse and the answer) written by the people who may, refused to the
//! others, landing in the record with who wrote it, offering the symptom check when triage says so, and shown to
//! the nurse; and the secret calendar address, made, read without a session, revoked, replaced and audited.

use serde_json::{Value, json};

use crate::support::{Backend, Reply, Session, TestServer, User, World};

/// A JPEG's first bytes and a little more: enough for the type check, not a picture anyone looks at.
const JPEG: &[u8] = &[
    0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, 0x01, 0xFF, 0xD9,
];

struct Log {
    app: TestServer,
    world: World,
}

impl Log {
    async fn start(backend: Backend) -> Option<Log> {
        let (app, world) = TestServer::seeded(backend).await?;
        server::services::plans::seed(app.state(), &world.p1, crate::support::plan_json(5, 10))
            .await
            .expect("the example plan is accepted");
        Some(Log { app, world })
    }

    fn url(&self, path: &str) -> String {
        self.app.url_for(&path.replace("{p1}", &self.world.p1))
    }

    async fn get(&self, path: &str, session: &Session) -> Reply {
        self.app.http.get(&self.url(path), session).await
    }

    /// A form as a browser posts it: urlencoded, the CSRF token in the body.
    async fn form(&self, path: &str, session: &Session, fields: &[(&str, &str)]) -> Reply {
        let token = session.csrf.clone().unwrap_or_default();
        let mut pairs = fields.to_vec();
        pairs.push(("csrf_token", &token));
        let body = serde_urlencoded::to_string(&pairs).unwrap();
        let browser = Session {
            cookie: session.cookie.clone(),
            csrf: None,
        };
        self.app
            .http
            .request(
                "POST",
                &self.url(path),
                &browser,
                &[("content-type", "application/x-www-form-urlencoded")],
                Some(body.into_bytes()),
            )
            .await
    }

    /// The site form with a file, as a browser sends it: multipart, the CSRF token a field among the others.
    async fn multipart(
        &self,
        path: &str,
        session: &Session,
        fields: &[(&str, &str)],
        file: Option<(&str, &[u8])>,
    ) -> Reply {
        let boundary = "----infusafe-test-7MA4YWxkTrZu0gW";
        let mut body: Vec<u8> = Vec::new();
        let token = session.csrf.clone().unwrap_or_default();
        let mut all = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        for (name, value) in all {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                    .as_bytes(),
            );
        }
        if let Some((filename, bytes)) = file {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"{filename}\"\r\nContent-Type: image/jpeg\r\n\r\n")
                    .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let browser = Session {
            cookie: session.cookie.clone(),
            csrf: None,
        };
        let content_type = format!("multipart/form-data; boundary={boundary}");
        self.app
            .http
            .request(
                "POST",
                &self.url(path),
                &browser,
                &[("content-type", &content_type)],
                Some(body),
            )
            .await
    }

    /// The newest event of a kind in p1's record.
    async fn newest(&self, kind: &str) -> Option<server::journal::Entry> {
        self.app
            .record(&self.world.p1)
            .await
            .into_iter()
            .find(|e| e.kind == kind)
    }
}

fn location(r: &Reply) -> String {
    r.headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

#[track_caller]
fn saved_at(r: &Reply, p1: &str) -> String {
    assert_eq!(
        r.status,
        303,
        "{}",
        r.text().chars().take(600).collect::<String>()
    );
    let to = location(r);
    assert!(
        to.starts_with(&format!("/p/{p1}/log/entries/")),
        "redirects to the saved entry: {to}"
    );
    to
}

async fn caregiver_writes_and_the_nurse_reads(backend: Backend) {
    let Some(t) = Log::start(backend).await else {
        return;
    };
    let p1 = t.world.p1.clone();
    let caregiver = t.app.login(User::Caregiver1).await;
    let nurse = t.app.login(User::Nurse).await;

    // How I felt: worse, faint and chills. Triage calls faintness an emergency: the saved page offers the
    // symptom check at once, pre-filled with what was ticked.
    for page in [
        "/p/{p1}/log",
        "/p/{p1}/log/felt",
        "/p/{p1}/log/site",
        "/p/{p1}/log/question",
    ] {
        let r = t.get(page, &caregiver).await;
        assert_eq!(r.status, 200, "{page}");
    }
    let r = t
        .form(
            "/p/{p1}/log/felt",
            &caregiver,
            &[
                ("compared", "worse"),
                ("symptom", "feeling_faint"),
                ("symptom", "chills"),
                ("text", "Pale and shaky after the dose"),
            ],
        )
        .await;
    let saved = saved_at(&r, &p1);
    // A form read to its end keeps its connection for the next request.
    assert!(r.headers.get("connection").is_none());
    let felt = t
        .newest("how_i_felt")
        .await
        .expect("how I felt is recorded");
    assert_eq!(felt.source, "caregiver");
    assert_eq!(felt.payload["compared"], "worse");
    assert_eq!(felt.payload["symptoms"], json!(["feeling_faint", "chills"]));
    assert_eq!(felt.payload["text"], "Pale and shaky after the dose");
    assert_eq!(felt.payload["display_name"], "caregiver1 (test)");
    let page = t.get(&saved, &caregiver).await.expect_status(200).text();
    assert!(page.contains("can be an emergency"), "{page}");
    // The emergency number comes first in the page, as on the symptom check's answer.
    let main = page
        .split("<main id=\"main\" tabindex=\"-1\">")
        .nth(1)
        .unwrap_or_default();
    assert!(
        main.trim_start()
            .starts_with("<a class=\"call-big\" href=\"tel:112\""),
        "the emergency number first: {}",
        main.chars().take(200).collect::<String>()
    );
    assert!(
        page.contains(&format!(
            "/p/{p1}/check?observation=feeling_faint&#38;observation=chills"
        )),
        "the check is offered, pre-filled: {page}"
    );
    let check = t
        .get(
            "/p/{p1}/check?observation=feeling_faint&observation=chills",
            &caregiver,
        )
        .await
        .expect_status(200)
        .text();
    assert!(
        check.contains("value=\"feeling_faint\" checked"),
        "pre-ticked"
    );
    assert!(
        !check.contains("value=\"fever\" checked"),
        "only what was written"
    );

    // At the end of an infusion, Today's after-infusion checklist leads here too.
    let today = t.get("/p/{p1}/today?phase=after", &caregiver).await.text();
    assert!(
        today.contains(&format!("/p/{p1}/log/felt?after=latest")),
        "{today}"
    );

    // The caregiver's pages name the patient; the patient's say "I" and "my".
    let log = t.get("/p/{p1}/log", &caregiver).await.text();
    assert!(log.contains(">How Pat felt</a>"), "{log}");
    assert!(
        log.contains(">A question for Pat&#39;s nurse</a>")
            || log.contains(">A question for Pat's nurse</a>")
    );
    let patient = t.app.login(User::Patient1).await;
    let own = t.get("/p/{p1}/log/felt", &patient).await.text();
    assert!(own.contains("<h1>How I felt</h1>") && own.contains("Compared with before, I feel"));
    let nurse_log = t.get("/p/{p1}/log", &nurse).await.text();
    assert!(
        !nurse_log.contains("write-log"),
        "the care team reads the log, it does not write in it"
    );

    // Better, nothing noticed: nothing to check.
    let r = t
        .form("/p/{p1}/log/felt", &caregiver, &[("compared", "better")])
        .await;
    let calm = t.get(&saved_at(&r, &p1), &caregiver).await.text();
    assert!(
        !calm.contains("/check?"),
        "no check offered when triage sees nothing"
    );

    // What I see at my site, with a photo: stored beside the record, named in the event by its SHA-256,
    // served to the patient's people and to no one else.
    let r = t
        .multipart(
            "/p/{p1}/log/site",
            &caregiver,
            &[("sign", "new_redness_at_site"), ("text", "pink ring, 2 cm")],
            Some(("site.jpg", JPEG)),
        )
        .await;
    let saved = saved_at(&r, &p1);
    let site = t
        .newest("site_seen")
        .await
        .expect("the site entry is recorded");
    assert_eq!(site.source, "caregiver");
    assert_eq!(site.payload["signs"], json!(["new_redness_at_site"]));
    assert_eq!(site.payload["photo"]["media_type"], "image/jpeg");
    assert_eq!(site.payload["photo"]["bytes"], JPEG.len());
    let sha = site.payload["photo"]["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    let page = t.get(&saved, &caregiver).await.text();
    assert!(
        page.contains(&format!("/p/{p1}/log/photos/{sha}")),
        "{page}"
    );
    assert!(
        page.contains("/check?observation=new_redness_at_site"),
        "new redness: triage says call"
    );
    let photo = format!("/p/{p1}/log/photos/{sha}");
    for (who, expect) in [
        (User::Patient1, 200),
        (User::Caregiver1, 200),
        (User::Nurse, 200),
        (User::Patient2, 404),
        (User::NurseB, 404),
    ] {
        let session = t.app.login(who).await;
        let r = t.get(&photo, &session).await;
        assert_eq!(r.status, expect, "{who:?} reads the photo");
        if expect == 200 {
            assert_eq!(r.body.as_ref(), JPEG);
            assert_eq!(r.headers["content-type"], "image/jpeg");
        }
    }
    assert_eq!(
        t.get(&photo, &Session::default()).await.status,
        303,
        "sign in first"
    );

    // A plain site entry without a photo works as an urlencoded form too.
    let r = t.form("/p/{p1}/log/site", &caregiver, &[]).await;
    saved_at(&r, &p1);

    // The nurse sees the entries on the patient's page and in the chart, beside alarms and doses.
    let page = t
        .get(&format!("/nurse/patients/{p1}"), &nurse)
        .await
        .expect_status(200)
        .text();
    assert!(page.contains("The patient&#39;s own log") || page.contains("The patient's own log"));
    assert!(page.contains("How I felt: worse"), "{page}");
    assert!(page.contains("Pale and shaky after the dose"));
    assert!(page.contains("What I see at my site"));
    assert!(
        page.contains("How I felt, alarms and infusions"),
        "the chart"
    );
    assert!(
        page.contains("better"),
        "the chart says in words how the patient felt"
    );
    assert!(page.contains(&format!("/p/{p1}/log/photos/{sha}")));
    // And on the patient's own log page, under its own filter.
    let own = t.get("/p/{p1}/log?kind=own", &caregiver).await.text();
    assert!(own.contains("How I felt: worse") && own.contains("What I see at my site"));
}

async fn questions_are_answered_by_the_care_team(backend: Backend) {
    let Some(t) = Log::start(backend).await else {
        return;
    };
    let p1 = t.world.p1.clone();
    let patient = t.app.login(User::Patient1).await;
    let nurse = t.app.login(User::Nurse).await;
    let r = t
        .form(
            "/p/{p1}/log/question",
            &patient,
            &[("text", "May I shower with the dressing on?")],
        )
        .await;
    let saved = saved_at(&r, &p1);
    let question = t.newest("question_asked").await.unwrap();
    assert_eq!(question.source, "patient");
    assert!(
        t.get(&saved, &patient)
            .await
            .text()
            .contains("No answer yet")
    );
    // Many entries later, the question still waits on the nurse's page with its form.
    for _ in 0..21 {
        let r = t
            .form("/p/{p1}/log/felt", &patient, &[("compared", "same")])
            .await;
        saved_at(&r, &p1);
    }
    let page = t.get(&format!("/nurse/patients/{p1}"), &nurse).await.text();
    assert!(page.contains("1 question to answer"), "{page}");
    let answer = format!("/nurse/patients/{p1}/questions/{}/answer", question.id);
    assert!(page.contains(&answer));
    // Only the care team answers; an empty answer says what to do.
    assert_eq!(
        t.form(&answer, &patient, &[("text", "yes")]).await.status,
        403
    );
    let r = t.form(&answer, &nurse, &[("text", "  ")]).await;
    assert_eq!(r.status, 422);
    assert!(
        r.text().contains("write your answer in the box"),
        "{}",
        r.text()
    );
    let r = t
        .form(
            &answer,
            &nurse,
            &[("text", "Yes, with the shower cover we gave you.")],
        )
        .await;
    assert_eq!(r.status, 303);
    let answered = t.newest("question_answered").await.unwrap();
    assert_eq!(answered.source, "nurse");
    assert_eq!(answered.payload["question"], question.id);
    // The patient reads the answer with their question, and on the log.
    let page = t.get(&saved, &patient).await.text();
    assert!(
        page.contains("Yes, with the shower cover we gave you."),
        "{page}"
    );
    let log = t.get("/p/{p1}/log", &patient).await.text();
    assert!(log.contains("The nurse answered"));
    // An answer to something that is not a question of this patient is a 404.
    let wrong = format!("/nurse/patients/{p1}/questions/{}/answer", answered.id);
    assert_eq!(t.form(&wrong, &nurse, &[("text", "x")]).await.status, 404);
}

async fn only_the_patient_side_writes_and_errors_say_what_to_do(backend: Backend) {
    let Some(t) = Log::start(backend).await else {
        return;
    };
    let nurse = t.app.login(User::Nurse).await;
    let patient = t.app.login(User::Patient1).await;
    let other = t.app.login(User::Patient2).await;
    // The care team reads the log but does not write the patient's own words.
    let r = t
        .form("/p/{p1}/log/felt", &nurse, &[("compared", "same")])
        .await;
    assert_eq!(r.status, 403);
    // Another patient cannot even see that the record exists.
    let r = t
        .form("/p/{p1}/log/felt", &other, &[("compared", "same")])
        .await;
    assert_eq!(r.status, 404);
    // No CSRF token, no entry.
    let browser = Session {
        cookie: patient.cookie.clone(),
        csrf: None,
    };
    let r = t
        .app
        .http
        .request(
            "POST",
            &t.url("/p/{p1}/log/felt"),
            &browser,
            &[("content-type", "application/x-www-form-urlencoded")],
            Some(b"compared=same".to_vec()),
        )
        .await;
    assert_eq!(r.status, 403);
    let r = t
        .multipart(
            "/p/{p1}/log/site",
            &Session {
                csrf: None,
                ..patient.clone()
            },
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 403, "a multipart form needs the token too");
    // Each form error names what is wrong and what to do, and keeps what was written.
    for (path, fields, says) in [
        (
            "/p/{p1}/log/felt",
            vec![("text", "tired")],
            "Choose how you feel compared with before",
        ),
        (
            "/p/{p1}/log/felt",
            vec![("compared", "same"), ("symptom", "tubing_kinked")],
            "not one of the symptoms on this form",
        ),
        (
            "/p/{p1}/log/felt",
            vec![("compared", "same"), ("symptom", "<b>x</b>")],
            "Tick only the boxes shown",
        ),
        (
            "/p/{p1}/log/question",
            vec![("text", "   ")],
            "Write your question in the box first.",
        ),
        (
            "/p/{p1}/log/site",
            vec![("sign", "fever")],
            "not one of the signs on this form",
        ),
    ] {
        let r = t.form(path, &patient, &fields).await;
        assert_eq!(r.status, 422, "{path} {fields:?}");
        let page = r.text();
        assert!(page.contains(says), "{path}: {page}");
        assert!(
            page.contains("role=\"alert\""),
            "{path}: the error is announced"
        );
    }
    let long = "x".repeat(1001);
    let r = t
        .form("/p/{p1}/log/question", &patient, &[("text", &long)])
        .await;
    assert_eq!(r.status, 422);
    assert!(r.text().contains("shorten it to at most 1000"));
    // A file that is not a picture is refused by its bytes, whatever its name says.
    let r = t
        .multipart(
            "/p/{p1}/log/site",
            &patient,
            &[],
            Some(("site.jpg", b"<svg onload=alert(1)>")),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.text().contains("is not a JPEG, PNG or WebP picture"));
    // Too large: refused before it is kept.
    let big = [
        JPEG,
        &vec![0u8; server::services::patient_log::PHOTO_BYTES_MAX],
    ]
    .concat();
    let r = t
        .multipart("/p/{p1}/log/site", &patient, &[], Some(("big.jpg", &big)))
        .await;
    assert!(r.status == 413 || r.status == 422, "{}", r.status);
    assert_eq!(t.app.count_rows("srv_log_photos").await, 0);
    // Only the site form may send a large multipart body; anywhere else the usual limit holds.
    let r = t
        .multipart(
            "/p/{p1}/log/question",
            &patient,
            &[],
            Some(("big.jpg", &big)),
        )
        .await;
    assert_eq!(
        r.status,
        413,
        "{}",
        r.text().chars().take(300).collect::<String>()
    );
    assert!(t.newest("site_seen").await.is_none(), "nothing was saved");
    // The body was refused unread, so the connection is not offered for another request (the next form would be
    // lost on it).
    assert_eq!(
        r.headers.get("connection").and_then(|v| v.to_str().ok()),
        Some("close")
    );
    // An infusion that is not in the record cannot be named.
    let r = t
        .form(
            "/p/{p1}/log/felt",
            &patient,
            &[("compared", "same"), ("infusion", "999999")],
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.text().contains("That infusion is not in this record"));
    // A pump may not write any of it through the link.
    let pump = t.app.pump(&t.world.pump1_token);
    for (kind, data) in [
        ("how_i_felt", json!({"compared": "better"})),
        ("site_seen", json!({"signs": []})),
        ("question_asked", json!({"text": "hi"})),
        ("question_answered", json!({"question": 1, "text": "hi"})),
    ] {
        let r = pump
            .batch(
                json!([{"seq": 1, "occurred_at": jiff::Timestamp::now().to_string(), "kind": kind, "data": data}]),
                None,
            )
            .await;
        assert_eq!(r.status, 422, "{kind}: {}", r.text());
    }
}

async fn the_secret_calendar_address(backend: Backend) {
    let Some(t) = Log::start(backend).await else {
        return;
    };
    let p1 = t.world.p1.clone();
    let patient = t.app.login(User::Patient1).await;
    let nurse = t.app.login(User::Nurse).await;
    let reminders = t
        .get("/p/{p1}/reminders", &patient)
        .await
        .expect_status(200)
        .text();
    assert!(reminders.contains("No secret address yet"));
    // Each reminder's note, as the calendar file carries it.
    assert!(
        reminders.contains("From your care team: Take the bag out of the fridge one hour before."),
        "{reminders}"
    );
    let r = t
        .form("/p/{p1}/reminders/calendar-link", &patient, &[])
        .await;
    assert_eq!(r.status, 303);
    let to = location(&r);
    let token = to
        .split("new=")
        .nth(1)
        .and_then(|s| s.split('#').next())
        .unwrap()
        .to_string();
    assert_eq!(token.len(), 64);
    let page = t.get(&to, &patient).await.expect_status(200);
    assert_eq!(page.headers["referrer-policy"], "no-referrer");
    assert!(page.text().contains(&format!("/cal/{token}.ics")));
    // The token is stored only as its hash.
    let stored: i64 = sqlx::Row::try_get(
        &sqlx::query("SELECT COUNT(*) AS n FROM srv_calendar_links WHERE token_hash = $1")
            .bind(token.clone())
            .fetch_one(&t.app.state().db.pool)
            .await
            .unwrap(),
        "n",
    )
    .unwrap();
    assert_eq!(stored, 0);
    // Someone else who knows the address cannot display it on their own page.
    let caregiver = t.app.login(User::Caregiver1).await;
    let shown = t
        .get(
            &format!("/p/{p1}/reminders?new={}", "0".repeat(64)),
            &caregiver,
        )
        .await
        .text();
    assert!(
        !shown.contains("/cal/"),
        "only the working address is ever shown"
    );
    // The phone reads it without a session; a plan change reaches it by itself.
    let cal = format!("/cal/{token}.ics");
    let r = t.get(&cal, &Session::default()).await.expect_status(200);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/calendar")
    );
    let before = r.text();
    assert!(before.starts_with("BEGIN:VCALENDAR"));
    let mut plan = crate::support::plan_json(5, 10);
    plan["therapy"]["name"] = json!("Renamed therapy for the test");
    let reply = t.app.put_plan(&nurse, &p1, plan).await;
    let version = reply.status;
    assert!(version == 200 || version == 409, "{}", reply.text());
    if version == 409 {
        // The API wants the current version: send it.
        let current = t
            .app
            .get(&format!("/api/patients/{p1}/plan"), &nurse)
            .await
            .json();
        let mut plan = crate::support::plan_json(5, 10);
        plan["therapy"]["name"] = json!("Renamed therapy for the test");
        t.app
            .put(
                &format!("/api/patients/{p1}/plan"),
                &nurse,
                &json!({"plan": plan, "version": current["version"]}),
            )
            .await
            .expect_status(200);
    }
    let after = t
        .get(&cal, &Session::default())
        .await
        .expect_status(200)
        .text();
    assert!(after.contains("Renamed therapy for the test"), "{after}");
    assert!(
        t.get("/p/{p1}/reminders", &patient)
            .await
            .text()
            .contains("last read by a calendar")
    );
    // The nurse revokes it: the address is a 404 that says what to do.
    let r = t
        .form("/p/{p1}/reminders/calendar-link/revoke", &nurse, &[])
        .await;
    assert_eq!(r.status, 303);
    let gone = t.get(&cal, &Session::default()).await;
    assert_eq!(gone.status, 404);
    assert!(
        gone.text().contains("replaced or revoked"),
        "{}",
        gone.text()
    );
    // A new address replaces the old one; only the new one works.
    let r = t
        .form("/p/{p1}/reminders/calendar-link", &caregiver, &[])
        .await;
    let second = location(&r)
        .split("new=")
        .nth(1)
        .unwrap()
        .split('#')
        .next()
        .unwrap()
        .to_string();
    let r = t
        .form("/p/{p1}/reminders/calendar-link", &patient, &[])
        .await;
    let third = location(&r)
        .split("new=")
        .nth(1)
        .unwrap()
        .split('#')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        t.get(&format!("/cal/{second}.ics"), &Session::default())
            .await
            .status,
        404
    );
    assert_eq!(
        t.get(&format!("/cal/{third}.ics"), &Session::default())
            .await
            .status,
        200
    );
    for bad in [
        "/cal/nope.ics",
        "/cal/x",
        &format!("/cal/{}.ics", "f".repeat(64)),
    ] {
        assert_eq!(t.get(bad, &Session::default()).await.status, 404, "{bad}");
    }
    // Another clinic's nurse or another patient cannot touch it.
    let nurse_b = t.app.login(User::NurseB).await;
    let other = t.app.login(User::Patient2).await;
    for s in [&nurse_b, &other] {
        assert_eq!(
            t.form("/p/{p1}/reminders/calendar-link/revoke", s, &[])
                .await
                .status,
            404
        );
    }
    // Every making and revoking is in the record with who did it.
    let events: Vec<(String, String, Value)> = t
        .app
        .record(&p1)
        .await
        .into_iter()
        .filter(|e| e.kind.starts_with("calendar_link_"))
        .map(|e| (e.kind, e.source, e.payload))
        .rev()
        .collect();
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .map(|(k, s, _)| (k.as_str(), s.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("calendar_link_created", "patient"),
            ("calendar_link_revoked", "nurse"),
            ("calendar_link_created", "caregiver"),
            ("calendar_link_created", "patient"),
        ]
    );
    assert_eq!(events[3].2["replaced_previous"], true);
    assert_eq!(events[0].2["display_name"], "patient1 (test)");
}

both_backends!(
    caregiver_writes_and_the_nurse_reads,
    questions_are_answered_by_the_care_team,
    only_the_patient_side_writes_and_errors_say_what_to_do,
    the_secret_calendar_address,
);
