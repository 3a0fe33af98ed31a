//! The HTML screens (patients, caregivers, nurses). Owned by the screens helper (issue 7); the server only
//! merges `routes()` into its router.

/// The screens' routes, merged into the server's router by `server::router`.
pub fn routes() -> axum::Router<crate::AppState> {
    axum::Router::new()
}
