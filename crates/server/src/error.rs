//! One error envelope for every failure: `application/problem+json` with a stable `code`, a
//! `detail` that says what to do, and the `field` at fault where there is one. 500s stay opaque:
//! their cause goes to the log once, inside the request's span.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use latchkey_core::{CoreError, ErrorKind};
use serde::Serialize;

/// An error answer (RFC 9457 problem details), with Latchkey's stable `code` and the `field` at fault.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub kind: &'static str,
    #[schema(value_type = String)]
    pub title: &'static str,
    pub status: u16,
    pub code: String,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub detail: String,
    pub field: Option<String>,
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.to_owned(),
            detail: detail.into(),
            field: None,
            headers: Vec::new(),
        }
    }

    pub fn field(mut self, field: impl Into<String>) -> ApiError {
        self.field = Some(field.into());
        self
    }

    pub fn header(mut self, name: header::HeaderName, value: HeaderValue) -> ApiError {
        self.headers.push((name, value));
        self
    }

    /// The one answer to every authentication failure: same status, body and headers.
    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Authentication failed. Send an API credential as HTTP Basic (workspace as user name, token as password) or as Authorization: Bearer <token>.",
        )
        .header(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"latchkey\", Bearer realm=\"latchkey\""),
        )
    }

    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("No such {what}."),
        )
    }
}

fn title(status: StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("Error")
}

impl ApiError {
    /// The HTTP status of a core error (the web page answers with the same ones).
    pub fn status_for(e: &CoreError) -> StatusCode {
        match (e, e.kind()) {
            (CoreError::StaleRevision, _) => StatusCode::PRECONDITION_FAILED,
            (CoreError::ProviderUnreachable { .. }, _) => StatusCode::BAD_GATEWAY,
            (CoreError::UpstreamUnreachable { .. }, _) => StatusCode::BAD_GATEWAY,
            (CoreError::UpstreamTimeout { .. }, _) => StatusCode::GATEWAY_TIMEOUT,
            (CoreError::RateLimited { .. } | CoreError::QuotaExhausted { .. }, _) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            (CoreError::InvalidProxyPath(_), _) => StatusCode::BAD_REQUEST,
            (CoreError::StoreUnavailable(_), _) => StatusCode::SERVICE_UNAVAILABLE,
            (_, ErrorKind::Invalid) => StatusCode::UNPROCESSABLE_ENTITY,
            (_, ErrorKind::Rejected) => StatusCode::UNPROCESSABLE_ENTITY,
            (_, ErrorKind::NotFound) => StatusCode::NOT_FOUND,
            (_, ErrorKind::Conflict) => StatusCode::CONFLICT,
            (_, ErrorKind::Refused) => StatusCode::CONFLICT,
            (_, ErrorKind::Unavailable) => StatusCode::SERVICE_UNAVAILABLE,
            (_, ErrorKind::Forbidden) => StatusCode::FORBIDDEN,
            (_, ErrorKind::Setup) | (_, ErrorKind::Internal) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> ApiError {
        let status = ApiError::status_for(&e);
        if status.is_server_error()
            && status != StatusCode::BAD_GATEWAY
            && status != StatusCode::SERVICE_UNAVAILABLE
            && status != StatusCode::GATEWAY_TIMEOUT
        {
            tracing::error!(error = %e, code = e.code(), "internal error");
            return ApiError::new(
                status,
                "internal",
                "An internal error occurred; it has been logged. Try again, or ask the operator to look at the log.",
            );
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(error = ?e, "service unavailable");
        }
        let field = e.field().map(str::to_owned);
        let mut error = ApiError::new(status, e.code(), e.to_string());
        error.field = field;
        if let CoreError::RateLimited { retry_after, .. }
        | CoreError::QuotaExhausted { retry_after, .. } = &e
        {
            error = error.header(header::RETRY_AFTER, HeaderValue::from(*retry_after));
        }
        error
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Problem {
            kind: "about:blank",
            title: title(self.status),
            status: self.status.as_u16(),
            code: self.code,
            detail: self.detail,
            field: self.field,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The error answers every authenticated route may give.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum Errors {
    /// Malformed JSON, unknown or mistyped fields, or a bad query string or header.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// Authentication failed (the same answer for every cause).
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// The API credential may not do this.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// No such object in the caller's workspace (another workspace's ids answer the same).
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
    /// The request took longer than the server's request timeout.
    #[response(status = 408, content_type = "application/problem+json")]
    RequestTimeout(Problem),
    /// A value is not valid, or the provider rejected the credential.
    #[response(status = 422, content_type = "application/problem+json")]
    Unprocessable(Problem),
    /// Too many failed authentications from this address; for the proxy also the provider's rate
    /// limit or quota. `Retry-After` says when to try again.
    #[response(status = 429, content_type = "application/problem+json")]
    TooManyRequests(Problem),
    /// The database is unavailable.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}

/// The further error answers of a route that takes a JSON body.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum BodyErrors {
    /// The body is larger than 64 KiB.
    #[response(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(Problem),
    /// The body is not JSON (send `Content-Type: application/json`).
    #[response(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Problem),
}

/// The further error answer of a route that can clash with what exists.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum ConflictErrors {
    /// A duplicate name, a disabled credential, or a limit reached.
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(Problem),
}

/// The further error answer of a route that honours `If-Match`.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum StaleErrors {
    /// If-Match names a revision that is no longer current; nothing was changed.
    #[response(status = 412, content_type = "application/problem+json")]
    PreconditionFailed(Problem),
}

/// The further error answer of a route that asks the provider.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum ProviderErrors {
    /// The provider could not be reached to verify the credential.
    #[response(status = 502, content_type = "application/problem+json")]
    BadGateway(Problem),
}

/// The further error answers of the proxy (Latchkey's own; the provider's answers pass through).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum ProxyErrors {
    /// The credential is disabled.
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(Problem),
    /// The provider could not be reached.
    #[response(status = 502, content_type = "application/problem+json")]
    BadGateway(Problem),
    /// The provider did not answer in time.
    #[response(status = 504, content_type = "application/problem+json")]
    GatewayTimeout(Problem),
}
