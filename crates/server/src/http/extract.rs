//! Who is asking: the extractors every route uses (`CurrentUser` for the API: 401 JSON; `WebUser` for the
//! screens: redirect to /login), the client address, JSON bodies with field-naming errors (`ApiJson`), and the
//! router-wide CSRF and Origin guard.

use std::net::IpAddr;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use serde::de::DeserializeOwned;

use crate::error::AppError;
use crate::services::AppState;
use crate::services::auth::{AuthError, CSRF_FIELD, CSRF_HEADER, CurrentUser, SESSION_COOKIE};

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        AppError::from(self).into_response()
    }
}

/// The same person, for HTML routes: a missing session redirects to `/login?next=…` instead of a 401.
#[derive(Debug, Clone)]
pub struct WebUser(pub CurrentUser);

impl std::ops::Deref for WebUser {
    type Target = CurrentUser;
    fn deref(&self) -> &CurrentUser {
        &self.0
    }
}

fn session_token_from(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// The user behind the request's session cookie, if any and not expired.
pub async fn user_from_parts(
    parts: &Parts,
    state: &AppState,
) -> Result<Option<CurrentUser>, AppError> {
    if let Some(user) = parts.extensions.get::<CurrentUser>() {
        return Ok(Some(user.clone()));
    }
    let Some(token) = session_token_from(parts) else {
        return Ok(None);
    };
    crate::services::auth::user_for_session(state, &token).await
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let user = user_from_parts(parts, state)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        parts.extensions.insert(user.clone());
        Ok(user)
    }
}

impl FromRequestParts<AppState> for WebUser {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match user_from_parts(parts, state).await {
            Ok(Some(user)) => {
                parts.extensions.insert(user.clone());
                Ok(WebUser(user))
            }
            Ok(None) => {
                let next = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                let next: String = form_urlencode(next);
                Err(Redirect::to(&format!("/login?next={next}")).into_response())
            }
            Err(e) => Err(e.into_response()),
        }
    }
}

fn form_urlencode(text: &str) -> String {
    serde_urlencoded::to_string([("n", text)])
        .map(|s| s.trim_start_matches("n=").to_string())
        .unwrap_or_default()
}

/// The largest form with a file the server reads: a site photo plus the form's fields.
pub const UPLOAD_BYTES_MAX: usize = crate::services::patient_log::PHOTO_BYTES_MAX + 64 * 1024;
/// The path (`/p/{patient}/log/site`) of the one form that sends a file.
pub const UPLOAD_PATH_SUFFIX: &str = "/log/site";

/// Middleware on the whole router: every state-changing request made with a session cookie must carry the
/// session's CSRF token (header `x-csrf-token`, or form field `csrf_token` in an urlencoded or multipart body), and any
/// state-changing request that names an `Origin` must come from this site. Because it wraps every route, a
/// new POST route cannot forget the check. Requests without a session cookie (login, the pump link with its
/// bearer token) carry no ambient authority and pass through to their own authentication.
pub async fn csrf_guard(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    if let Some(origin) = parts
        .headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    {
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let origin_host = origin.split("://").nth(1).unwrap_or("");
        if origin != "null" && origin_host != host {
            return AppError::Forbidden(
                "this request came from another site and was refused".into(),
            )
            .into_response();
        }
    }
    let user = match user_from_parts(&parts, &state).await {
        Ok(Some(user)) => user,
        Ok(None) => return next.run(Request::from_parts(parts, body)).await,
        Err(e) => return e.into_response(),
    };
    if let Some(token) = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) {
        if constant_time_eq(token, &user.csrf_token) {
            parts.extensions.insert(user);
            return next.run(Request::from_parts(parts, body)).await;
        }
        return AppError::Csrf.into_response();
    }
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let multipart = super::multipart::boundary(content_type);
    let is_form = content_type.starts_with("application/x-www-form-urlencoded");
    if !is_form && multipart.is_none() {
        return AppError::Csrf.into_response();
    }
    // The one form with a file (the site photo) may be larger; every other body keeps the usual limit, and the
    // route's own body limit still applies after.
    let limit = if multipart.is_some() && parts.uri.path().ends_with(UPLOAD_PATH_SUFFIX) {
        state.config.body_limit_bytes.max(UPLOAD_BYTES_MAX)
    } else {
        state.config.body_limit_bytes
    };
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => return AppError::TooLarge { limit_bytes: limit }.into_response(),
    };
    let token = match &multipart {
        Some(boundary) => super::multipart::parse(&bytes, boundary)
            .ok()
            .and_then(|form| {
                form.into_iter()
                    .find(|p| p.name == CSRF_FIELD && p.filename.is_none())
                    .and_then(|p| p.text().map(str::to_string))
            }),
        None => form_urlencoded_field(&bytes, CSRF_FIELD),
    };
    if token
        .as_deref()
        .is_some_and(|t| constant_time_eq(t, &user.csrf_token))
    {
        parts.extensions.insert(user);
        next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
            .await
    } else {
        AppError::Csrf.into_response()
    }
}

fn form_urlencoded_field(body: &[u8], name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
    pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The client's address (from the connection; `None` when served without connect info).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// A 401 page for HTML flows that prefer a status to a redirect.
pub fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, "sign in first").into_response()
}

/// A JSON body: requires `Content-Type: application/json`, enforces the size limit, and reports parse errors
/// with the path of the field (`events[2].seq: invalid type …`).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !is_json {
            return Err(AppError::invalid(
                "content-type",
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        // The router's DefaultBodyLimit bounds this read; exceeding it is a 413.
        let bytes = axum::body::Bytes::from_request(req, &())
            .await
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    AppError::TooLarge { limit_bytes: 0 }
                } else {
                    AppError::invalid("body", "could not read the request body")
                }
            })?;
        parse_json_body(&bytes).map(ApiJson)
    }
}

/// Exactly one JSON value, every text in it free of control characters, deserialized with the path of the first
/// wrong field in the error.
pub fn parse_json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value: serde_json::Value = serde::Deserialize::deserialize(&mut *de).map_err(|e| {
        let message = if e.is_syntax() || e.is_eof() {
            format!("is not valid JSON ({e})")
        } else {
            e.to_string()
        };
        AppError::invalid("body", message)
    })?;
    de.end().map_err(|_| {
        AppError::invalid(
            "body",
            "has more after the JSON value; send exactly one JSON value per request",
        )
    })?;
    check_text(&value, &mut String::new())?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." || path.is_empty() {
            "body".to_string()
        } else {
            path
        };
        AppError::invalid(field, e.into_inner().to_string())
    })
}

/// Refuse NUL and other control characters (tab and line breaks excepted) in any key or text of a body, naming
/// where: no database stores them faithfully, and no person types them.
fn check_text(value: &serde_json::Value, path: &mut String) -> Result<(), AppError> {
    let bad = |s: &str| {
        s.chars()
            .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    };
    let at = |path: &str| {
        if path.is_empty() {
            "body".to_string()
        } else {
            path.to_string()
        }
    };
    match value {
        serde_json::Value::String(s) if bad(s) => Err(AppError::invalid(
            at(path),
            "contains a control character (such as NUL); remove it",
        )),
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                check_text(item, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        serde_json::Value::Object(map) => {
            for (key, item) in map {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                if bad(key) {
                    return Err(AppError::invalid(
                        at(path),
                        "a field name contains a control character; remove it",
                    ));
                }
                check_text(item, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(body: &str) -> Option<String> {
        match parse_json_body::<serde_json::Value>(body.as_bytes()) {
            Ok(_) => None,
            Err(AppError::Invalid { field, .. }) => Some(field),
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn one_json_value_of_clean_text() {
        assert_eq!(field_of(r#"{"a": 1}"#), None);
        assert_eq!(field_of("{\"a\": \"tab\\tand\\nline\"}"), None);
        assert_eq!(
            field_of(r#"{"a": 1}{"a": 2}"#).as_deref(),
            Some("body"),
            "two values back to back"
        );
        assert_eq!(field_of(r#"{"a": 1} x"#).as_deref(), Some("body"));
        assert_eq!(
            field_of(r#"{"a": 1}   "#),
            None,
            "trailing white space is fine"
        );
        assert_eq!(
            field_of(r#"{"name": "Mal\u0000lory"}"#).as_deref(),
            Some("name")
        );
        assert_eq!(
            field_of(r#"{"events": [{"data": {"x": "\u0001"}}]}"#).as_deref(),
            Some("events[0].data.x")
        );
        assert_eq!(
            field_of(r#"{"na\u0000me": 1}"#).as_deref(),
            Some("na\u{0}me")
        );
        assert_eq!(field_of("{\"a\": 1"), Some("body".into()), "not valid JSON");
    }
}
