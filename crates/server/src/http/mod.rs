//! Everything that knows HTTP (axum only): the router, extractors and the CSRF guard (`extract`), the pump link's
//! handlers (`link`), the JSON API (`api`) with its OpenAPI description (`openapi`), live streams as server-sent
//! events (`sse`), error responses (`error`), and the screens (`web`, one module per screen). Handlers parse, ask
//! `services`, and render; they hold no rules and write no SQL.

pub mod api;
pub mod error;
pub mod extract;
pub mod link;
pub mod multipart;
pub mod openapi;
pub mod sse;
pub mod web;

use axum::Router;
use axum::extract::DefaultBodyLimit;

use crate::services::AppState;

/// The API, pump link and live streams merged with the screens, behind the CSRF guard, the body limits and
/// the HTML error pages.
pub fn router(state: AppState) -> Router {
    let link_limit = state.config.link_body_limit_bytes;
    let body_limit = state.config.body_limit_bytes;
    let link = api::link_routes().layer(DefaultBodyLimit::max(link_limit));
    let rest = api::routes()
        .merge(web::routes())
        .layer(DefaultBodyLimit::max(body_limit));
    Router::new()
        .merge(link)
        .merge(rest)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            extract::csrf_guard,
        ))
        .fallback(error::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            web::display_zone,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            error::render_html_errors,
        ))
        .layer(axum::middleware::map_response(security_headers))
        // gzip for pages and JSON when the client asks (a dashboard of many patients is mostly repeated markup);
        // never for server-sent event streams (tower-http's default predicate leaves `text/event-stream`, images
        // and bodies under 32 bytes alone), so live messages are not held back in a compressor's buffer.
        .layer(tower_http::compression::CompressionLayer::new())
        .with_state(state)
}

async fn security_headers(mut response: axum::response::Response) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    let h = response.headers_mut();
    h.entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    h.entry(header::X_FRAME_OPTIONS)
        .or_insert(HeaderValue::from_static("DENY"));
    h.entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("same-origin"));
    // Patient data must never sit in a shared or browser cache: every response is `no-store` unless it set its
    // own policy (only the embedded stylesheet and script do).
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// Text made safe inside HTML: the one escaper for every page, error page and chart.
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
