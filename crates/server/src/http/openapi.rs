//! The OpenAPI 3.1 description of every JSON route, written by hand next to the code it describes. A test
//! compares the paths here with the routes registered in `api.rs`, so a route cannot be added undocumented.

use axum::Json;
use serde_json::{Value, json};

fn op(summary: &str, auth: &str, body: Option<&str>, ok: &str, errors: &[u16]) -> Value {
    let mut responses = serde_json::Map::new();
    responses.insert(
        ok.split(' ').next().unwrap_or("200").into(),
        json!({"description": ok}),
    );
    // Every operation may meet a database that is away (503, with Retry-After); every body may be too large or
    // not one JSON value of the right shape.
    let always: &[u16] = if body.is_some() {
        &[413, 422, 503]
    } else {
        &[503]
    };
    for code in errors.iter().chain(always) {
        responses.insert(
            code.to_string(),
            json!({"$ref": "#/components/responses/Error"}),
        );
    }
    let mut o = json!({
        "summary": summary,
        "security": match auth {
            "session" => json!([{"session": []}]),
            "device" => json!([{"device": []}]),
            _ => json!([]),
        },
        "responses": responses,
    });
    if let Some(schema) = body {
        o["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}});
    }
    o
}

fn patient_param() -> Value {
    json!({"name": "patient_id", "in": "path", "required": true, "schema": {"type": "string"}})
}

/// Text a person types: no control characters (the server refuses NUL and the like in any field).
const PLAIN_TEXT: &str = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$";

/// The id a pump's IHE PCD gateway sends in MSH-3.2 (an EUI-64, say); matched without regard to case.
fn pcd_device_id() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": crate::services::directory::PCD_DEVICE_ID_MAX, "pattern": "^\\s*[A-Za-z0-9._:-]+\\s*$"})
}

fn text(min: u64, max: u64) -> Value {
    json!({"type": "string", "minLength": min, "maxLength": max, "pattern": PLAIN_TEXT})
}

/// A number within the pump's physical bounds (`link::Bounds`).
fn number(min: f64, max: f64) -> Value {
    json!({"type": "number", "minimum": min, "maximum": max})
}

fn nullable(schema: Value) -> Value {
    json!({"anyOf": [schema, {"type": "null"}]})
}

fn telemetry_schema() -> Value {
    let b = link::Bounds::of_pump();
    let states: Vec<&str> = pump::State::ALL.iter().map(|s| s.name()).collect();
    json!({"type": "object", "required": ["state", "rate_ml_per_h", "delivered_ml", "remaining_ml", "battery_percent"], "additionalProperties": false, "properties": {
        "state": {"enum": states},
        "rate_ml_per_h": number(0.0, b.rate_ml_per_h_max),
        "delivered_ml": number(0.0, b.delivered_ml_max),
        "remaining_ml": number(0.0, b.vtbi_ml_max),
        "minutes_left": nullable(number(0.0, b.minutes_left_max)),
        "battery_percent": number(0.0, 100.0),
        "battery_minutes_left": nullable(number(0.0, b.battery_minutes_max)),
        "downstream_pressure_mmhg": nullable(number(b.pressure_mmhg_min, b.pressure_mmhg_max)),
        "mains_present": {"type": ["boolean", "null"]},
        "active_alarms": {"type": "array", "maxItems": link::TELEMETRY_ALARMS_MAX, "items": {"type": "string", "pattern": "^[a-z0-9_]{1,64}$"}}}})
}

/// `GET /api/dashboard`'s optional search and paging, with the bounds the server enforces (422 outside them).
fn dashboard_params() -> Value {
    use crate::services::dashboard::{API_LIMIT_MAX, API_OFFSET_MAX, SEARCH_CHARS_MAX};
    json!([
        {"name": "q", "in": "query", "required": false, "schema": {"type": "string", "maxLength": SEARCH_CHARS_MAX, "pattern": PLAIN_TEXT}, "description": "only patients whose name or id contains this text, without regard to case (surrounding spaces ignored; empty: everyone)"},
        {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": API_LIMIT_MAX}, "description": "at most this many rows; every row when absent"},
        {"name": "offset", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 0, "maximum": API_OFFSET_MAX, "default": 0}, "description": "skip this many rows of the order first"}
    ])
}

/// The document served at `/api/openapi.json`.
pub fn document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Infusafe server API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "JSON API of the Infusafe home infusion server. State-changing calls made with the session cookie must send the session's CSRF token in the x-csrf-token header. Errors are {error, message, field?}. See docs/api.md."
        },
        "paths": paths(),
        "components": components(),
    })
}

/// Every route with its operations.
fn paths() -> Value {
    let p = patient_param();
    let alarm = json!({"name": "alarm", "in": "path", "required": true, "schema": {"type": "string"}, "description": "the alarm's id from the snapshot (ev-123, srv-1700000000000), which names exactly one occurrence on one pump; or, for compatibility, its name (occlusion_downstream, pump_silent), which picks a practice alarm before a real one of the same name"});
    json!({
        "/healthz": {"get": op("Liveness and database check", "none", None, "200 ok", &[503])},
        "/api/openapi.json": {"get": op("This document", "none", None, "200 OpenAPI document", &[])},
        "/api/session": {
            "post": op("Sign in; sets the session cookie and returns the CSRF token", "none", Some("Login"), "200 session", &[403, 422, 429]),
            "delete": op("Sign out", "session", None, "204 signed out", &[401, 403])
        },
        "/api/me": {"get": op("The signed-in person", "session", None, "200 user", &[401])},
        "/api/patients": {"get": op("Patients the caller may see", "session", None, "200 list", &[401])},
        "/api/dashboard": {"parameters": dashboard_params(), "get": op("Clinic patients ordered by urgency (nurse, admin): any alarm or a silent pump first, most urgent first, then everyone else by name; optionally searched and paged", "session", None, "200 list", &[401, 403, 422])},
        "/api/dashboard/stream": {"parameters": [{"name": "initial", "in": "query", "required": false, "schema": {"enum": ["all", "none"], "default": "all"}, "description": "all: the stream opens with one snapshot per patient of the clinic; none: live changes only"}], "get": op("Server-sent events for the whole clinic (nurse, admin)", "session", None, "200 text/event-stream", &[401, 403, 422])},
        "/api/patients/{patient_id}": {"parameters": [p], "get": op("Live snapshot: telemetry, link state, active alarms (audited read)", "session", None, "200 snapshot", &[401, 404])},
        "/api/patients/{patient_id}/alarms": {"parameters": [p], "get": op("Active alarms, highest priority first", "session", None, "200 list", &[401, 404])},
        "/api/patients/{patient_id}/alarms/{alarm}/acknowledge": {"parameters": [p, alarm], "post": op("Acknowledge an active alarm (recorded with who and when)", "session", Some("Acknowledge"), "200 alarm", &[401, 403, 404, 422])},
        "/api/patients/{patient_id}/alarms/{alarm}/silence": {"parameters": [p, alarm], "post": op("Silence an alarm's sound for 1-15 minutes (it stays visible and keeps escalating)", "session", Some("Silence"), "200 alarm", &[401, 403, 404, 422])},
        "/api/patients/{patient_id}/timeline": {"parameters": [p, {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}, {"name": "kinds", "in": "query", "schema": {"type": "string"}, "description": "comma-separated event kinds"}], "get": op("The patient's events, newest first (audited read)", "session", None, "200 events", &[401, 404, 422])},
        "/api/patients/{patient_id}/telemetry": {"parameters": [p, {"name": "days", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 90}, "description": "days back from now (default 1)"}], "get": op("The patient's pump telemetry samples, oldest first: the telemetry table and legacy telemetry events merged; a downsampled bucket has bucket_s > 0 (audited read)", "session", None, "200 samples", &[401, 404, 422])},
        "/api/patients/{patient_id}/plan": {
            "parameters": [p],
            "get": op("The therapy plan", "session", None, "200 plan", &[401, 404]),
            "put": op("Save the therapy plan (nurse, admin); send the version you edited", "session", Some("PlanSave"), "200 plan", &[401, 403, 404, 409, 422])
        },
        "/api/patients/{patient_id}/stream": {"parameters": [p], "get": op("Server-sent events for one patient: snapshot, alarm, alarm_cleared, acknowledged, silenced, escalation, telemetry", "session", None, "200 text/event-stream", &[401, 404])},
        "/api/patients/{patient_id}/practice": {"parameters": [p], "get": op("The practice pump's status and the faults and fixes on offer", "session", None, "200 status", &[401, 404])},
        "/api/patients/{patient_id}/practice/start": {"parameters": [p], "post": op("Start a practice (teaching) pump for the patient (nurse, admin)", "session", None, "200 status", &[401, 403, 404])},
        "/api/patients/{patient_id}/practice/action": {"parameters": [p], "post": op("Inject a fault (nurse, admin) or press a fix or button (anyone with access) on the practice pump", "session", Some("PracticeAction"), "200 status", &[401, 403, 404, 409, 422])},
        "/api/patients/{patient_id}/practice/stop": {"parameters": [p], "post": op("Stop the practice pump (nurse, admin)", "session", None, "200 status", &[401, 403, 404])},
        "/api/admin/patients": {"post": op("Create a patient in the admin's clinic", "session", Some("NewPatient"), "201 created", &[401, 403, 422])},
        "/api/admin/users": {"post": op("Create an account in the admin's clinic", "session", Some("NewUser"), "201 created", &[401, 403, 409, 422])},
        "/api/admin/patients/{patient_id}/devices": {"parameters": [p], "post": op("Register a pump for a patient; returns its link token once", "session", Some("NewDevice"), "201 created", &[401, 403, 404, 409, 422])},
        "/api/admin/webhook": {"put": op("Set or clear the clinic's webhook URL; returns the signing secret", "session", Some("Webhook"), "200 webhook", &[401, 403, 422])},
        "/api/me/password": {"post": op("Change your own password (the current one is required); your other sessions end", "session", Some("ChangePassword"), "204 changed", &[401, 403, 422, 429])},
        "/api/admin/users/{user_id}/password": {"parameters": [{"name": "user_id", "in": "path", "required": true, "schema": {"type": "string"}}], "post": op("Reset the password of an account in the admin's clinic; its sessions end", "session", Some("ResetPassword"), "204 reset", &[401, 403, 404, 422])},
        "/api/admin/devices/{device_id}": {"parameters": [{"name": "device_id", "in": "path", "required": true, "schema": {"type": "string"}}], "delete": op("Revoke a pump's link token (the link refuses it from now on)", "session", None, "204 revoked", &[401, 403, 404]), "put": op("Set or remove the id the pump's IHE PCD gateway sends (MSH-3.2)", "session", Some("DeviceUpdate"), "200 updated", &[401, 403, 404, 409, 422])},
        "/api/link/v1/batch": {"post": op("Pump link: events (idempotent by seq) and telemetry", "device", Some("LinkBatch"), "200 BatchResponse", &[401, 413, 422])},
        "/api/link/v1/heartbeat": {"post": op("Pump link: heartbeat with optional telemetry", "device", Some("Heartbeat"), "200 BatchResponse", &[401, 422])}
    })
}

/// Security schemes, the error response and the body schemas, as strict as the server.
fn components() -> Value {
    json!({
        "securitySchemes": {
            "session": {"type": "apiKey", "in": "cookie", "name": crate::services::auth::SESSION_COOKIE},
            "device": {"type": "http", "scheme": "bearer", "description": "the pump's device token"}
        },
        "responses": {
            "Error": {"description": "An error that names what is wrong", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        },
        "schemas": {
            "Error": {"type": "object", "required": ["error", "message"], "properties": {"error": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}}},
            "Login": {"type": "object", "required": ["username", "password"], "additionalProperties": false, "properties": {"username": text(1, 100), "password": {"type": "string", "maxLength": 1000}}},
            "Acknowledge": {"type": "object", "additionalProperties": false, "properties": {"note": nullable(text(0, 1000))}},
            "Silence": {"type": "object", "additionalProperties": false, "properties": {"minutes": {"type": "integer", "minimum": 1, "maximum": 15, "default": 2}}},
            "PlanSave": {"type": "object", "required": ["plan"], "additionalProperties": false, "properties": {"plan": {"type": "object"}, "version": {"type": ["integer", "null"], "minimum": 1}}},
            "PracticeAction": {"type": "object", "required": ["action"], "additionalProperties": false, "properties": {"action": {"enum": ["kink", "closed_clamp", "air", "low_battery", "door", "system_error", "unkink", "open_clamp", "close_door", "plug_in", "acknowledge", "silence", "resume", "start"]}}},
            "NewPatient": {"type": "object", "required": ["display_name"], "additionalProperties": false, "properties": {"display_name": text(1, 200)}},
            "NewUser": {"type": "object", "required": ["username", "display_name", "password", "role"], "additionalProperties": false, "properties": {"username": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": "^[A-Za-z0-9._@-]+$"}, "display_name": text(1, 200), "password": {"type": "string", "minLength": 10, "maxLength": 1000, "pattern": PLAIN_TEXT}, "role": {"enum": ["patient", "caregiver", "nurse", "admin"]}, "patient_ids": {"type": "array", "maxItems": 20, "items": {"type": "string"}}}},
            "NewDevice": {"type": "object", "required": ["label"], "additionalProperties": false, "properties": {"label": text(1, 200), "pcd_device_id": nullable(pcd_device_id())}},
            "DeviceUpdate": {"type": "object", "required": ["pcd_device_id"], "additionalProperties": false, "properties": {"pcd_device_id": nullable(pcd_device_id())}},
            "Webhook": {"type": "object", "additionalProperties": false, "properties": {"url": nullable(text(1, 500))}},
            "ChangePassword": {"type": "object", "required": ["current_password", "new_password"], "additionalProperties": false, "properties": {"current_password": {"type": "string", "maxLength": 1000}, "new_password": {"type": "string", "minLength": 10, "maxLength": 1000, "pattern": PLAIN_TEXT}}},
            "ResetPassword": {"type": "object", "required": ["new_password"], "additionalProperties": false, "properties": {"new_password": {"type": "string", "minLength": 10, "maxLength": 1000, "pattern": PLAIN_TEXT}}},
            "Telemetry": telemetry_schema(),
            "LinkEvent": {"type": "object", "required": ["seq", "occurred_at", "kind"], "additionalProperties": false, "properties": {"seq": {"type": "integer", "minimum": 0, "maximum": link::PUMP_SEQ_MAX - 1}, "occurred_at": {"type": "string", "format": "date-time"}, "kind": {"type": "string", "pattern": "^[a-z0-9_]{1,64}$"}, "data": {"type": ["object", "null"]}}},
            "LinkBatch": {"type": "object", "additionalProperties": false, "properties": {"events": {"type": "array", "maxItems": link::LINK_BATCH_EVENTS_MAX, "items": {"$ref": "#/components/schemas/LinkEvent"}}, "telemetry": nullable(json!({"$ref": "#/components/schemas/Telemetry"}))}},
            "Heartbeat": {"type": "object", "additionalProperties": false, "properties": {"telemetry": nullable(json!({"$ref": "#/components/schemas/Telemetry"}))}},
            "BatchResponse": {"type": "object", "properties": {"accepted": {"type": "array", "items": {"type": "integer"}}, "duplicates": {"type": "array", "items": {"type": "integer"}}, "commands": {"type": "array", "items": {"type": "object"}}}}
        }
    })
}

pub async fn get_openapi() -> Json<Value> {
    Json(document())
}

#[cfg(test)]
mod tests {
    /// Every `.route("…")` registered in api.rs appears in the document with each of its methods.
    #[test]
    fn every_registered_api_route_is_documented() {
        // Collapse white space so calls wrapped by rustfmt read like one line.
        let source = include_str!("api.rs")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .replace("( ", "(");
        let source = source.as_str();
        let doc = super::document();
        let mut count = 0;
        for (start, _) in source.match_indices(".route(\"") {
            // The whole `.route(…)` call, however rustfmt wrapped it: up to the matching parenthesis.
            let mut depth = 0;
            let mut end = start;
            for (i, c) in source[start..].char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = start + i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let call: String = source[start..end]
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            let path = call
                .trim_start_matches(".route(\"")
                .split('"')
                .next()
                .unwrap();
            let entry = doc["paths"]
                .get(path)
                .unwrap_or_else(|| panic!("{path} is registered but not in openapi.rs"));
            for method in ["get", "post", "put", "delete"] {
                let registered = [
                    format!(" {method}("),
                    format!("({method}("),
                    format!(".{method}("),
                ]
                .iter()
                .any(|m| call.contains(m.as_str()));
                assert_eq!(
                    registered,
                    entry.get(method).is_some(),
                    "{path} {method}: registered={registered} in {call}"
                );
            }
            count += 1;
        }
        assert!(
            count >= 20,
            "found only {count} routes; did the route syntax change?"
        );
        assert_eq!(
            doc["paths"].as_object().unwrap().len(),
            count,
            "the document lists routes that are not registered"
        );
    }
}
