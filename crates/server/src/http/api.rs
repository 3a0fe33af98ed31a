//! The JSON API: sessions, patients, live snapshots, alarms (acknowledge, silence), timeline, plans, live
//! streams, clinic administration. Every route that touches a patient goes through `access`; every body is
//! parsed by `ApiJson`, which names the offending field on bad input.

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::domain::EventDraft;
use crate::error::AppError;
use crate::http::extract::ApiJson;
use crate::services::AppState;
use crate::services::access;
use crate::services::auth::{self, CurrentUser, NewUser, Role};
use crate::services::hub::Filter;

/// The API routes (without the HTML pages).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/openapi.json", get(crate::http::openapi::get_openapi))
        .route("/api/session", post(login).delete(logout))
        .route("/api/me", get(me))
        .route("/api/patients", get(list_patients))
        .route("/api/dashboard", get(dashboard))
        .route("/api/dashboard/stream", get(dashboard_stream))
        .route("/api/patients/{patient_id}", get(patient_snapshot))
        .route("/api/patients/{patient_id}/alarms", get(patient_alarms))
        .route(
            "/api/patients/{patient_id}/alarms/{alarm}/acknowledge",
            post(acknowledge),
        )
        .route(
            "/api/patients/{patient_id}/alarms/{alarm}/silence",
            post(silence),
        )
        .route("/api/patients/{patient_id}/timeline", get(timeline))
        .route("/api/patients/{patient_id}/telemetry", get(telemetry))
        .route(
            "/api/patients/{patient_id}/plan",
            get(get_plan).put(put_plan),
        )
        .route("/api/patients/{patient_id}/stream", get(patient_stream))
        .route("/api/patients/{patient_id}/practice", get(practice_status))
        .route(
            "/api/patients/{patient_id}/practice/start",
            post(practice_start),
        )
        .route(
            "/api/patients/{patient_id}/practice/action",
            post(practice_action),
        )
        .route(
            "/api/patients/{patient_id}/practice/stop",
            post(practice_stop),
        )
        .route("/api/admin/patients", post(admin_create_patient))
        .route("/api/admin/users", post(admin_create_user))
        .route(
            "/api/admin/patients/{patient_id}/devices",
            post(admin_create_device),
        )
        .route("/api/admin/webhook", put(admin_set_webhook))
        .route("/api/me/password", post(change_password))
        .route(
            "/api/admin/users/{user_id}/password",
            post(admin_reset_password),
        )
        .route(
            "/api/admin/devices/{device_id}",
            delete(admin_revoke_device).put(admin_update_device),
        )
}

/// The pump link's routes (they get a larger body limit than the rest).
pub fn link_routes() -> Router<AppState> {
    Router::new()
        .route("/api/link/v1/batch", post(crate::http::link::post_batch))
        .route(
            "/api/link/v1/heartbeat",
            post(crate::http::link::post_heartbeat),
        )
}

async fn healthz(State(state): State<AppState>) -> Result<Json<Value>, AppError> {
    if !crate::services::records::database_answers(&state).await {
        return Err(AppError::Unavailable(
            "the database is not answering".into(),
        ));
    }
    Ok(Json(
        json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}),
    ))
}

/// `POST /api/session` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    pub username: String,
    pub password: String,
}

/// `POST /api/session` answer.
#[derive(Debug, Serialize)]
pub struct SessionInfo {
    pub user_id: String,
    pub role: Role,
    pub csrf_token: String,
}

async fn login(
    State(state): State<AppState>,
    crate::http::extract::ClientIp(ip): crate::http::extract::ClientIp,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Response, AppError> {
    let session = auth::login(&state, &body.username, &body.password, ip).await?;
    let info = SessionInfo {
        user_id: session.user_id.clone(),
        role: session.role,
        csrf_token: session.csrf_token.clone(),
    };
    Ok(([(header::SET_COOKIE, session.set_cookie)], Json(info)).into_response())
}

async fn logout(State(state): State<AppState>, user: CurrentUser) -> Result<Response, AppError> {
    let cookie = auth::logout(&state, &user).await?;
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

async fn me(user: CurrentUser) -> Json<CurrentUser> {
    Json(user)
}

/// A patient in a list.
#[derive(Debug, Serialize)]
pub struct PatientListItem {
    pub patient_id: String,
    pub display_name: String,
}

/// The patients a person may see: their own (patient, caregiver) or their clinic's (nurse, admin).
pub async fn visible_patients(
    state: &AppState,
    user: &CurrentUser,
) -> Result<Vec<PatientListItem>, AppError> {
    let all = crate::services::directory::clinic_patients(state, &user.clinic_id).await?;
    Ok(all
        .into_iter()
        .filter(|(id, _)| user.role.is_clinician() || user.patient_ids.contains(id))
        .map(|(patient_id, display_name)| PatientListItem {
            patient_id,
            display_name,
        })
        .collect())
}

async fn list_patients(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<Vec<PatientListItem>>, AppError> {
    Ok(Json(visible_patients(&state, &user).await?))
}

/// `GET /api/dashboard` parameters, all optional: without them, every patient as before.
#[derive(Debug, Deserialize, Default)]
pub struct DashboardQuery {
    /// Only patients whose name or id contains this, without regard to case.
    #[serde(default)]
    pub q: Option<String>,
    /// At most this many rows (1 to `API_LIMIT_MAX`); every row when absent.
    #[serde(default)]
    pub limit: Option<String>,
    /// Skip this many rows of the order first (0 to `API_OFFSET_MAX`).
    #[serde(default)]
    pub offset: Option<String>,
}

/// A whole number in `range`, or a 422 naming the parameter and the range.
fn bounded(
    name: &str,
    value: Option<&str>,
    range: std::ops::RangeInclusive<usize>,
) -> Result<Option<usize>, AppError> {
    let Some(text) = value else { return Ok(None) };
    match text.parse::<usize>() {
        Ok(n) if range.contains(&n) => Ok(Some(n)),
        _ => Err(AppError::invalid(
            name,
            format!(
                "must be a whole number from {} to {}",
                range.start(),
                range.end()
            ),
        )),
    }
}

async fn dashboard(
    State(state): State<AppState>,
    user: CurrentUser,
    query: Result<Query<DashboardQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<crate::services::alarms::PatientSummary>>, AppError> {
    use crate::services::dashboard::{API_LIMIT_MAX, API_OFFSET_MAX, list, search_text};
    let Query(q) = query.map_err(|e| AppError::invalid("query", e.body_text()))?;
    let search = search_text(q.q.as_deref().unwrap_or(""))?;
    let limit = bounded("limit", q.limit.as_deref(), 1..=API_LIMIT_MAX)?;
    let offset = bounded("offset", q.offset.as_deref(), 0..=API_OFFSET_MAX)?.unwrap_or(0);
    Ok(Json(list(&state, &user, &search, offset, limit).await?))
}

/// `GET /api/dashboard/stream?initial=…`: which snapshots open the stream.
#[derive(Debug, Deserialize, Default)]
pub struct StreamQuery {
    /// `all` (the default: one snapshot per patient of the clinic) or `none` (live changes only; the
    /// dashboard page, which was rendered a moment ago, asks for this).
    #[serde(default)]
    pub initial: Option<String>,
}

async fn dashboard_stream(
    State(state): State<AppState>,
    user: CurrentUser,
    query: Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    access::require_clinician(&user)?;
    let Query(q) = query.map_err(|e| AppError::invalid("query", e.body_text()))?;
    let snapshots = match q.initial.as_deref() {
        None | Some("all") => true,
        Some("none") => false,
        Some(_) => return Err(AppError::invalid("initial", "use all or none")),
    };
    let mut initial = Vec::new();
    if snapshots {
        for (pid, _) in crate::services::directory::clinic_patients(&state, &user.clinic_id).await?
        {
            initial.extend(crate::services::alarms::initial_messages(&state, &pid));
        }
    }
    Ok(crate::http::sse::stream(
        &state.hub,
        Filter::Clinic(user.clinic_id.clone()),
        initial,
        crate::services::auth::session_ended(state.clone(), user.clone()),
    )
    .into_response())
}

async fn patient_snapshot(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(patient_id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let a = access::patient(&state, &user, &patient_id).await?;
    let snap = crate::services::alarms::snapshot(&state, &a);
    Ok(Json(
        json!({"patient_id": a.patient_id, "display_name": a.display_name, "live": snap}),
    ))
}

async fn patient_alarms(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(patient_id): Path<String>,
) -> Result<Json<Vec<crate::services::alarms::AlarmView>>, AppError> {
    let a = access::patient(&state, &user, &patient_id).await?;
    Ok(Json(crate::services::alarms::active_alarms(&state, &a)))
}

/// `POST …/acknowledge` body.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AckBody {
    #[serde(default)]
    pub note: Option<String>,
}

async fn acknowledge(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((patient_id, alarm)): Path<(String, String)>,
    ApiJson(body): ApiJson<AckBody>,
) -> Result<Json<crate::services::alarms::AlarmView>, AppError> {
    let a = access::patient_for_action(&state, &user, &patient_id).await?;
    Ok(Json(
        crate::services::alarms::acknowledge(&state, &a, &alarm, body.note.as_deref()).await?,
    ))
}

/// `POST …/silence` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceBody {
    #[serde(default = "two_minutes")]
    pub minutes: u32,
}

fn two_minutes() -> u32 {
    2
}

async fn silence(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((patient_id, alarm)): Path<(String, String)>,
    ApiJson(body): ApiJson<SilenceBody>,
) -> Result<Json<crate::services::alarms::AlarmView>, AppError> {
    let a = access::patient_for_action(&state, &user, &patient_id).await?;
    Ok(Json(
        crate::services::alarms::silence(&state, &a, &alarm, body.minutes).await?,
    ))
}

/// `GET …/timeline` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimelineQuery {
    #[serde(default)]
    pub limit: Option<i64>,
    /// Comma-separated event kinds.
    #[serde(default)]
    pub kinds: Option<String>,
}

async fn timeline(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(patient_id): Path<String>,
    query: Result<Query<TimelineQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<crate::services::records::Entry>>, AppError> {
    let Query(q) = query.map_err(|e| AppError::invalid("query", e.body_text()))?;
    let limit = q.limit.unwrap_or(200);
    if !(1..=1000).contains(&limit) {
        return Err(AppError::invalid("limit", "must be between 1 and 1000"));
    }
    let kinds: Vec<String> = q
        .kinds
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_string)
        .collect();
    if let Some(bad) = kinds.iter().find(|k| !link::valid_name(k)) {
        return Err(AppError::invalid(
            "kinds",
            format!("{bad:?} is not an event kind (a-z, 0-9, _)"),
        ));
    }
    let a = access::patient(&state, &user, &patient_id).await?;
    Ok(Json(
        crate::services::records::timeline(&state, &a.patient_id, &kinds, limit as usize, 366)
            .await?,
    ))
}

/// `GET …/telemetry` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryQuery {
    /// Days back from now, 1 to 90 (default 1).
    #[serde(default)]
    pub days: Option<i64>,
}

/// The patient's pump telemetry over the last `days`, oldest first: the record's telemetry table and the legacy
/// `telemetry` events, merged (`record::Store::telemetry_series`). Practice-pump samples are included, marked
/// `teaching`.
async fn telemetry(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(patient_id): Path<String>,
    query: Result<Query<TelemetryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<record::TelemetrySample>>, AppError> {
    let Query(q) = query.map_err(|e| AppError::invalid("query", e.body_text()))?;
    let days = q.days.unwrap_or(1);
    if !(1..=90).contains(&days) {
        return Err(AppError::invalid("days", "must be between 1 and 90"));
    }
    let a = access::patient(&state, &user, &patient_id).await?;
    Ok(Json(
        crate::services::records::telemetry_samples(&state, &a.patient_id, days).await?,
    ))
}

async fn get_plan(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(patient_id): Path<String>,
) -> Result<Json<crate::services::plans::PlanRecord>, AppError> {
    let a = access::patient(&state, &user, &patient_id).await?;
    crate::services::plans::get(&state, &a)
        .await?
        .map(Json)
        .ok_or_else(|| AppError::not_found("a therapy plan for this patient"))
}

/// `PUT …/plan` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanBody {
    pub plan: Value,
    /// The version you edited (absent for the first plan).
    #[serde(default)]
    pub version: Option<i64>,
}

async fn put_plan(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(patient_id): Path<String>,
    ApiJson(body): ApiJson<PlanBody>,
) -> Result<Json<crate::services::plans::PlanRecord>, AppError> {
    access::require_clinician(&user)?;
    let a = access::patient_for_action(&state, &user, &patient_id).await?;
    Ok(Json(
        crate::services::plans::save(&state, &a, body.plan, body.version).await?,
    ))
}

async fn patient_stream(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(patient_id): Path<String>,
) -> Result<Response, AppError> {
    let a = access::patient(&state, &user, &patient_id).await?;
    let initial = crate::services::alarms::initial_messages(&state, &a.patient_id);
    Ok(crate::http::sse::stream(
        &state.hub,
        Filter::Patient(a.patient_id.clone()),
        initial,
        crate::services::auth::session_ended(state.clone(), user.clone()),
    )
    .into_response())
}

/// `POST /api/me/password` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordBody {
    pub current_password: String,
    pub new_password: String,
}

async fn change_password(
    State(state): State<AppState>,
    user: CurrentUser,
    crate::http::extract::ClientIp(ip): crate::http::extract::ClientIp,
    ApiJson(body): ApiJson<ChangePasswordBody>,
) -> Result<StatusCode, AppError> {
    auth::change_own_password(
        &state,
        &user,
        &body.current_password,
        &body.new_password,
        ip,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/admin/users/{user_id}/password` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordBody {
    pub new_password: String,
}

async fn admin_reset_password(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(user_id): Path<String>,
    ApiJson(body): ApiJson<ResetPasswordBody>,
) -> Result<StatusCode, AppError> {
    auth::reset_password(&state, &user, &user_id, &body.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn admin_revoke_device(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(device_id): Path<String>,
) -> Result<StatusCode, AppError> {
    crate::services::directory::revoke_device(&state, &user, &device_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/admin/patients` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPatientBody {
    pub display_name: String,
}

async fn admin_create_patient(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<NewPatientBody>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    access::require_admin(&user)?;
    let id = crate::services::directory::create_patient(
        &state,
        &user.clinic_id,
        &body.display_name,
        Some(&user.id),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(json!({"patient_id": id}))))
}

/// `POST /api/admin/users` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    pub username: String,
    pub display_name: String,
    pub password: String,
    pub role: String,
    #[serde(default)]
    pub patient_ids: Vec<String>,
}

async fn admin_create_user(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<NewUserBody>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    access::require_admin(&user)?;
    let role = Role::from_name(&body.role)
        .ok_or_else(|| AppError::invalid("role", "use one of patient, caregiver, nurse, admin"))?;
    if matches!(role, Role::Patient | Role::Caregiver) && body.patient_ids.is_empty() {
        return Err(AppError::invalid(
            "patient_ids",
            "link a patient or caregiver account to at least one patient",
        ));
    }
    if role == Role::Patient && body.patient_ids.len() > 1 {
        return Err(AppError::invalid(
            "patient_ids",
            "a patient account belongs to exactly one patient",
        ));
    }
    if body.patient_ids.len() > 20 {
        return Err(AppError::invalid("patient_ids", "link at most 20 patients"));
    }
    for (i, p) in body.patient_ids.iter().enumerate() {
        access::patient_for_action(&state, &user, p)
            .await
            .map_err(|_| {
                AppError::invalid(
                    format!("patient_ids[{i}]"),
                    "no such patient in your clinic",
                )
            })?;
    }
    let id = auth::create_user(
        &state,
        &NewUser {
            username: body.username,
            display_name: body.display_name,
            password: body.password,
            role,
            clinic_id: user.clinic_id.clone(),
            patient_ids: body.patient_ids,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(json!({"user_id": id}))))
}

/// `POST /api/admin/patients/{id}/devices` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDeviceBody {
    pub label: String,
    /// The id the pump's IHE PCD gateway sends (MSH-3.2), if it speaks PCD.
    #[serde(default)]
    pub pcd_device_id: Option<String>,
}

/// `PUT /api/admin/devices/{device_id}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceUpdateBody {
    /// Required: the gateway's device id, or `null` to clear it (a missing field is refused, so an empty body
    /// can never clear a pump's PCD id by accident).
    #[serde(default, deserialize_with = "present")]
    pub pcd_device_id: Option<Option<String>>,
}

/// Tells a field given as `null` (`Some(None)`) from a missing one (`None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Ok(Some(Option::<String>::deserialize(d)?))
}

async fn admin_update_device(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(device_id): Path<String>,
    ApiJson(body): ApiJson<DeviceUpdateBody>,
) -> Result<Json<Value>, AppError> {
    let Some(pcd_device_id) = body.pcd_device_id else {
        return Err(AppError::invalid(
            "pcd_device_id",
            "is required: give the gateway's device id (e.g. an EUI-64), or null to clear it",
        ));
    };
    let id = crate::services::directory::set_pcd_device_id(
        &state,
        &user,
        &device_id,
        pcd_device_id.as_deref(),
    )
    .await?;
    Ok(Json(json!({"device_id": device_id, "pcd_device_id": id})))
}

async fn admin_create_device(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(patient_id): Path<String>,
    ApiJson(body): ApiJson<NewDeviceBody>,
) -> Result<(StatusCode, Json<crate::services::directory::NewDevice>), AppError> {
    access::require_admin(&user)?;
    let a = access::patient_for_action(&state, &user, &patient_id).await?;
    Ok((
        StatusCode::CREATED,
        Json(
            crate::services::directory::create_device_with_pcd(
                &state,
                &a.patient_id,
                &body.label,
                false,
                body.pcd_device_id.as_deref(),
                Some(&user.id),
            )
            .await?,
        ),
    ))
}

/// `PUT /api/admin/webhook` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookBody {
    pub url: Option<String>,
}

async fn admin_set_webhook(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<WebhookBody>,
) -> Result<Json<Value>, AppError> {
    access::require_admin(&user)?;
    let secret =
        crate::services::directory::set_webhook(&state, &user.clinic_id, body.url.as_deref())
            .await?;
    crate::services::records::append(
        &state,
        EventDraft::new(
            &format!("clinic:{}", user.clinic_id),
            crate::domain::ServerKind::WebhookChanged,
            user.role.origin(),
            Some(&user.id),
            crate::services::now_ms(),
            json!({"url": body.url}),
        ),
    )
    .await?;
    Ok(Json(
        json!({"url": body.url, "secret": secret, "signature_header": crate::services::webhook::SIGNATURE_HEADER}),
    ))
}

async fn practice_status(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(patient_id): Path<String>,
) -> Result<Json<crate::services::practice::PracticeStatus>, AppError> {
    let a = access::patient(&state, &user, &patient_id).await?;
    Ok(Json(crate::services::practice::status(&state, &a)))
}

async fn practice_start(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(patient_id): Path<String>,
) -> Result<Json<crate::services::practice::PracticeStatus>, AppError> {
    access::require_clinician(&user)?;
    let a = access::patient_for_action(&state, &user, &patient_id).await?;
    Ok(Json(crate::services::practice::start(&state, &a).await?))
}

/// `POST …/practice/action` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PracticeActionBody {
    /// A fault (`kink`, `closed_clamp`, `air`, `low_battery`, `door`, `system_error`) or a fix / button.
    pub action: String,
}

async fn practice_action(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(patient_id): Path<String>,
    ApiJson(body): ApiJson<PracticeActionBody>,
) -> Result<Json<crate::services::practice::PracticeStatus>, AppError> {
    let a = access::patient_for_action(&state, &user, &patient_id).await?;
    Ok(Json(
        crate::services::practice::act(&state, &a, &body.action).await?,
    ))
}

async fn practice_stop(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(patient_id): Path<String>,
) -> Result<Json<crate::services::practice::PracticeStatus>, AppError> {
    access::require_clinician(&user)?;
    let a = access::patient_for_action(&state, &user, &patient_id).await?;
    Ok(Json(crate::services::practice::stop(&state, &a).await?))
}
