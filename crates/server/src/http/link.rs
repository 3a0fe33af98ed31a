//! The pump link's handlers: authenticate the pump by its bearer token, check the batch against the link's
//! rules (`link::validate_batch`), and hand it to `services::ingest`.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use link::{BatchResponse, Heartbeat, LinkBatch, LinkError};

use crate::domain::Device;
use crate::error::AppError;
use crate::http::extract::ApiJson;
use crate::services::AppState;

impl From<LinkError> for AppError {
    fn from(e: LinkError) -> AppError {
        AppError::invalid(e.field, e.message)
    }
}

/// Authenticate a device from its bearer token.
async fn device_from_headers(state: &AppState, headers: &HeaderMap) -> Result<Device, AppError> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 200)
        .ok_or(AppError::BadDeviceToken)?;
    crate::services::directory::device_by_token(state, token)
        .await?
        .ok_or(AppError::BadDeviceToken)
}

/// `POST /api/link/v1/batch`
pub async fn post_batch(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(batch): ApiJson<LinkBatch>,
) -> Result<Json<BatchResponse>, AppError> {
    let device = device_from_headers(&state, &headers).await?;
    link::wire::validate_batch(&batch)?;
    Ok(Json(
        crate::services::ingest::ingest(&state, &device, batch).await?,
    ))
}

/// `POST /api/link/v1/heartbeat`: telemetry only (or nothing), so the server knows the pump is alive.
pub async fn post_heartbeat(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(beat): ApiJson<Heartbeat>,
) -> Result<Json<BatchResponse>, AppError> {
    let device = device_from_headers(&state, &headers).await?;
    let batch = LinkBatch {
        events: vec![],
        telemetry: beat.telemetry,
    };
    link::wire::validate_batch(&batch)?;
    Ok(Json(
        crate::services::ingest::ingest(&state, &device, batch).await?,
    ))
}
