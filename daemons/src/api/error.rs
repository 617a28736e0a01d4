//! API errors as JSON (`{"error": {"code": "...", "message": "..."}}`) with the matching status, and the
//! extractors that turn bad requests into such errors instead of axum's plain-text rejections.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable code (`invalid`, `not_found`, `conflict`, …).
    pub code: &'static str,
    /// What is wrong, naming the field where there is one.
    pub message: String,
}

/// The body of an error answer.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable code: `invalid`, `not_found`, `already_exists`, `conflict`, `forbidden`,
    /// `unauthenticated`, `token_invalid`, `token_expired`, `token_revoked`, `user_disabled`,
    /// `login_failed`, `cross_origin`, `csrf`, `host_not_allowed`, `rate_limited`,
    /// `unsupported_media_type`, `payload_too_large`, `unavailable`, `timeout`, `unsupported`, `internal`.
    pub code: String,
    /// What is wrong, in words a user can act on.
    pub message: String,
}

impl ApiError {
    /// A 400 naming the field and why.
    pub fn invalid(field: &str, reason: impl std::fmt::Display) -> Self {
        jobsched::Error::invalid(field, reason.to_string()).into()
    }

    /// A 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::forbidden_code("forbidden", message)
    }

    /// A 403 with its own code (`cross_origin`, `csrf`, `host_not_allowed`).
    pub fn forbidden_code(code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::FORBIDDEN,
            code,
            message: message.into(),
        }
    }

    /// A 401: no credential, or one that does not hold (`code` says which: `unauthenticated`,
    /// `token_invalid`, `token_expired`, `token_revoked`, `user_disabled`, `login_failed`).
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            code,
            message: message.into(),
        }
    }

    /// A 500 for a failure of the server itself (logged).
    pub fn internal(message: impl Into<String>) -> Self {
        let message = message.into();
        tracing::error!(%message, "request failed");
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message,
        }
    }
}

impl From<jobsched::Error> for ApiError {
    fn from(e: jobsched::Error) -> Self {
        use jobsched::Error as E;
        let status = match &e {
            E::Invalid { .. } => StatusCode::BAD_REQUEST,
            E::NotFound { .. } => StatusCode::NOT_FOUND,
            E::AlreadyExists { .. } | E::Conflict { .. } => StatusCode::CONFLICT,
            E::Unavailable { .. } | E::Closed { .. } | E::Fenced { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            E::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            E::Unsupported { .. } => StatusCode::NOT_IMPLEMENTED,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::warn!(error = %e, "request failed");
        }
        ApiError {
            status,
            code: e.code(),
            message: e.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
            },
        };
        let mut r = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"jobsched\""),
            );
        }
        r
    }
}

/// A JSON body: malformed JSON, unknown fields or wrong types are a 400 that says where; a body over the
/// size limit is a 413. (The guard has already refused bodies not sent as `application/json` with 415.)
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::invalid("body", "a JSON body is required"));
        }
        parse(&bytes).map(ApiJson)
    }
}

/// An optional JSON body: empty means `None`.
pub struct OptionalJson<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) || bytes.trim_ascii() == b"null" {
            return Ok(OptionalJson(None));
        }
        parse(&bytes).map(|v| OptionalJson(Some(v)))
    }
}

/// Parses a JSON body; an error names the field it is in (`timeout: invalid value: integer -1, expected
/// u32`), or `body` for errors of the document as a whole.
fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every body of this API is an object; say so rather than how a list fails to be one.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::invalid("body", "must be a JSON object"));
    }
    let mut value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::invalid("body", e))?;
    integral_floats(&mut value);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        ApiError::invalid(&field, e.into_inner())
    })
}

/// Writes numbers like `5.0` as the integers they are: JSON Schema counts them as integers, so a field
/// declared an integer takes them.
fn integral_floats(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && f.abs() < 9.0e15
            {
                *v = if f < 0.0 {
                    Value::from(f as i64)
                } else {
                    Value::from(f as u64)
                };
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats),
        Value::Object(fields) => fields.values_mut().for_each(integral_floats),
        _ => {}
    }
}

async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                code: "payload_too_large",
                message: "the request body is larger than the server accepts".to_owned(),
            }
        } else {
            ApiError::invalid("body", rejection.body_text())
        }
    })
}

/// Query parameters: a value of the wrong type or an unknown parameter is a 400 naming it.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        serde_urlencoded_query(query)
            .map(ApiQuery)
            .map_err(|e| ApiError::invalid("query", e))
    }
}

fn serde_urlencoded_query<T: DeserializeOwned>(query: &str) -> Result<T, String> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{query}").parse().map_err(|e| format!("{e}"))?,
    )
    .map(|q| q.0)
    .map_err(|e| e.body_text())
}
