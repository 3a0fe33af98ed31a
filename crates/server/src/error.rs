//! The one error type of the HTTP boundary: every failure becomes a response that tells the user what is
//! wrong and what to do, with the right 4xx status for bad input and no internal detail ever shown.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Errors returned by handlers and by the functions the pages call.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No valid session or device token.
    #[error("you are not signed in; sign in and try again")]
    Unauthenticated,
    /// A pump-link call without a valid device token.
    #[error(
        "the pump's device token is missing or not valid; ask the clinic admin for this pump's token"
    )]
    BadDeviceToken,
    /// Signed in, but this person may not see or change this thing.
    #[error("{0}")]
    Forbidden(String),
    #[error("{what} was not found; check the address or go back to the list")]
    NotFound { what: String },
    /// Bad input: names the field and says what is allowed.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    Conflict(String),
    #[error("too many failed attempts; wait {retry_after_s} seconds and try again")]
    RateLimited { retry_after_s: u64 },
    #[error("the form's security token is missing or out of date; reload the page and try again")]
    Csrf,
    #[error("the request body is larger than the {limit_bytes} bytes allowed")]
    TooLarge { limit_bytes: usize },
    #[error("{0}")]
    Unavailable(String),
    /// A fault on our side. The detail is logged, never shown.
    #[error(
        "something went wrong on our side; try again, and call your care team if it keeps happening"
    )]
    Internal(String),
}

impl AppError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> AppError {
        AppError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn not_found(what: impl Into<String>) -> AppError {
        AppError::NotFound { what: what.into() }
    }

    pub fn internal(detail: impl std::fmt::Display) -> AppError {
        AppError::Internal(detail.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Unauthenticated | AppError::BadDeviceToken => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) | AppError::Csrf => StatusCode::FORBIDDEN,
            AppError::NotFound { .. } => StatusCode::NOT_FOUND,
            AppError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable machine-readable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Unauthenticated => "unauthenticated",
            AppError::BadDeviceToken => "bad_device_token",
            AppError::Forbidden(_) => "forbidden",
            AppError::NotFound { .. } => "not_found",
            AppError::Invalid { .. } => "invalid",
            AppError::Conflict(_) => "conflict",
            AppError::RateLimited { .. } => "rate_limited",
            AppError::Csrf => "csrf",
            AppError::TooLarge { .. } => "too_large",
            AppError::Unavailable(_) => "unavailable",
            AppError::Internal(_) => "internal",
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            AppError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> AppError {
        match e {
            // The database is down or overloaded: a temporary condition the caller can retry, not a bug.
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                eprintln!("infusafe server: database unavailable: {e}");
                AppError::Unavailable(
                    "the database is not answering right now; try again in a moment".into(),
                )
            }
            e => AppError::Internal(format!("database: {e}")),
        }
    }
}

/// The JSON body of every error response.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub error: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Attached to error responses so the HTML layer (see `render_html_errors`) can show a page instead.
#[derive(Debug, Clone)]
pub struct ErrorInfo {
    pub status: StatusCode,
    pub message: String,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let AppError::Internal(detail) = &self {
            eprintln!("infusafe server: internal error: {detail}");
        }
        let status = self.status();
        let body = ErrorBody {
            error: self.code(),
            message: self.to_string(),
            field: self.field().map(str::to_string),
        };
        let info = ErrorInfo {
            status,
            message: body.message.clone(),
        };
        let mut response = (status, Json(body)).into_response();
        if let AppError::RateLimited { retry_after_s } = self
            && let Ok(v) = HeaderValue::from_str(&retry_after_s.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response.extensions_mut().insert(info);
        response
    }
}

/// Middleware: for requests that are not API calls (paths outside `/api/`), turn an error response into a
/// plain, readable HTML page that offers a way back, so a browser user never sees raw JSON.
pub async fn render_html_errors(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let is_api = request.uri().path().starts_with("/api/") || request.uri().path() == "/healthz";
    let mut response = next.run(request).await;
    if is_api {
        return response;
    }
    if let Some(info) = response.extensions_mut().remove::<ErrorInfo>() {
        return html_error_page(info.status, &info.message);
    }
    response
}

/// A minimal, self-contained error page (the screens may replace it with their own styled one).
pub fn html_error_page(status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title} · Infusafe</title></head><body style=\"font-family:sans-serif;font-size:1.25rem;max-width:40rem;margin:2rem auto;padding:0 1rem\">\
         <h1>{title}</h1><p>{}</p><p><a href=\"/\">Go to the home page</a></p>\
         <p>If you have an alarm or feel unwell, follow your care team's instructions and call them.</p></body></html>",
        escape_html(message)
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
