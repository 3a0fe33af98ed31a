//! Sign-in and sign-out pages, and the start page that sends each person to their own home screen.
//!
//! The sign-in form has its own CSRF protection (a double-submit cookie), because before sign-in there is
//! no session whose token the router-wide guard could check: without it another site could sign a phone
//! into an attacker's account.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::error::AppError;
use crate::http::extract::WebUser;
use crate::services::AppState;
use crate::services::auth::{self, AuthError};

use super::common::{self, home_for, see_other};
use super::view::{LoginPage, html_with_status};

const LOGIN_CSRF_COOKIE: &str = "infusafe_login_csrf";

/// The client's address when the server was started with connection info; `None` otherwise (the rate
/// limiter then counts per username only).
pub struct ClientIp(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// `GET /`: each person's home.
pub async fn start(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let parts = {
        let mut req = axum::http::Request::new(());
        *req.headers_mut() = headers;
        req.into_parts().0
    };
    match crate::http::extract::user_from_parts(&parts, &state).await {
        Ok(Some(user)) => {
            let home = home_for(&user);
            if home != "/" {
                return see_other(&home);
            }
            super::patient::chooser(&state, &user).await
        }
        Ok(None) => see_other("/login"),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    next: Option<String>,
}

/// Only same-site paths may be a redirect target after sign-in.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && n.len() <= 500 =>
        {
            n.to_string()
        }
        _ => String::new(),
    }
}

fn login_page(
    status: StatusCode,
    error: Option<String>,
    username: String,
    next: String,
) -> Response {
    let token = crate::ids::random_hex(24);
    let page = LoginPage {
        layout: common::public_layout("Sign in", &token),
        error,
        username,
        next,
    };
    let mut response = html_with_status(status, &page);
    let cookie = format!(
        "{LOGIN_CSRF_COOKIE}={token}; Path=/login; HttpOnly; SameSite=Strict; Max-Age=3600"
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// `GET /login`
pub async fn form(Query(q): Query<LoginQuery>) -> Response {
    login_page(
        StatusCode::OK,
        None,
        String::new(),
        safe_next(q.next.as_deref()),
    )
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// `POST /login`
pub async fn submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let pairs = match common::form_pairs(&body) {
        Ok(p) => p,
        Err(e) => {
            return login_page(
                StatusCode::BAD_REQUEST,
                Some(e.to_string()),
                String::new(),
                String::new(),
            );
        }
    };
    let username = common::form_value(&pairs, "username")
        .unwrap_or_default()
        .to_string();
    let password = common::form_value(&pairs, "password").unwrap_or_default();
    let next = safe_next(common::form_value(&pairs, "next"));
    let form_token = common::form_value(&pairs, "csrf_token").unwrap_or_default();
    let cookie_token = cookie_value(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if form_token.is_empty() || form_token != cookie_token {
        return login_page(
            StatusCode::FORBIDDEN,
            Some("This sign-in form was out of date. Enter your name and password again.".into()),
            username,
            next,
        );
    }
    match auth::login(&state, &username, password, ip).await {
        Ok(session) => {
            let target = if next.is_empty() {
                "/".to_string()
            } else {
                next
            };
            let mut response = see_other(&target);
            if let Ok(v) = HeaderValue::from_str(&session.set_cookie) {
                response.headers_mut().append(header::SET_COOKIE, v);
            }
            let clear =
                format!("{LOGIN_CSRF_COOKIE}=; Path=/login; HttpOnly; SameSite=Strict; Max-Age=0");
            if let Ok(v) = HeaderValue::from_str(&clear) {
                response.headers_mut().append(header::SET_COOKIE, v);
            }
            response
        }
        Err(AuthError::Internal(e)) => e.into_response(),
        Err(e) => {
            let status = AppError::from(AuthError::Invalid(String::new())).status();
            let status = match &e {
                AuthError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
                AuthError::BadCredentials => StatusCode::UNAUTHORIZED,
                _ => status,
            };
            let message = e.to_string();
            let mut sentence = message.clone();
            if let Some(first) = message.get(0..1) {
                sentence.replace_range(0..1, &first.to_uppercase());
            }
            login_page(status, Some(format!("{sentence}.")), username, next)
        }
    }
}

/// `POST /logout` (CSRF-checked by the router-wide guard, since it carries a session).
pub async fn logout(State(state): State<AppState>, user: WebUser) -> Response {
    match auth::logout(&state, &user).await {
        Ok(cookie) => {
            let mut response = see_other("/login");
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                response.headers_mut().append(header::SET_COOKIE, v);
            }
            response
        }
        Err(e) => e.into_response(),
    }
}
