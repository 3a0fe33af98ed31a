//! Accounts and sessions: argon2id password hashes, rate-limited login, session cookies (Secure, HttpOnly,
//! SameSite=Lax), per-session CSRF tokens, and the extractors every route uses to know who is asking:
//! `CurrentUser` (API: 401 JSON) and `WebUser` (HTML: redirect to /login).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Serialize;
use sqlx::Row;

use crate::AppState;
use crate::db::{new_id, now_ms, random_hex, token_hash};
use crate::error::AppError;
use crate::journal::{NewEvent, Source};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "infusafe_session";
/// Header carrying the CSRF token on API calls (forms use the `csrf_token` field instead).
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Form field carrying the CSRF token.
pub const CSRF_FIELD: &str = "csrf_token";

/// What a person may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Patient,
    Caregiver,
    Nurse,
    Admin,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Patient => "patient",
            Role::Caregiver => "caregiver",
            Role::Nurse => "nurse",
            Role::Admin => "admin",
        }
    }

    pub fn from_name(name: &str) -> Option<Role> {
        [Role::Patient, Role::Caregiver, Role::Nurse, Role::Admin]
            .into_iter()
            .find(|r| r.name() == name)
    }

    /// Nurses and clinic admins see every patient of their clinic.
    pub fn is_clinician(self) -> bool {
        matches!(self, Role::Nurse | Role::Admin)
    }

    pub fn source(self) -> Source {
        match self {
            Role::Patient => Source::Patient,
            Role::Caregiver => Source::Caregiver,
            Role::Nurse => Source::Nurse,
            Role::Admin => Source::Admin,
        }
    }
}

/// The signed-in person, as every handler sees them.
#[derive(Debug, Clone, Serialize)]
pub struct CurrentUser {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub clinic_id: String,
    /// For patients and caregivers: the patients they are linked to. Empty for clinicians (they use the clinic).
    pub patient_ids: Vec<String>,
    /// The session's CSRF token; put it in every form (`csrf_token` field) or the `x-csrf-token` header.
    pub csrf_token: String,
    #[serde(skip)]
    pub session_hash: String,
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

/// The CSRF token to embed in a page's forms.
pub fn csrf_token(user: &CurrentUser) -> &str {
    &user.csrf_token
}

/// Why a login failed. The messages never say whether the username exists.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the username or password is not right; check them and try again")]
    BadCredentials,
    #[error("too many failed sign-in attempts; wait {retry_after_s} seconds and try again")]
    RateLimited { retry_after_s: u64 },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Internal(#[from] AppError),
}

impl From<AuthError> for AppError {
    fn from(e: AuthError) -> AppError {
        match e {
            AuthError::BadCredentials => AppError::Forbidden(AuthError::BadCredentials.to_string()),
            AuthError::RateLimited { retry_after_s } => AppError::RateLimited { retry_after_s },
            AuthError::Invalid(message) => AppError::invalid("username", message),
            AuthError::Internal(e) => e,
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        AppError::from(self).into_response()
    }
}

/// A new session: set `set_cookie` as the `Set-Cookie` header value.
#[derive(Debug, Clone)]
pub struct SessionCookie {
    pub set_cookie: String,
    pub csrf_token: String,
    pub user_id: String,
    pub role: Role,
}

/// Hash a password with argon2id (default parameters: 19 MiB, 2 passes) and a random salt.
pub fn hash_password(password: &str) -> Result<String, AppError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| AppError::internal(format!("random salt: {e}")))?;
    Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::internal(format!("argon2: {e}")))
}

/// Check a password against a stored PHC string.
pub fn verify_password(password: &str, hash: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

/// Minimum password length for new accounts.
pub const PASSWORD_LEN_MIN: usize = 10;

/// Sliding-window counter of failed logins per (username, address) and per address.
#[derive(Debug, Clone, Default)]
pub struct LoginLimiter {
    inner: Arc<Mutex<HashMap<String, VecDeque<Instant>>>>,
}

impl LoginLimiter {
    fn keys(username: &str, ip: Option<IpAddr>) -> [String; 2] {
        let ip = ip
            .map(|i| i.to_string())
            .unwrap_or_else(|| "unknown".into());
        [
            format!("u:{}|{ip}", username.to_lowercase()),
            format!("ip:{ip}"),
        ]
    }

    /// `Err(seconds)` while the caller must wait.
    pub fn check(
        &self,
        username: &str,
        ip: Option<IpAddr>,
        max: u32,
        window: Duration,
    ) -> Result<(), u64> {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        // Per address we allow ten times more failures, so one person's typos never lock out a household.
        for (key, limit) in Self::keys(username, ip)
            .into_iter()
            .zip([max, max.saturating_mul(10)])
        {
            if let Some(q) = map.get_mut(&key) {
                while q.front().is_some_and(|t| now.duration_since(*t) > window) {
                    q.pop_front();
                }
                if q.len() >= limit as usize
                    && let Some(first) = q.front()
                {
                    let wait = window.saturating_sub(now.duration_since(*first));
                    return Err(wait.as_secs().max(1));
                }
            }
        }
        Ok(())
    }

    pub fn failed(&self, username: &str, ip: Option<IpAddr>) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for key in Self::keys(username, ip) {
            map.entry(key).or_default().push_back(Instant::now());
        }
        // Bound memory under a password-spraying attack.
        if map.len() > 100_000 {
            map.clear();
        }
    }

    pub fn succeeded(&self, username: &str, ip: Option<IpAddr>) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let [user_key, _] = Self::keys(username, ip);
        map.remove(&user_key);
    }
}

/// A stored hash that is never a real password's, to spend the same time on unknown usernames.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("not a real password, only for timing").unwrap_or_default())
}

/// Check a username and password and open a session. Failed attempts are rate-limited per username and
/// client address; successes and failures for known accounts are recorded as `login` events.
pub async fn login(
    state: &AppState,
    username: &str,
    password: &str,
    client_ip: Option<IpAddr>,
) -> Result<SessionCookie, AuthError> {
    let username = username.trim();
    if username.is_empty() || username.len() > 100 {
        return Err(AuthError::Invalid(
            "enter your username (1 to 100 characters)".into(),
        ));
    }
    if password.len() > 1000 {
        return Err(AuthError::BadCredentials);
    }
    let config = &state.config;
    state
        .limiter
        .check(
            username,
            client_ip,
            config.login_failures_max,
            config.login_window,
        )
        .map_err(|retry_after_s| AuthError::RateLimited { retry_after_s })?;

    let row = sqlx::query("SELECT id, role, password_hash FROM srv_users WHERE username = $1")
        .bind(username.to_lowercase())
        .fetch_optional(&state.db.pool)
        .await
        .map_err(AppError::from)?;
    let (user_id, role, hash) = match &row {
        Some(r) => (
            r.try_get::<String, _>("id").map_err(AppError::from)?,
            r.try_get::<String, _>("role").map_err(AppError::from)?,
            r.try_get::<String, _>("password_hash")
                .map_err(AppError::from)?,
        ),
        None => (String::new(), String::new(), dummy_hash().to_string()),
    };
    let password_owned = password.to_string();
    let ok = tokio::task::spawn_blocking(move || verify_password(&password_owned, &hash))
        .await
        .map_err(AppError::internal)?;
    let role = Role::from_name(&role);
    let (true, Some(role)) = (ok && row.is_some(), role) else {
        state.limiter.failed(username, client_ip);
        if row.is_some() {
            record_login_event(state, &user_id, false, client_ip).await;
        }
        return Err(AuthError::BadCredentials);
    };
    state.limiter.succeeded(username, client_ip);

    let token = random_hex(32);
    let csrf = random_hex(24);
    let now = now_ms();
    let ttl_ms = i64::try_from(config.session_ttl.as_millis()).unwrap_or(i64::MAX);
    sqlx::query(
        "INSERT INTO srv_sessions (token_hash, user_id, csrf_token, created_at_ms, expires_at_ms) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash(&token))
    .bind(user_id.clone())
    .bind(csrf.clone())
    .bind(now)
    .bind(now.saturating_add(ttl_ms))
    .execute(&state.db.pool)
    .await
    .map_err(AppError::from)?;
    record_login_event(state, &user_id, true, client_ip).await;
    Ok(SessionCookie {
        set_cookie: session_cookie_header(&token, config.secure_cookies, Some(config.session_ttl)),
        csrf_token: csrf,
        user_id,
        role,
    })
}

/// The `Set-Cookie` value for a session token (or, with `max_age` zero, for removing it).
fn session_cookie_header(token: &str, secure: bool, max_age: Option<Duration>) -> String {
    let mut cookie = format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        cookie.push_str(&format!("; Max-Age={}", age.as_secs()));
    }
    if secure {
        cookie.push_str("; Secure");
    }
    cookie
}

/// Logins are recorded on every patient the account is linked to (patients, caregivers), and on no patient
/// for clinicians, whose logins go to the clinic-wide audit under the pseudo patient id `clinic:<id>`.
async fn record_login_event(state: &AppState, user_id: &str, success: bool, ip: Option<IpAddr>) {
    let Ok(Some(user)) = load_user(state, user_id, String::new(), String::new()).await else {
        return;
    };
    let targets = if user.role.is_clinician() {
        vec![format!("clinic:{}", user.clinic_id)]
    } else {
        user.patient_ids.clone()
    };
    let events = targets
        .iter()
        .map(|p| {
            NewEvent::now(
                p,
                "login",
                user.role.source(),
                Some(&user.id),
                serde_json::json!({
                    "account": user.username, "user_id": user.id, "role": user.role.name(), "display_name": user.display_name,
                    "success": success, "client_ip": ip.map(|i| i.to_string()),
                }),
            )
        })
        .collect();
    if let Err(e) = state.journal.append(events).await {
        eprintln!("infusafe server: could not record a login event: {e}");
    }
}

/// End a session (idempotent).
pub async fn logout(state: &AppState, user: &CurrentUser) -> Result<String, AppError> {
    sqlx::query("DELETE FROM srv_sessions WHERE token_hash = $1")
        .bind(user.session_hash.clone())
        .execute(&state.db.pool)
        .await?;
    Ok(session_cookie_header(
        "",
        state.config.secure_cookies,
        Some(Duration::ZERO),
    ))
}

/// Load a user with their patient links.
pub async fn load_user(
    state: &AppState,
    user_id: &str,
    csrf_token: String,
    session_hash: String,
) -> Result<Option<CurrentUser>, AppError> {
    let Some(row) = sqlx::query(
        "SELECT id, username, display_name, role, clinic_id FROM srv_users WHERE id = $1",
    )
    .bind(user_id.to_string())
    .fetch_optional(&state.db.pool)
    .await?
    else {
        return Ok(None);
    };
    let role_name: String = row.try_get("role")?;
    let role = Role::from_name(&role_name)
        .ok_or_else(|| AppError::internal(format!("unknown role {role_name}")))?;
    let patient_ids = sqlx::query(
        "SELECT patient_id FROM srv_patient_links WHERE user_id = $1 ORDER BY patient_id",
    )
    .bind(user_id.to_string())
    .fetch_all(&state.db.pool)
    .await?
    .iter()
    .map(|r| r.try_get::<String, _>("patient_id"))
    .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(CurrentUser {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        display_name: row.try_get("display_name")?,
        role,
        clinic_id: row.try_get("clinic_id")?,
        patient_ids,
        csrf_token,
        session_hash,
    }))
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
    let hash = token_hash(&token);
    let Some(row) = sqlx::query(
        "SELECT user_id, csrf_token, expires_at_ms FROM srv_sessions WHERE token_hash = $1",
    )
    .bind(hash.clone())
    .fetch_optional(&state.db.pool)
    .await?
    else {
        return Ok(None);
    };
    let expires: i64 = row.try_get("expires_at_ms")?;
    if expires <= now_ms() {
        return Ok(None);
    }
    let user_id: String = row.try_get("user_id")?;
    load_user(state, &user_id, row.try_get("csrf_token")?, hash).await
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

/// Middleware on the whole router: every state-changing request made with a session cookie must carry the
/// session's CSRF token (header `x-csrf-token`, or form field `csrf_token` in an urlencoded body), and any
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
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return AppError::Csrf.into_response();
    }
    let limit = state.config.body_limit_bytes;
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => return AppError::TooLarge { limit_bytes: limit }.into_response(),
    };
    let token = form_urlencoded_field(&bytes, CSRF_FIELD);
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

/// Create an account. Usernames are case-insensitive (stored lower-case).
pub async fn create_user(state: &AppState, new: &NewUser) -> Result<String, AppError> {
    let username = new.username.trim().to_lowercase();
    if username.is_empty()
        || username.len() > 100
        || !username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c))
    {
        return Err(AppError::invalid(
            "username",
            "use 1 to 100 letters, digits or . _ - @",
        ));
    }
    if new.display_name.trim().is_empty() || new.display_name.len() > 200 {
        return Err(AppError::invalid(
            "display_name",
            "give a name of 1 to 200 characters",
        ));
    }
    if new.password.chars().count() < PASSWORD_LEN_MIN || new.password.len() > 1000 {
        return Err(AppError::invalid(
            "password",
            format!("use at least {PASSWORD_LEN_MIN} characters"),
        ));
    }
    let exists = sqlx::query("SELECT id FROM srv_users WHERE username = $1")
        .bind(username.clone())
        .fetch_optional(&state.db.pool)
        .await?;
    if exists.is_some() {
        return Err(AppError::Conflict(format!(
            "the username {username:?} is taken; choose another"
        )));
    }
    let password = new.password.clone();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(AppError::internal)??;
    let id = new_id("usr");
    let mut tx = state.db.pool.begin().await?;
    sqlx::query(
        "INSERT INTO srv_users (id, username, display_name, role, clinic_id, password_hash, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id.clone())
    .bind(username)
    .bind(new.display_name.trim().to_string())
    .bind(new.role.name())
    .bind(new.clinic_id.clone())
    .bind(hash)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    for patient in &new.patient_ids {
        sqlx::query("INSERT INTO srv_patient_links (user_id, patient_id) VALUES ($1, $2)")
            .bind(id.clone())
            .bind(patient.clone())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(id)
}

/// A new account.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub password: String,
    pub role: Role,
    pub clinic_id: String,
    /// Patients this (patient or caregiver) account is linked to.
    pub patient_ids: Vec<String>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterx", &h));
    }

    #[test]
    fn limiter_blocks_after_max_failures_per_user_and_address() {
        let l = LoginLimiter::default();
        let ip = Some(IpAddr::from([10, 0, 0, 1]));
        for _ in 0..3 {
            assert!(l.check("ann", ip, 3, Duration::from_secs(60)).is_ok());
            l.failed("ann", ip);
        }
        assert!(l.check("ANN", ip, 3, Duration::from_secs(60)).is_err());
        // Another user from the same address is not locked out.
        assert!(l.check("bob", ip, 3, Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn cookie_flags() {
        let c = session_cookie_header("abc", true, Some(Duration::from_secs(60)));
        assert!(
            c.contains("HttpOnly")
                && c.contains("SameSite=Lax")
                && c.contains("Secure")
                && c.contains("Max-Age=60")
        );
        assert!(!session_cookie_header("abc", false, None).contains("Secure"));
    }
}
