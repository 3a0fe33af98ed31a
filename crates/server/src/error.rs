//! The one error type of the services: every failure says what is wrong and what to do, and carries the class
//! (bad input, not found, forbidden, unavailable, …) the HTTP layer turns into a status (`http::error`), with no
//! internal detail ever shown.

use http::StatusCode;

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

    pub fn field(&self) -> Option<&str> {
        match self {
            AppError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// Refuse text with NUL or other control characters (tab and line breaks excepted): no database stores them
/// faithfully (PostgreSQL refuses NUL) and no person types them. Names `field` in the error.
pub fn plain_text(field: &str, text: &str) -> Result<(), AppError> {
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(AppError::invalid(
            field,
            "contains a control character (such as NUL); remove it",
        ));
    }
    Ok(())
}
