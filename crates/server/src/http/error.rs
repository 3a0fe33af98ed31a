//! Errors at the edge: `AppError` becomes a JSON response (for the API and the pump link) or, for the screens, a
//! plain page that offers a way back. This is the one place a failure turns into an HTTP response.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::AppError;
use crate::http::escape_html;

/// Seconds a client waits before retrying when the database is away (a restart takes a few seconds).
pub const UNAVAILABLE_RETRY_AFTER_S: &str = "5";

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
        if let AppError::Unavailable(_) = self {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(UNAVAILABLE_RETRY_AFTER_S),
            );
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

#[cfg(test)]
mod tests {
    use axum::response::IntoResponse;

    use super::*;

    #[test]
    fn an_unavailable_database_is_503_with_retry_after() {
        let response =
            AppError::Unavailable("the database is not answering".into()).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
            Some(UNAVAILABLE_RETRY_AFTER_S)
        );
        let internal = AppError::internal("boom").into_response();
        assert!(internal.headers().get(header::RETRY_AFTER).is_none());
    }
}
