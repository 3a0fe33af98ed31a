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
        .layer(axum::middleware::from_fn(close_if_body_unread))
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

/// A response sent before its request's body was read to the end (a 413, a refused token, a CSRF failure) says
/// `Connection: close`. Without it the server drops the connection with the rest of the body still unread, while
/// the client, seeing a keep-alive answer, may send its next request on that connection and lose it (a browser
/// does not resend a form). Bodies that were read to the end keep their connection.
async fn close_if_body_unread(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::body::HttpBody;
    use axum::http::{HeaderValue, header};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let (parts, body) = request.into_parts();
    if body.is_end_stream() {
        return next
            .run(axum::extract::Request::from_parts(parts, body))
            .await;
    }
    let finished = Arc::new(AtomicBool::new(false));
    let tracked = axum::body::Body::new(UntilEnd {
        inner: body,
        finished: finished.clone(),
    });
    let mut response = next
        .run(axum::extract::Request::from_parts(parts, tracked))
        .await;
    if !finished.load(Ordering::Acquire) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// A request body that notes when it was read to its end.
struct UntilEnd {
    inner: axum::body::Body,
    finished: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl axum::body::HttpBody for UntilEnd {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, std::task::Poll::Ready(None)) || self.inner.is_end_stream() {
            self.finished
                .store(true, std::sync::atomic::Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
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
