//! Errors at the edge: `AppError` becomes a JSON response (for the API and the pump link) or, for the screens, a
//! plain page that offers a way back. This is the one place a failure turns into an HTTP response.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::AppError;
use crate::http::escape_html;
use crate::services::AppState;

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
/// plain, readable HTML page that offers a way back, so a browser user never sees raw JSON. The page carries
/// the numbers to call: the emergency number and the on-call line from the plan of the signed-in patient (or
/// of each person a caregiver looks after), or the advice to call the local emergency number when there is
/// no plan to read them from. The session is looked up only when there is an error to show.
pub async fn render_html_errors(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path();
    let is_api = path.starts_with("/api/") || path == "/healthz";
    let cookies = if is_api {
        None
    } else {
        request.headers().get(header::COOKIE).cloned()
    };
    let mut response = next.run(request).await;
    if is_api {
        return response;
    }
    if let Some(info) = response.extensions_mut().remove::<ErrorInfo>() {
        let numbers = numbers_for(&state, cookies).await;
        return html_error_page(info.status, &info.message, &numbers);
    }
    response
}

/// A number on an error page: who answers it and the number as written.
pub struct ErrorNumber {
    pub label: String,
    pub phone: String,
}

/// The emergency and on-call numbers from the plans of the people the signed-in person looks after (the
/// patient's own plan; every plan of a caregiver's people). Empty for a clinician, for someone not signed in,
/// and when no plan gives them.
async fn numbers_for(state: &AppState, cookies: Option<HeaderValue>) -> Vec<ErrorNumber> {
    let Some(cookies) = cookies else {
        return Vec::new();
    };
    let mut request = axum::extract::Request::new(axum::body::Body::empty());
    request.headers_mut().insert(header::COOKIE, cookies);
    let (parts, _) = request.into_parts();
    let Ok(Some(user)) = crate::http::extract::user_from_parts(&parts, state).await else {
        return Vec::new();
    };
    if user.role.is_clinician() {
        return Vec::new();
    }
    let mut out: Vec<ErrorNumber> = Vec::new();
    let several = user.patient_ids.len() > 1;
    for patient_id in &user.patient_ids {
        let Some(plan) = state.plans.get(patient_id) else {
            continue;
        };
        let whose = if several {
            format!(" ({})", plan.patient.name)
        } else {
            String::new()
        };
        for (label, contact) in [
            ("Emergency", &plan.contacts.emergency),
            ("On-call care team", &plan.contacts.on_call),
        ] {
            if contact.phone.trim().is_empty()
                || out
                    .iter()
                    .any(|n| n.phone == contact.phone && n.label.starts_with(label))
            {
                continue;
            }
            out.push(ErrorNumber {
                label: format!("{label}{whose}"),
                phone: contact.phone.clone(),
            });
        }
    }
    out
}

/// A self-contained error page in the site's style: what went wrong, a way back, and the numbers to call.
pub fn html_error_page(status: StatusCode, message: &str, numbers: &[ErrorNumber]) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let mut calls = String::new();
    if numbers.is_empty() {
        calls.push_str(
            "<p><strong>In an emergency, call your local emergency number now.</strong> Your care team's \
             numbers are on your written plan.</p>",
        );
    } else {
        calls.push_str("<h2>Numbers to call</h2><ul class=\"contacts\">");
        for n in numbers {
            calls.push_str(&format!(
                "<li>{}: <a class=\"tel\" href=\"tel:{}\">{}</a></li>",
                escape_html(&n.label),
                escape_html(&crate::http::web::view::tel_href(&n.phone)),
                escape_html(&n.phone)
            ));
        }
        calls.push_str("</ul>");
    }
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title} · Infusafe</title><link rel=\"stylesheet\" href=\"/static/app.{version}.css\"></head><body>\
         <main id=\"main\"><h1>{title}</h1><p>{}</p><p><a class=\"button\" href=\"/\">Go to the start page</a></p>\
         {calls}<p>If you have an alarm or feel unwell, follow your care team's instructions and call them.</p></main></body></html>",
        escape_html(message),
        version = crate::http::web::assets::version(),
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

/// Every path no route answers: a 404 that the HTML layer turns into the error page with the numbers.
pub async fn not_found() -> AppError {
    AppError::not_found("this page")
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
