//! Accounts and sessions: argon2id password hashes, rate-limited login, session cookies (Secure, HttpOnly,
//! SameSite=Lax) and per-session CSRF tokens. The extractors that find the `CurrentUser` of a request are in
//! `http::extract`.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use record::Kind;
use serde::Serialize;

use crate::domain::EventDraft;
pub use crate::domain::Role;
use crate::error::AppError;
use crate::ids::{new_id, random_hex, token_hash};
use crate::services::AppState;
use crate::services::now_ms;
use crate::store;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "infusafe_session";
/// Header carrying the CSRF token on API calls (forms use the `csrf_token` field instead).
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Form field carrying the CSRF token.
pub const CSRF_FIELD: &str = "csrf_token";

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

/// Minimum password length for new accounts, not counting white space around it.
pub const PASSWORD_LEN_MIN: usize = 10;
/// Longest password accepted (bytes), so hashing stays bounded.
pub const PASSWORD_BYTES_MAX: usize = 1000;

/// Passwords of the minimum length or longer that appear at the top of public lists of breached passwords; refused
/// whatever their case. Short on purpose: the length rule does most of the work.
const COMMON_PASSWORDS: [&str; 24] = [
    "1234567890",
    "12345678910",
    "123456789a",
    "0123456789",
    "1111111111",
    "0000000000",
    "1q2w3e4r5t",
    "qwertyuiop",
    "asdfghjkl1",
    "password12",
    "password123",
    "password1234",
    "passw0rd123",
    "iloveyou12",
    "qwerty1234",
    "qwerty12345",
    "abcdefghij",
    "abc1234567",
    "letmein123",
    "welcome123",
    "changeme123",
    "football123",
    "princess123",
    "infusafe123",
];

/// The password policy: at least `PASSWORD_LEN_MIN` characters not counting white space around them, at most
/// `PASSWORD_BYTES_MAX` bytes, not one of the most common passwords. Says what to do when refused.
pub fn check_password_policy(password: &str) -> Result<(), AppError> {
    let trimmed = password.trim();
    if trimmed.chars().count() < PASSWORD_LEN_MIN || password.len() > PASSWORD_BYTES_MAX {
        return Err(AppError::invalid(
            "password",
            format!(
                "use at least {PASSWORD_LEN_MIN} characters (spaces at the start or end do not count) and at most {PASSWORD_BYTES_MAX} bytes"
            ),
        ));
    }
    let lower = trimmed.to_lowercase();
    let repeated = trimmed.chars().all(|c| trimmed.starts_with(c));
    if repeated || COMMON_PASSWORDS.contains(&lower.as_str()) {
        return Err(AppError::invalid(
            "password",
            "this password is one of the most common ones and easy to guess; choose another (a few unrelated words work well)",
        ));
    }
    Ok(())
}

/// Sliding-window counter of login attempts per (username, address) and per address. An attempt is counted
/// *before* the password is checked (reserve, then check), under one lock, so parallel guesses cannot all pass
/// the limit before any failure is counted; a success gives the user's reservations back.
#[derive(Debug, Clone, Default)]
pub struct LoginLimiter {
    inner: Arc<Mutex<HashMap<String, VecDeque<Instant>>>>,
}

/// Keys tracked at most: beyond this, keys with no attempt inside the window are dropped first, then the
/// per-(user, address) keys; the per-account and per-address counts are kept, so filling the table never wipes a
/// lockout.
pub const LIMITER_KEYS_MAX: usize = 100_000;

/// Attempts allowed per account from all addresses together, as a multiple of the per-(user, address) limit: a
/// guesser rotating addresses meets this, while a person's typos from one address meet the smaller limit first.
pub const LIMITER_ACCOUNT_FACTOR: u32 = 4;

impl LoginLimiter {
    /// (user, address), address, account. IPv6 addresses count per /64 (one household or host's block).
    fn keys(username: &str, ip: Option<IpAddr>) -> [String; 3] {
        let ip = match ip {
            Some(IpAddr::V6(v6)) => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
            Some(v4) => v4.to_string(),
            None => "unknown".into(),
        };
        let user = username.to_lowercase();
        [
            format!("u:{user}|{ip}"),
            format!("ip:{ip}"),
            format!("acct:{user}"),
        ]
    }

    /// Make room without forgetting a lockout: drop keys whose attempts are all outside the window, then the
    /// per-(user, address) keys.
    fn make_room(map: &mut HashMap<String, VecDeque<Instant>>, now: Instant, window: Duration) {
        map.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) <= window));
        if map.len() >= LIMITER_KEYS_MAX {
            map.retain(|k, _| !k.starts_with("u:"));
        }
    }

    /// Count one attempt now, or `Err(seconds)` while the caller must wait (nothing is counted then). Per address
    /// ten times more attempts are allowed, so one person's typos never lock out a household.
    pub fn reserve(
        &self,
        username: &str,
        ip: Option<IpAddr>,
        max: u32,
        window: Duration,
    ) -> Result<(), u64> {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let keys = Self::keys(username, ip);
        let limits = [
            max,
            max.saturating_mul(10),
            max.saturating_mul(LIMITER_ACCOUNT_FACTOR),
        ];
        for (key, limit) in keys.iter().zip(limits) {
            if let Some(q) = map.get_mut(key) {
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
        if map.len() >= LIMITER_KEYS_MAX {
            Self::make_room(&mut map, now, window);
        }
        for key in keys {
            map.entry(key).or_default().push_back(now);
        }
        Ok(())
    }

    /// The password was right: the user's reserved attempts are given back, and the address gets back the one
    /// this attempt reserved, so only failures count against a household.
    pub fn succeeded(&self, username: &str, ip: Option<IpAddr>) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let [user_key, ip_key, account_key] = Self::keys(username, ip);
        map.remove(&user_key);
        for key in [ip_key, account_key] {
            if let Some(q) = map.get_mut(&key) {
                q.pop_back();
            }
        }
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
    if crate::error::plain_text("username", username).is_err() {
        return Err(AuthError::Invalid(
            "the username contains a control character (such as NUL); remove it".into(),
        ));
    }
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
        .reserve(
            username,
            client_ip,
            config.login_failures_max,
            config.login_window,
        )
        .map_err(|retry_after_s| AuthError::RateLimited { retry_after_s })?;

    let row = store::accounts::credentials(&state.db, &username.to_lowercase()).await?;
    let (user_id, role, hash) = match &row {
        Some((id, role, hash)) => (id.clone(), role.clone(), hash.clone()),
        None => (String::new(), String::new(), dummy_hash().to_string()),
    };
    let password_owned = password.to_string();
    let ok = tokio::task::spawn_blocking(move || verify_password(&password_owned, &hash))
        .await
        .map_err(AppError::internal)?;
    let role = Role::from_name(&role);
    let (true, Some(role)) = (ok && row.is_some(), role) else {
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
    store::accounts::insert_session(
        &state.db,
        &token_hash(&token),
        &user_id,
        &csrf,
        now,
        now.saturating_add(ttl_ms),
    )
    .await?;
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

/// Where an account's own audit events go: every patient it is linked to (patients, caregivers), or for
/// clinicians the clinic-wide audit under the pseudo patient id `clinic:<id>`.
fn audit_targets(user: &CurrentUser) -> Vec<String> {
    if user.role.is_clinician() {
        vec![format!("clinic:{}", user.clinic_id)]
    } else {
        user.patient_ids.clone()
    }
}

/// Logins are recorded where the account's audit goes (`audit_targets`).
async fn record_login_event(state: &AppState, user_id: &str, success: bool, ip: Option<IpAddr>) {
    let Ok(Some(user)) = load_user(state, user_id, String::new(), String::new()).await else {
        return;
    };
    let targets = audit_targets(&user);
    let events = targets
        .iter()
        .map(|p| {
            EventDraft::new(
                p,
                Kind::Login,
                user.role.origin(),
                Some(&user.id),
                now_ms(),
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

/// Set a new password for `target` (its owner changing it, or a clinic admin resetting it), end the account's
/// other sessions, and record who did it where the account's audit goes. Never records the password.
async fn set_password(
    state: &AppState,
    by: &CurrentUser,
    target: &CurrentUser,
    new_password: &str,
) -> Result<(), AppError> {
    crate::error::plain_text("new_password", new_password)?;
    check_password_policy(new_password).map_err(|e| match e {
        AppError::Invalid { message, .. } => AppError::invalid("new_password", message),
        other => other,
    })?;
    let password = new_password.to_string();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(AppError::internal)??;
    let keep = (by.id == target.id).then_some(by.session_hash.as_str());
    store::accounts::set_password(&state.db, &target.id, &hash, keep).await?;
    let how = if by.id == target.id {
        "changed"
    } else {
        "reset"
    };
    let events = audit_targets(target)
        .iter()
        .map(|p| {
            EventDraft::new(
                p,
                crate::domain::ServerKind::PasswordChanged,
                by.role.origin(),
                Some(&by.id),
                now_ms(),
                serde_json::json!({"account": target.username, "user_id": target.id, "how": how, "by": by.id, "by_name": by.display_name}),
            )
        })
        .collect();
    state.journal.append(events).await?;
    Ok(())
}

/// A person changes their own password: the current one must be right (rate-limited like a login); their other
/// sessions end.
pub async fn change_own_password(
    state: &AppState,
    user: &CurrentUser,
    current_password: &str,
    new_password: &str,
    client_ip: Option<IpAddr>,
) -> Result<(), AppError> {
    let config = &state.config;
    state
        .limiter
        .reserve(
            &user.username,
            client_ip,
            config.login_failures_max,
            config.login_window,
        )
        .map_err(|retry_after_s| AppError::RateLimited { retry_after_s })?;
    let hash = store::accounts::password_hash(&state.db, &user.id)
        .await?
        .unwrap_or_else(|| dummy_hash().to_string());
    let current = current_password.to_string();
    let ok = tokio::task::spawn_blocking(move || verify_password(&current, &hash))
        .await
        .map_err(AppError::internal)?;
    if !ok {
        return Err(AppError::invalid(
            "current_password",
            "this is not your current password; type it again",
        ));
    }
    state.limiter.succeeded(&user.username, client_ip);
    set_password(state, user, user, new_password).await
}

/// A clinic admin sets a new password for an account of their clinic (the person forgot theirs); every session
/// of that account ends.
pub async fn reset_password(
    state: &AppState,
    admin: &CurrentUser,
    user_id: &str,
    new_password: &str,
) -> Result<(), AppError> {
    require_admin(admin)?;
    let target = load_user(state, user_id, String::new(), String::new())
        .await?
        .filter(|u| u.clinic_id == admin.clinic_id)
        .ok_or_else(|| AppError::not_found("this account in your clinic"))?;
    set_password(state, admin, &target, new_password).await
}

/// End a session (idempotent).
pub async fn logout(state: &AppState, user: &CurrentUser) -> Result<String, AppError> {
    store::accounts::delete_session(&state.db, &user.session_hash).await?;
    state.hub.session_ended(&user.session_hash);
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
    let Some(row) = store::accounts::user(&state.db, user_id).await? else {
        return Ok(None);
    };
    let role = Role::from_name(&row.role)
        .ok_or_else(|| AppError::internal(format!("unknown role {}", row.role)))?;
    let patient_ids = store::accounts::patient_links(&state.db, user_id).await?;
    Ok(Some(CurrentUser {
        id: row.id,
        username: row.username,
        display_name: row.display_name,
        role,
        clinic_id: row.clinic_id,
        patient_ids,
        csrf_token,
        session_hash,
    }))
}

/// The user behind a session token, if the session exists and has not expired.
pub async fn user_for_session(
    state: &AppState,
    token: &str,
) -> Result<Option<CurrentUser>, AppError> {
    let hash = token_hash(token);
    let Some((user_id, csrf_token, expires_at_ms)) =
        store::accounts::session(&state.db, &hash).await?
    else {
        return Ok(None);
    };
    if expires_at_ms <= now_ms() {
        return Ok(None);
    }
    load_user(state, &user_id, csrf_token, hash).await
}

/// How often an open stream checks that its session still exists (a sign-out on another server process, an
/// admin ending it), besides hearing this process's sign-outs at once.
pub const STREAM_SESSION_CHECK_EVERY: Duration = Duration::from_secs(15);

/// Resolves when the user's session ends: it expires, the person signs out, or it is removed from the database.
/// Live streams end then, so nothing more reaches a screen whose person has left.
pub async fn session_ended(state: AppState, user: CurrentUser) {
    let Ok(Some((_, _, expires_at_ms))) =
        store::accounts::session(&state.db, &user.session_hash).await
    else {
        return;
    };
    let left_ms = u64::try_from(expires_at_ms.saturating_sub(now_ms())).unwrap_or(0);
    let expiry = tokio::time::sleep(Duration::from_millis(left_ms));
    tokio::pin!(expiry);
    let mut ended = state.hub.ended_sessions();
    let mut check = tokio::time::interval(STREAM_SESSION_CHECK_EVERY);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut expiry => return,
            hash = ended.recv() => match hash {
                Ok(hash) if *hash == user.session_hash => return,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
            _ = check.tick() => {
                if matches!(store::accounts::session(&state.db, &user.session_hash).await, Ok(None)) {
                    return;
                }
            }
        }
    }
}

/// Create an account. Usernames are case-insensitive (stored lower-case).
pub async fn create_user(state: &AppState, new: &NewUser) -> Result<String, AppError> {
    crate::error::plain_text("username", &new.username)?;
    crate::error::plain_text("display_name", &new.display_name)?;
    crate::error::plain_text("password", &new.password)?;
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
    check_password_policy(&new.password)?;
    if store::accounts::username_taken(&state.db, &username).await? {
        return Err(AppError::Conflict(format!(
            "the username {username:?} is taken; choose another"
        )));
    }
    let password = new.password.clone();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(AppError::internal)??;
    let id = new_id("usr");
    let row = store::accounts::UserRow {
        id: id.clone(),
        username,
        display_name: new.display_name.trim().to_string(),
        role: new.role.name().to_string(),
        clinic_id: new.clinic_id.clone(),
    };
    store::accounts::insert_user(&state.db, &row, &hash, &new.patient_ids, now_ms()).await?;
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

/// Only nurses and clinic admins.
pub fn require_clinician(user: &CurrentUser) -> Result<(), AppError> {
    if user.role.is_clinician() {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            "only the care team (nurses and clinic admins) can do this".into(),
        ))
    }
}

/// Only clinic admins.
pub fn require_admin(user: &CurrentUser) -> Result<(), AppError> {
    if user.role == Role::Admin {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            "only a clinic admin can do this".into(),
        ))
    }
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
    fn limiter_blocks_after_max_attempts_per_user_and_address() {
        let l = LoginLimiter::default();
        let ip = Some(IpAddr::from([10, 0, 0, 1]));
        for _ in 0..3 {
            assert!(l.reserve("ann", ip, 3, Duration::from_secs(60)).is_ok());
        }
        assert!(l.reserve("ANN", ip, 3, Duration::from_secs(60)).is_err());
        // Another user from the same address is not locked out.
        assert!(l.reserve("bob", ip, 3, Duration::from_secs(60)).is_ok());
        // A success gives the user's attempts back.
        l.succeeded("bob", ip);
        for _ in 0..3 {
            assert!(l.reserve("bob", ip, 3, Duration::from_secs(60)).is_ok());
        }
    }

    #[test]
    fn rotating_addresses_meets_the_account_limit() {
        let l = LoginLimiter::default();
        let window = Duration::from_secs(60);
        let passed = (0..100u16)
            .filter(|i| {
                let ip = Some(IpAddr::from([0x2001, 0xdb8, *i, 0, 0, 0, 0, 1]));
                l.reserve("nurse", ip, 5, window).is_ok()
            })
            .count();
        assert_eq!(passed, 5 * LIMITER_ACCOUNT_FACTOR as usize);
        // Addresses inside one IPv6 /64 count as one.
        let l = LoginLimiter::default();
        let same_block = (0..20u16)
            .filter(|i| {
                let ip = Some(IpAddr::from([0x2001, 0xdb8, 1, 1, 0, 0, 0, *i]));
                l.reserve("ann", ip, 5, window).is_ok()
            })
            .count();
        assert_eq!(same_block, 5);
    }

    #[test]
    fn parallel_attempts_cannot_pass_the_limit_together() {
        let l = LoginLimiter::default();
        let ip = Some(IpAddr::from([10, 0, 0, 2]));
        let passed: usize = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..100)
                .map(|_| {
                    let l = l.clone();
                    scope.spawn(move || l.reserve("ann", ip, 5, Duration::from_secs(60)).is_ok())
                })
                .collect();
            handles
                .into_iter()
                .map(|h| usize::from(h.join().unwrap_or(false)))
                .sum()
        });
        assert_eq!(passed, 5);
    }

    #[test]
    fn password_policy() {
        assert!(check_password_policy("correct horse battery").is_ok());
        assert!(check_password_policy("          ").is_err(), "ten spaces");
        assert!(
            check_password_policy("  short9  ").is_err(),
            "surrounding spaces do not count"
        );
        assert!(
            check_password_policy("Password123").is_err(),
            "common, any case"
        );
        assert!(
            check_password_policy("aaaaaaaaaaaa").is_err(),
            "one repeated character"
        );
        assert!(check_password_policy(&"x".repeat(1001)).is_err());
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
