//! The screens over real HTTP against the real server on a fresh database: every page as each role and as
//! an outsider, CSRF on every form, hostile form input answered with a 4xx page (never a 500), and the
//! actions a page takes (checklist tick, symptom check, alarm step and acknowledgement, plan save) landing
//! in the record. Browser behaviour (live updates, axe, print) is in tests/browser.

use serde_json::{Value, json};

use crate::support::{Backend, Reply, Session, TestServer, User, World};

const PLAN_TOML: &str = include_str!("../../../../examples/plans/antibiotics-picc.toml");

struct Web {
    server: TestServer,
    world: World,
}

impl Web {
    async fn start() -> Web {
        let (server, world) = TestServer::seeded(Backend::Sqlite)
            .await
            .expect("SQLite always runs");
        let plan = care::TherapyPlan::from_toml(PLAN_TOML).expect("the example plan reads");
        let value: Value = serde_json::from_str(&plan.to_json()).expect("plan JSON");
        server::services::plans::seed(server.state(), &world.p1, value)
            .await
            .expect("the example plan is accepted by the server");
        Web { server, world }
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}{}",
            self.server.url,
            path.replace("{p1}", &self.world.p1)
                .replace("{p2}", &self.world.p2)
                .replace("{pb}", &self.world.pb)
        )
    }

    /// A signed-in person, or nobody (`None`).
    async fn session(&self, who: Option<User>) -> Session {
        match who {
            Some(user) => self.server.login(user).await,
            None => Session::default(),
        }
    }

    async fn get(&self, path: &str, session: &Session) -> Reply {
        self.server.http.get(&self.url(path), session).await
    }

    /// A form post as a browser sends it: the CSRF token in the body (not the header).
    async fn post_form(
        &self,
        path: &str,
        session: &Session,
        fields: &[(&str, &str)],
        with_token: bool,
    ) -> Reply {
        let mut pairs: Vec<(&str, &str)> = fields.to_vec();
        let token = session.csrf.clone().unwrap_or_default();
        if with_token {
            pairs.push(("csrf_token", &token));
        }
        let body = serde_urlencoded::to_string(&pairs).unwrap();
        let browser = Session {
            cookie: session.cookie.clone(),
            csrf: None,
        };
        self.server
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

    async fn timeline_kinds(&self, patient: &str) -> Vec<(String, Value)> {
        let events = self.server.record(patient).await;
        events.into_iter().map(|e| (e.kind, e.payload)).collect()
    }
}

fn location(r: &Reply) -> String {
    r.headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// One row: a path, then the expected status for each of the people in `WHO`.
fn check(r: &Reply, expect: u16, what: &str) {
    assert_eq!(
        r.status,
        expect,
        "{what}: got {} {}",
        r.status,
        r.text().chars().take(400).collect::<String>()
    );
    assert_ne!(r.status, 500, "{what}: a 500");
}

const WHO: [Option<User>; 6] = [
    None,
    Some(User::Nurse),
    Some(User::Patient1),
    Some(User::Caregiver1),
    Some(User::Patient2),
    Some(User::NurseB),
];

fn name(who: Option<User>) -> &'static str {
    who.map_or("anonymous", User::username)
}

#[tokio::test]
async fn every_page_as_every_role() {
    let web = Web::start().await;
    let mut sessions = Vec::new();
    for who in WHO {
        sessions.push(web.session(who).await);
    }
    //                                          anon nurse pat1 care1 pat2 nurseB
    let table: &[(&str, [u16; 6])] = &[
        ("/p/{p1}/today", [303, 200, 200, 200, 404, 404]),
        ("/p/{p1}/today?phase=after", [303, 200, 200, 200, 404, 404]),
        (
            "/p/{p1}/today?phase=%3Cscript%3E",
            [303, 200, 200, 200, 404, 404],
        ),
        ("/p/{p1}/pump", [303, 200, 200, 200, 404, 404]),
        ("/p/{p1}/check", [303, 200, 200, 200, 404, 404]),
        ("/p/{p1}/log", [303, 200, 200, 200, 404, 404]),
        (
            "/p/{p1}/log?kind=bogus&days=-1",
            [303, 200, 200, 200, 404, 404],
        ),
        ("/p/{p1}/reminders", [303, 200, 200, 200, 404, 404]),
        ("/p/{p1}/reminders.ics", [303, 200, 200, 200, 404, 404]),
        ("/p/{p1}/card", [303, 200, 200, 200, 404, 404]),
        (
            "/p/{p1}/what-to-do/before.hands",
            [303, 200, 200, 200, 404, 404],
        ),
        (
            "/p/{p1}/what-to-do/no.such.item",
            [303, 404, 404, 404, 404, 404],
        ),
        ("/p/{pb}/today", [303, 404, 404, 404, 404, 200]),
        ("/p/not-a-patient/today", [303, 404, 404, 404, 404, 404]),
        ("/nurse", [303, 200, 403, 403, 403, 200]),
        ("/nurse/patients/{p1}", [303, 200, 403, 403, 403, 404]),
        ("/login", [200, 200, 200, 200, 200, 200]),
        ("/static/nope.css", [404, 404, 404, 404, 404, 404]),
    ];
    for (path, expected) in table {
        for (i, who) in WHO.iter().map(|w| name(*w)).enumerate() {
            let r = web.get(path, &sessions[i]).await;
            check(&r, expected[i], &format!("GET {path} as {who}"));
            if r.status == 303 && who == "anonymous" {
                assert!(
                    location(&r).starts_with("/login?next="),
                    "GET {path} as anonymous redirects to sign in: {}",
                    location(&r)
                );
            }
            if r.status == 200 && path.ends_with(".ics") {
                assert!(
                    r.text().starts_with("BEGIN:VCALENDAR"),
                    "{path} is a calendar"
                );
            } else if r.status == 200 {
                let html = r.text();
                assert_eq!(
                    r.headers.get("cache-control").unwrap(),
                    "no-store",
                    "{path} is not cached"
                );
                assert!(
                    html.contains("class=\"skip\" href=\"#main\""),
                    "{path} as {who}: skip link"
                );
                assert!(
                    html.contains("<main id=\"main\""),
                    "{path} as {who}: main landmark"
                );
                assert!(
                    html.contains("care team&#39;s own instructions come first")
                        || html.contains("care team's own instructions come first"),
                    "{path} as {who}: the care team comes first"
                );
                // Every form carries a CSRF token.
                assert_eq!(
                    html.matches("<form method=\"post\"").count(),
                    html.matches("name=\"csrf_token\"").count(),
                    "{path} as {who}: a form without a CSRF token"
                );
            }
        }
    }
    // The patient's pages carry the plan's numbers as tel: links.
    let today = web.get("/p/{p1}/today", &sessions[2]).await.text();
    assert!(
        today.contains("href=\"tel:+31205550101\""),
        "the nurse's number is a tel: link"
    );
    assert!(
        today.contains("href=\"tel:112\""),
        "the emergency number is a tel: link"
    );
    // The static files are served with long caching under their hashed names.
    let css = today
        .split("href=\"/static/")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    let r = web
        .get(&format!("/static/{css}"), &Session::default())
        .await;
    check(&r, 200, "stylesheet");
    assert!(
        r.headers
            .get("cache-control")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("immutable")
    );
}

#[tokio::test]
async fn forms_need_the_csrf_token_and_actions_reach_the_record() {
    let web = Web::start().await;
    let patient = web.session(Some(User::Patient1)).await;

    let r = web
        .post_form(
            "/p/{p1}/checklist",
            &patient,
            &[("item_id", "before.hands"), ("answer", "ok")],
            false,
        )
        .await;
    check(&r, 403, "checklist without CSRF token");
    assert!(
        !web.timeline_kinds(&web.world.p1)
            .await
            .iter()
            .any(|(k, _)| k == "checklist_answered"),
        "a refused form writes nothing"
    );

    let r = web
        .post_form(
            "/p/{p1}/checklist",
            &patient,
            &[("item_id", "before.hands"), ("answer", "ok")],
            true,
        )
        .await;
    check(&r, 303, "checklist tick");
    assert!(
        location(&r).contains("/today?phase=before&saved=1#item-"),
        "{}",
        location(&r)
    );
    let events = web.timeline_kinds(&web.world.p1).await;
    let tick = events
        .iter()
        .find(|(k, _)| k == "checklist_answered")
        .expect("the tick is in the record");
    assert_eq!(tick.1["item_id"], "before.hands");
    assert_eq!(tick.1["answer"], "ok");
    assert_eq!(tick.1["role"], "patient");
    let page = web.get("/p/{p1}/today?phase=before", &patient).await.text();
    assert!(page.contains("✓ Done at"), "the tick shows as done");

    let r = web
        .post_form(
            "/p/{p1}/checklist",
            &patient,
            &[("item_id", "before.supplies"), ("answer", "problem")],
            true,
        )
        .await;
    check(&r, 303, "checklist problem");
    assert!(
        location(&r).ends_with("/what-to-do/before.supplies"),
        "a problem leads straight to what to do: {}",
        location(&r)
    );

    // Hostile input: 4xx pages naming the problem, never a 500, nothing written.
    let before = web.timeline_kinds(&web.world.p1).await.len();
    for (fields, expect) in [
        (vec![("item_id", "no.such.item"), ("answer", "ok")], 422),
        (vec![("item_id", "before.hands"), ("answer", "maybe")], 422),
        (vec![("item_id", "before.hands")], 422),
    ] {
        let r = web
            .post_form("/p/{p1}/checklist", &patient, &fields, true)
            .await;
        check(&r, expect, &format!("checklist with {fields:?}"));
        assert!(r.text().contains("<html"), "an HTML page explains it");
    }
    let huge = "x".repeat(200 * 1024);
    let r = web
        .post_form("/p/{p1}/checklist", &patient, &[("item_id", &huge)], true)
        .await;
    assert!(
        r.status == 413 || r.status == 403,
        "a huge form is refused: {}",
        r.status
    );
    let r = web
        .post_form(
            "/p/{p1}/check",
            &patient,
            &[("observation", "dragons")],
            true,
        )
        .await;
    check(&r, 422, "unknown observation");
    let r = web.post_form("/p/{p1}/check", &patient, &[], true).await;
    check(&r, 422, "empty symptom check");
    assert!(
        r.text().contains("Tick at least one"),
        "the empty check says what to do"
    );
    assert_eq!(
        web.timeline_kinds(&web.world.p1).await.len(),
        before,
        "refused forms write nothing"
    );

    // Another patient's record cannot be written through the form either.
    let other = web.session(Some(User::Patient2)).await;
    let r = web
        .post_form(
            "/p/{p1}/checklist",
            &other,
            &[("item_id", "before.hands"), ("answer", "ok")],
            true,
        )
        .await;
    check(&r, 404, "a checklist tick on someone else's record");
}

#[tokio::test]
async fn a_symptom_check_ending_in_an_emergency_puts_the_number_first() {
    let web = Web::start().await;
    let patient = web.session(Some(User::Patient1)).await;
    let r = web
        .post_form(
            "/p/{p1}/check",
            &patient,
            &[
                ("observation", "difficulty_breathing"),
                ("observation", "fever"),
            ],
            true,
        )
        .await;
    // POST-redirect-GET: the answer has its own address, read back from the record.
    check(&r, 303, "symptom check");
    let location = r
        .headers
        .get("location")
        .and_then(|l| l.to_str().ok())
        .expect("the check redirects to its answer")
        .to_string();
    assert!(
        location.starts_with(&format!("/p/{}/check/result/", web.world.p1)),
        "redirected to {location}"
    );
    let r = web.get(&location, &patient).await;
    check(&r, 200, "symptom check result");
    let html = r.text();
    // Reloading the answer records nothing more: exactly one check in the record.
    check(&web.get(&location, &patient).await, 200, "reloaded result");
    let checks = web
        .timeline_kinds(&web.world.p1)
        .await
        .into_iter()
        .filter(|(k, _)| k == "symptom_check")
        .count();
    assert_eq!(
        checks, 1,
        "a reloaded result must not record the check again"
    );
    // "Who to call" starts with the emergency number too, and the care team's office-hours note is left out.
    let who = html
        .split("<h2>Who to call</h2>")
        .nth(1)
        .expect("a Who to call list");
    let first_tel = who.split("href=\"tel:").nth(1).unwrap_or_default();
    assert!(
        first_tel.starts_with("112\""),
        "the emergency number heads Who to call: {}",
        who.chars().take(300).collect::<String>()
    );
    assert!(
        !html.contains("office hours"),
        "an emergency answer leaves out the office-hours note"
    );
    // Someone else's check, or a made-up id, is not found.
    let nurse_of_other = web.session(Some(User::Patient2)).await;
    check(
        &web.get(&location, &nurse_of_other).await,
        404,
        "another patient's check result",
    );
    check(
        &web.get("/p/{p1}/check/result/999999999", &patient).await,
        404,
        "an unknown check",
    );
    let main = html
        .split("<main id=\"main\" tabindex=\"-1\">")
        .nth(1)
        .expect("a main element");
    assert!(
        main.trim_start()
            .starts_with("<a class=\"call-big\" href=\"tel:112\""),
        "the emergency number comes first in main: {}",
        main.chars().take(200).collect::<String>()
    );
    assert!(html.contains("This is an emergency"));
    let events = web.timeline_kinds(&web.world.p1).await;
    let check_event = events
        .iter()
        .find(|(k, _)| k == "symptom_check")
        .expect("recorded");
    assert_eq!(check_event.1["level"], "emergency");

    // A site problem alone is not an emergency and shows no emergency block.
    let r = web
        .post_form(
            "/p/{p1}/check",
            &patient,
            &[("observation", "dressing_loose")],
            true,
        )
        .await;
    check(&r, 303, "mild symptom check");
    let location = r.headers["location"].to_str().unwrap().to_string();
    let r = web.get(&location, &patient).await;
    check(&r, 200, "mild symptom check result");
    assert!(
        !r.text().contains("call-big"),
        "no emergency number for a loose dressing"
    );
}

#[tokio::test]
async fn an_alarm_from_the_pump_link_becomes_the_alarm_guide_and_can_be_acknowledged() {
    let web = Web::start().await;
    let patient = web.session(Some(User::Patient1)).await;
    let nurse = web.session(Some(User::Nurse)).await;
    let events = json!([{"seq": 1, "occurred_at": jiff::Timestamp::now().to_string(), "kind": "alarm_raised", "data": {"alarm": "occlusion_downstream", "priority": "high"}}]);
    let r = web
        .server
        .pump(&web.world.pump1_token)
        .batch(events, None)
        .await;
    check(&r, 200, "pump batch");

    let page = web.get("/p/{p1}/pump", &patient).await.text();
    assert!(
        page.contains("Pump alarm: Blocked line"),
        "the page is the alarm guide"
    );
    assert!(page.contains("data-alarm-id=\"occlusion_downstream-"));
    assert!(
        page.matches("I did this").count() >= 3,
        "numbered steps with I did this"
    );
    assert!(page.contains("Acknowledge alarm"));
    // Clock times are the patient's (the plan's time zone), not the server's.
    let zone = jiff::tz::TimeZone::get("Europe/Amsterdam").unwrap();
    let local = |t: jiff::Timestamp| {
        t.to_zoned_datetime(zone.clone())
            .strftime("%H:%M")
            .to_string()
    };
    let now = jiff::Timestamp::now();
    let minute_later = now
        .checked_add(jiff::SignedDuration::from_secs(60))
        .unwrap();
    assert!(
        page.contains(&format!("Raised at {} (", local(now)))
            || page.contains(&format!("Raised at {} (", local(minute_later))),
        "raised at the patient's local time {}: {page}",
        local(now)
    );
    // The pump's own word, the care team's general note before the steps, and what happens next, with a time.
    assert!(
        page.contains("&ldquo;Occlusion&rdquo;"),
        "the pump's own word"
    );
    let notes_at = page
        .find("From your care team")
        .expect("the care team's notes");
    assert!(
        notes_at < page.find("What to do now").unwrap(),
        "care team first"
    );
    assert!(page.contains("office hours"), "the plan's general note");
    assert!(
        page.contains("If no one acknowledges it by "),
        "says when the nurse is called"
    );

    // Every other page the patient opens carries the banner: the alarm, the pump's word, step 1, the actions.
    for path in ["/p/{p1}/today", "/p/{p1}/check", "/p/{p1}/log"] {
        let other = web.get(path, &patient).await.text();
        let banner = other
            .split("<div id=\"alarm-banner\" data-live>")
            .nth(1)
            .and_then(|b| b.split("</section>").next())
            .unwrap_or_else(|| panic!("no banner on {path}"));
        for want in [
            "Blocked line",
            "Occlusion",
            "Step 1:",
            "Open the steps",
            "Acknowledge",
            "name=\"back\" value=\"/p/",
        ] {
            assert!(
                banner.contains(want),
                "{path}: banner lacks {want}: {banner}"
            );
        }
    }
    // The nurse's pages about the patient carry no patient banner.
    let nurse_view = web.get("/p/{p1}/today", &nurse).await.text();
    assert!(!nurse_view.contains("class=\"alarm-banner"));

    let r = web
        .post_form(
            "/p/{p1}/alarms/occlusion_downstream/step",
            &patient,
            &[("step", "1")],
            true,
        )
        .await;
    check(&r, 303, "I did this");
    assert!(
        location(&r).ends_with("/pump#step-2"),
        "back at the next step: {}",
        location(&r)
    );
    let r = web
        .post_form(
            "/p/{p1}/alarms/occlusion_downstream/step",
            &patient,
            &[("step", "99")],
            true,
        )
        .await;
    check(&r, 422, "a step that does not exist");
    let page = web.get("/p/{p1}/pump", &patient).await.text();
    assert_eq!(page.matches("✓ Done").count(), 1, "step 1 shows as done");

    // Acknowledged from the banner on Today: back on Today; a forged `back` goes to the pump page, never away.
    let r = web
        .post_form(
            "/p/{p1}/alarms/occlusion_downstream/ack",
            &patient,
            &[("back", "https://evil.example/")],
            true,
        )
        .await;
    check(&r, 303, "acknowledge");
    assert!(location(&r).ends_with("/pump"), "{}", location(&r));
    let r = web
        .post_form(
            "/p/{p1}/alarms/occlusion_downstream/ack",
            &patient,
            &[("back", &format!("/p/{}/today", web.world.p1))],
            true,
        )
        .await;
    check(&r, 303, "acknowledge again from Today");
    assert_eq!(location(&r), format!("/p/{}/today", web.world.p1));
    let page = web.get("/p/{p1}/pump", &patient).await.text();
    assert!(page.contains("You acknowledged it at"), "{page}");

    let dash = web.get("/nurse", &nurse).await.text();
    let first_row = dash
        .split("<ul class=\"patients\">")
        .nth(1)
        .and_then(|s| s.split("</li>").next())
        .unwrap_or_default();
    assert!(
        first_row.contains("Pat One"),
        "the patient with the alarm is first"
    );
    assert!(
        first_row.contains("Acknowledged by patient1 (test) (patient)"),
        "{first_row}"
    );
    let r = web
        .post_form(
            "/p/{p1}/alarms/occlusion_downstream/ack",
            &nurse,
            &[
                ("note", "Phoned; tubing straightened."),
                ("back", "dashboard"),
            ],
            true,
        )
        .await;
    check(&r, 303, "nurse acknowledges");
    assert_eq!(location(&r), "/nurse");
    let dash = web.get("/nurse", &nurse).await.text();
    assert!(dash.contains("Note: Phoned; tubing straightened."));
    // The patient reads who acknowledged, and the nurse's note.
    let page = web.get("/p/{p1}/pump", &patient).await.text();
    assert!(
        page.contains("(nurse) acknowledged it at")
            && page.contains("Their note: \u{201c}Phoned; tubing straightened.\u{201d}"),
        "{page}"
    );
    let kinds: Vec<String> = web
        .timeline_kinds(&web.world.p1)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert!(
        kinds.contains(&"alarm_step_done".to_string())
            && kinds.iter().filter(|k| *k == "alarm_acknowledged").count() == 3,
        "{kinds:?}"
    );
}

#[tokio::test]
async fn the_plan_editor_checks_like_a_plan_file() {
    let web = Web::start().await;
    let nurse = web.session(Some(User::Nurse)).await;
    let page = web.get("/nurse/patients/{p1}", &nurse).await.text();
    assert!(
        page.contains("rate_ml_per_h = 200.0"),
        "the plan is shown as TOML"
    );
    let broken = PLAN_TOML.replace("rate_ml_per_h = 200.0", "rate_ml_per_h = -5.0");
    let r = web
        .post_form(
            "/nurse/patients/{p1}/plan",
            &nurse,
            &[("plan_toml", &broken), ("version", "1")],
            true,
        )
        .await;
    check(&r, 422, "a negative rate");
    assert!(
        r.text().contains("program.rate_ml_per_h"),
        "the error names the field"
    );
    let r = web
        .post_form(
            "/nurse/patients/{p1}/plan",
            &nurse,
            &[("plan_toml", "this is [not toml"), ("version", "1")],
            true,
        )
        .await;
    check(&r, 422, "not TOML");
    let r = web
        .post_form(
            "/nurse/patients/{p1}/plan",
            &nurse,
            &[("plan_toml", PLAN_TOML), ("version", "abc")],
            true,
        )
        .await;
    check(&r, 422, "a bad version");
    let changed = PLAN_TOML.replace("rate_ml_per_h = 200.0", "rate_ml_per_h = 150.0");
    let r = web
        .post_form(
            "/nurse/patients/{p1}/plan",
            &nurse,
            &[("plan_toml", &changed), ("version", "1")],
            true,
        )
        .await;
    check(&r, 303, "a good plan");
    let r = web
        .post_form(
            "/nurse/patients/{p1}/plan",
            &nurse,
            &[("plan_toml", &changed), ("version", "1")],
            true,
        )
        .await;
    check(&r, 409, "a stale version");
    let page = web.get("/nurse/patients/{p1}", &nurse).await.text();
    assert!(page.contains("rate_ml_per_h = 150.0"));
    let patient = web.session(Some(User::Patient1)).await;
    let r = web
        .post_form(
            "/nurse/patients/{p1}/plan",
            &patient,
            &[("plan_toml", &changed), ("version", "2")],
            true,
        )
        .await;
    check(&r, 403, "a patient cannot change the plan");
}

#[tokio::test]
async fn the_plan_editor_checks_the_drug_library_limits() {
    let web = Web::start().await;
    let nurse = web.session(Some(User::Nurse)).await;
    let page = web.get("/nurse/patients/{p1}", &nurse).await.text();
    assert!(
        page.contains("[therapy.limits]"),
        "the limits are shown in the plan TOML"
    );
    // The example's hard upper rate limit is 300 mL/h.
    let too_fast = PLAN_TOML.replace("rate_ml_per_h = 200.0", "rate_ml_per_h = 350.0");
    let r = web
        .post_form(
            "/nurse/patients/{p1}/plan",
            &nurse,
            &[("plan_toml", &too_fast), ("version", "1")],
            true,
        )
        .await;
    check(&r, 422, "a rate above the hard limit");
    let text = r.text();
    assert!(
        text.contains("program.rate_ml_per_h") && text.contains("upper hard limit 300"),
        "the error names the field and the limit: {text}"
    );
    assert!(
        text.contains("rate_ml_per_h = 350.0"),
        "the nurse's text is kept"
    );
    let changed = PLAN_TOML
        .replace(
            "rate_ml_per_h = [50.0, 100.0, 200.0, 250.0, 300.0]",
            "rate_ml_per_h = [50.0, 100.0, 200.0, 250.0, 400.0]",
        )
        .replace("rate_ml_per_h = 200.0", "rate_ml_per_h = 350.0")
        .replace(
            "end_action = \"stop\"",
            "end_action = \"stop\"\nsoft_limit_override_confirmed = true",
        );
    let r = web
        .post_form(
            "/nurse/patients/{p1}/plan",
            &nurse,
            &[("plan_toml", &changed), ("version", "1")],
            true,
        )
        .await;
    check(&r, 303, "wider limits and a confirmed soft-limit override");
    let page = web.get("/nurse/patients/{p1}", &nurse).await.text();
    assert!(
        page.contains("400.0") && page.contains("soft_limit_override_confirmed = true"),
        "the saved limits are shown"
    );
}

#[tokio::test]
async fn sign_in_and_out_through_the_form() {
    let web = Web::start().await;
    let http = &web.server.http;
    // Without the sign-in form's cookie: refused, with a page that says what to do.
    let body = "username=patient1&password=password-123&csrf_token=abc".to_string();
    let r = http
        .request(
            "POST",
            &web.url("/login"),
            &Session::default(),
            &[("content-type", "application/x-www-form-urlencoded")],
            Some(body.into_bytes()),
        )
        .await;
    check(&r, 403, "sign-in without the form cookie");
    // The real flow: GET the form, post it with its token and cookie.
    let form = web
        .get("/login?next=/p/{p1}/log", &Session::default())
        .await;
    let cookie = form.cookie();
    let html = form.text();
    let token = html
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    let next = html
        .split("name=\"next\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    let jar = Session {
        cookie: Some(cookie),
        csrf: None,
    };
    let post = |password: &str| {
        format!(
            "username=patient1&password={password}&csrf_token={token}&next={}",
            next.replace('/', "%2F")
        )
    };
    let r = http
        .request(
            "POST",
            &web.url("/login"),
            &jar,
            &[("content-type", "application/x-www-form-urlencoded")],
            Some(post("wrong-password").into_bytes()),
        )
        .await;
    check(&r, 401, "a wrong password");
    assert!(r.text().contains("The username or password is not right"));
    let r = http
        .request(
            "POST",
            &web.url("/login"),
            &jar,
            &[("content-type", "application/x-www-form-urlencoded")],
            Some(post("password-123").into_bytes()),
        )
        .await;
    check(&r, 303, "sign in");
    assert_eq!(
        location(&r),
        web.url("/p/{p1}/log").trim_start_matches(&web.server.url)
    );
    let session_cookie = r
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("infusafe_session="))
        .map(|v| v.split(';').next().unwrap().to_string())
        .expect("a session cookie");
    let me = Session {
        cookie: Some(session_cookie),
        csrf: None,
    };
    let r = web.get("/", &me).await;
    check(&r, 303, "start page");
    assert!(location(&r).ends_with("/today"));
    // An open redirect is not possible through `next`.
    let form = web
        .get("/login?next=//evil.example/x", &Session::default())
        .await
        .text();
    assert!(
        form.contains("name=\"next\" value=\"\""),
        "an off-site next is dropped"
    );
    // Sign out needs the CSRF token too.
    let page = web.get("/p/{p1}/today", &me).await.text();
    let csrf = page
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    let r = http
        .request(
            "POST",
            &web.url("/logout"),
            &me,
            &[("content-type", "application/x-www-form-urlencoded")],
            Some(b"csrf_token=wrong".to_vec()),
        )
        .await;
    check(&r, 403, "sign out with a wrong token");
    let r = http
        .request(
            "POST",
            &web.url("/logout"),
            &me,
            &[("content-type", "application/x-www-form-urlencoded")],
            Some(format!("csrf_token={csrf}").into_bytes()),
        )
        .await;
    check(&r, 303, "sign out");
    let r = web.get("/p/{p1}/today", &me).await;
    check(&r, 303, "signed out");
}

#[tokio::test]
async fn reads_are_audited_once_per_reading_session_not_per_refresh() {
    let web = Web::start().await;
    let patient = web.session(Some(User::Patient1)).await;
    let reads =
        |events: &[(String, Value)]| events.iter().filter(|(k, _)| k == "record_read").count();
    let before = reads(&web.timeline_kinds(&web.world.p1).await);
    for _ in 0..5 {
        check(
            &web.get("/p/{p1}/pump", &patient).await,
            200,
            "My pump (a live refresh)",
        );
    }
    assert_eq!(
        reads(&web.timeline_kinds(&web.world.p1).await),
        before + 1,
        "five refreshes are one audited read"
    );
    // Another person reading the same record is audited separately.
    let nurse = web.session(Some(User::Nurse)).await;
    check(
        &web.get("/p/{p1}/pump", &nurse).await,
        200,
        "the nurse reads it",
    );
    assert_eq!(reads(&web.timeline_kinds(&web.world.p1).await), before + 2);
}

/// A caregiver reads the patient's name where the patient reads "my" and "your"; the patient reads "your".
#[tokio::test]
async fn a_caregiver_reads_the_patients_name() {
    let web = Web::start().await;
    let caregiver = web.session(Some(User::Caregiver1)).await;
    let patient = web.session(Some(User::Patient1)).await;
    // Askama escapes the apostrophe.
    let pat = |what: &str| format!("Pat&#39;s {what}");
    let today = web.get("/p/{p1}/today", &caregiver).await.text();
    assert!(today.contains(&pat("next infusion")), "{today}");
    assert!(
        today.contains(&pat("pump")),
        "the navigation says whose pump"
    );
    assert!(!today.contains("My pump") && !today.contains("Your next infusion"));
    let log = web.get("/p/{p1}/log", &caregiver).await.text();
    assert!(log.contains(&pat("log")), "{log}");
    let pump = web.get("/p/{p1}/pump", &caregiver).await.text();
    assert!(
        pump.contains(&format!("<h1>{}</h1>", pat("pump"))),
        "{pump}"
    );
    let own = web.get("/p/{p1}/today", &patient).await.text();
    assert!(own.contains("Your next infusion") && own.contains("My pump"));
}

/// Every error page carries the numbers to call: the signed-in patient's emergency and on-call numbers from the
/// plan (as tel: links), or the advice to call the local emergency number for someone not signed in; an unknown
/// address is a 404 page like any other error, and the API keeps answering JSON.
#[tokio::test]
async fn error_pages_carry_the_numbers_to_call() {
    let web = Web::start().await;
    let patient = web.session(Some(User::Patient1)).await;
    let anonymous = web.session(None).await;
    for (path, status) in [
        ("/no-such-page", 404),
        ("/p/{p2}/today", 404),
        ("/p/{p1}/check/result/not-a-number", 404),
    ] {
        let r = web.get(path, &patient).await;
        check(&r, status, path);
        let page = r.text();
        assert!(
            page.contains("href=\"tel:112\"") && page.contains("href=\"tel:+31205550199\""),
            "{path}: the emergency and on-call numbers: {page}"
        );
        assert!(page.contains("/static/app."), "styled like the site");
    }
    let r = web.get("/no-such-page", &anonymous).await;
    check(&r, 404, "unknown page, not signed in");
    assert!(r.text().contains("call your local emergency number"));
    let r = web.get("/api/nothing-here", &patient).await;
    check(&r, 404, "unknown API path");
    assert_eq!(r.json()["error"], "not_found");
}

/// The pump corner card carries the care team's own words (their general note first, their note for an alarm
/// beside that alarm), the pump's own word for each alarm, and the emergency number first among the numbers.
#[tokio::test]
async fn the_card_puts_the_care_teams_words_and_the_emergency_number_first() {
    let web = Web::start().await;
    let patient = web.session(Some(User::Patient1)).await;
    let card = web.get("/p/{p1}/card", &patient).await.text();
    let notes_at = card
        .find("From your care team")
        .expect("the care team's notes");
    assert!(
        notes_at < card.find("Phone numbers").unwrap(),
        "care team first"
    );
    assert!(card.contains("office hours"), "the general note");
    let air = card
        .split("Air in the tubing")
        .nth(1)
        .and_then(|rest| rest.split("</tr>").next())
        .unwrap_or_default();
    assert!(
        air.contains("Your care team: You were trained to remove air"),
        "the plan's note for air_in_line beside it: {air}"
    );
    assert!(
        card.contains("&ldquo;Occlusion&rdquo;"),
        "the pump's own word"
    );
    let numbers = card
        .split("<table class=\"numbers\">")
        .nth(1)
        .unwrap_or_default();
    let first_tel = numbers.split("href=\"tel:").nth(1).unwrap_or_default();
    assert!(
        first_tel.starts_with("112\""),
        "the emergency number first: {numbers}"
    );
}

/// Pages and JSON are gzip-compressed when the browser asks; the live streams never are (a compressor would hold
/// live messages back).
#[tokio::test]
async fn pages_are_compressed_and_live_streams_are_not() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let web = Web::start().await;
    let nurse = web.session(Some(User::Nurse)).await;
    let r = web
        .server
        .http
        .request(
            "GET",
            &web.url("/nurse"),
            &nurse,
            &[("accept-encoding", "gzip")],
            None,
        )
        .await;
    check(&r, 200, "the dashboard");
    assert_eq!(
        r.headers
            .get("content-encoding")
            .and_then(|v| v.to_str().ok()),
        Some("gzip"),
        "the dashboard is compressed when asked"
    );
    let plain = web.get("/nurse", &nurse).await;
    assert!(plain.headers.get("content-encoding").is_none());
    assert!(
        r.body.starts_with(&[0x1f, 0x8b]) && r.body.len() < plain.body.len(),
        "a gzip body, smaller than the page ({} < {} bytes)",
        r.body.len(),
        plain.body.len()
    );

    // The stream: read only its head over a raw connection (the body never ends).
    let url = web.url("/api/dashboard/stream");
    let address = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let mut tcp = tokio::net::TcpStream::connect(&address).await.unwrap();
    let request = format!(
        "GET /api/dashboard/stream HTTP/1.1\r\nHost: {address}\r\nAccept: text/event-stream\r\nAccept-Encoding: gzip\r\nCookie: {}\r\n\r\n",
        nurse.cookie.as_deref().expect("a session cookie")
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), tcp.read(&mut buf))
            .await
            .expect("the stream answers")
            .unwrap();
        assert!(n > 0, "closed before its head");
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("text/event-stream"), "{head}");
    assert!(
        !head.contains("content-encoding"),
        "a live stream is never compressed: {head}"
    );
}
