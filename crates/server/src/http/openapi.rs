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
    for code in errors {
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

/// The document served at `/api/openapi.json`.
pub fn document() -> Value {
    let p = patient_param();
    let alarm = json!({"name": "alarm", "in": "path", "required": true, "schema": {"type": "string"}, "description": "the alarm's id from the snapshot (ev-123, srv-1700000000000), which names exactly one occurrence on one pump; or, for compatibility, its name (occlusion_downstream, pump_silent), which picks a practice alarm before a real one of the same name"});
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Infusafe server API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "JSON API of the Infusafe home infusion server. State-changing calls made with the session cookie must send the session's CSRF token in the x-csrf-token header. Errors are {error, message, field?}. See docs/api.md."
        },
        "paths": {
            "/healthz": {"get": op("Liveness and database check", "none", None, "200 ok", &[503])},
            "/api/openapi.json": {"get": op("This document", "none", None, "200 OpenAPI document", &[])},
            "/api/session": {
                "post": op("Sign in; sets the session cookie and returns the CSRF token", "none", Some("Login"), "200 session", &[403, 422, 429]),
                "delete": op("Sign out", "session", None, "204 signed out", &[401, 403])
            },
            "/api/me": {"get": op("The signed-in person", "session", None, "200 user", &[401])},
            "/api/patients": {"get": op("Patients the caller may see", "session", None, "200 list", &[401])},
            "/api/dashboard": {"get": op("Clinic patients ordered by urgency (nurse, admin)", "session", None, "200 list", &[401, 403])},
            "/api/dashboard/stream": {"get": op("Server-sent events for the whole clinic (nurse, admin)", "session", None, "200 text/event-stream", &[401, 403])},
            "/api/patients/{patient_id}": {"parameters": [p], "get": op("Live snapshot: telemetry, link state, active alarms (audited read)", "session", None, "200 snapshot", &[401, 404])},
            "/api/patients/{patient_id}/alarms": {"parameters": [p], "get": op("Active alarms, highest priority first", "session", None, "200 list", &[401, 404])},
            "/api/patients/{patient_id}/alarms/{alarm}/acknowledge": {"parameters": [p, alarm], "post": op("Acknowledge an active alarm (recorded with who and when)", "session", Some("Acknowledge"), "200 alarm", &[401, 403, 404, 422])},
            "/api/patients/{patient_id}/alarms/{alarm}/silence": {"parameters": [p, alarm], "post": op("Silence an alarm's sound for 1-15 minutes (it stays visible and keeps escalating)", "session", Some("Silence"), "200 alarm", &[401, 403, 404, 422])},
            "/api/patients/{patient_id}/timeline": {"parameters": [p, {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}, {"name": "kinds", "in": "query", "schema": {"type": "string"}, "description": "comma-separated event kinds"}], "get": op("The patient's events, newest first (audited read)", "session", None, "200 events", &[401, 404, 422])},
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
            "/api/admin/patients/{patient_id}/devices": {"parameters": [p], "post": op("Register a pump for a patient; returns its link token once", "session", Some("NewDevice"), "201 created", &[401, 403, 404, 422])},
            "/api/admin/webhook": {"put": op("Set or clear the clinic's webhook URL; returns the signing secret", "session", Some("Webhook"), "200 webhook", &[401, 403, 422])},
            "/api/link/v1/batch": {"post": op("Pump link: events (idempotent by seq) and telemetry", "device", Some("LinkBatch"), "200 BatchResponse", &[401, 413, 422])},
            "/api/link/v1/heartbeat": {"post": op("Pump link: heartbeat with optional telemetry", "device", Some("Heartbeat"), "200 BatchResponse", &[401, 422])}
        },
        "components": {
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": crate::services::auth::SESSION_COOKIE},
                "device": {"type": "http", "scheme": "bearer", "description": "the pump's device token"}
            },
            "responses": {
                "Error": {"description": "An error that names what is wrong", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            },
            "schemas": {
                "Error": {"type": "object", "required": ["error", "message"], "properties": {"error": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}}},
                "Login": {"type": "object", "required": ["username", "password"], "additionalProperties": false, "properties": {"username": {"type": "string"}, "password": {"type": "string"}}},
                "Acknowledge": {"type": "object", "additionalProperties": false, "properties": {"note": {"type": "string", "maxLength": 1000}}},
                "Silence": {"type": "object", "additionalProperties": false, "properties": {"minutes": {"type": "integer", "minimum": 1, "maximum": 15, "default": 2}}},
                "PlanSave": {"type": "object", "required": ["plan"], "additionalProperties": false, "properties": {"plan": {"type": "object"}, "version": {"type": "integer"}}},
                "PracticeAction": {"type": "object", "required": ["action"], "additionalProperties": false, "properties": {"action": {"enum": ["kink", "closed_clamp", "air", "low_battery", "door", "system_error", "unkink", "open_clamp", "close_door", "plug_in", "acknowledge", "silence", "resume", "start"]}}},
                "NewPatient": {"type": "object", "required": ["display_name"], "additionalProperties": false, "properties": {"display_name": {"type": "string"}}},
                "NewUser": {"type": "object", "required": ["username", "display_name", "password", "role"], "additionalProperties": false, "properties": {"username": {"type": "string"}, "display_name": {"type": "string"}, "password": {"type": "string", "minLength": 10}, "role": {"enum": ["patient", "caregiver", "nurse", "admin"]}, "patient_ids": {"type": "array", "items": {"type": "string"}}}},
                "NewDevice": {"type": "object", "required": ["label"], "additionalProperties": false, "properties": {"label": {"type": "string"}}},
                "Webhook": {"type": "object", "additionalProperties": false, "properties": {"url": {"type": ["string", "null"]}}},
                "Telemetry": {"type": "object", "required": ["state", "rate_ml_per_h", "delivered_ml", "remaining_ml", "battery_percent"], "additionalProperties": false, "properties": {
                    "state": {"type": "string"}, "rate_ml_per_h": {"type": "number"}, "delivered_ml": {"type": "number"}, "remaining_ml": {"type": "number"},
                    "minutes_left": {"type": ["number", "null"]}, "battery_percent": {"type": "number"}, "battery_minutes_left": {"type": ["number", "null"]},
                    "downstream_pressure_mmhg": {"type": ["number", "null"]}, "mains_present": {"type": ["boolean", "null"]}, "active_alarms": {"type": "array", "items": {"type": "string"}}}},
                "LinkEvent": {"type": "object", "required": ["seq", "occurred_at", "kind"], "additionalProperties": false, "properties": {"seq": {"type": "integer"}, "occurred_at": {"type": "string", "format": "date-time"}, "kind": {"type": "string"}, "data": {"type": "object"}}},
                "LinkBatch": {"type": "object", "additionalProperties": false, "properties": {"events": {"type": "array", "maxItems": link::LINK_BATCH_EVENTS_MAX, "items": {"$ref": "#/components/schemas/LinkEvent"}}, "telemetry": {"$ref": "#/components/schemas/Telemetry"}}},
                "Heartbeat": {"type": "object", "additionalProperties": false, "properties": {"telemetry": {"$ref": "#/components/schemas/Telemetry"}}},
                "BatchResponse": {"type": "object", "properties": {"accepted": {"type": "array", "items": {"type": "integer"}}, "duplicates": {"type": "array", "items": {"type": "integer"}}, "commands": {"type": "array", "items": {"type": "object"}}}}
            }
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
