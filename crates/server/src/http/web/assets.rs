//! The stylesheet and the live-update script, embedded in the binary so `infusafe demo` needs no files on
//! disk, served under names that carry a hash of their content so browsers may cache them for a year and
//! still never run yesterday's script against today's pages.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub const CSS: &str = include_str!("../../../static/app.css");
pub const JS: &str = include_str!("../../../static/live.js");

/// A short content hash over both files, used in their URLs (`/static/app.<version>.css`).
pub fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(CSS.as_bytes());
        h.update(JS.as_bytes());
        hex::encode(&h.finalize()[..6])
    })
}

/// `GET /static/{file}`: the current files are immutable for a year; an unknown or outdated name is a 404
/// so a stale cached page fails visibly instead of mixing versions.
pub async fn serve(Path(file): Path<String>) -> Response {
    let v = version();
    let (body, content_type) = if file == format!("app.{v}.css") {
        (CSS, "text/css; charset=utf-8")
    } else if file == format!("live.{v}.js") {
        (JS, "text/javascript; charset=utf-8")
    } else {
        return (StatusCode::NOT_FOUND, "no such file; reload the page").into_response();
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
