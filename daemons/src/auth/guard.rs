//! The one middleware that decides who the caller of a request is and whether the request may go on:
//! the `Host` (DNS rebinding), the client's request rate, the `Origin` of state-changing requests, the
//! body's content type, the credential (a bearer token or the session cookie), the user's request rate
//! and, for cookie sessions, the CSRF token. Handlers then ask the [`Caller`] what it may do.

use std::net::IpAddr;

use axum::extract::connect_info::ConnectInfo;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::origin::{ClientAddr, check_origin, client_ip};
use super::{Auth, CSRF_HEADER, SESSION_COOKIE};
use crate::api::{ApiError, Caller, ClientIp, Credential, SharedState};

/// Paths anyone may call: health checks and logging in.
pub const PUBLIC_PATHS: &[&str] = &["/healthz", "/readyz", "/api/auth/login"];

/// True for methods that change something.
pub fn is_unsafe(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The credential of a request: the bearer token, else the session cookie (and whether it came from one).
pub fn credential(headers: &HeaderMap) -> Result<Option<(String, bool)>, ApiError> {
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        let v = v.to_str().unwrap_or("");
        // The scheme's name is case-insensitive (RFC 9110 11.1).
        let Some(token) = v
            .split_at_checked(7)
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer "))
            .map(|(_, token)| token)
        else {
            return Err(ApiError::unauthorized(
                "unauthenticated",
                "the Authorization header must be 'Bearer <token>'",
            ));
        };
        return Ok(Some((token.trim().to_owned(), false)));
    }
    Ok(cookie(headers, SESSION_COOKIE).map(|c| (c, true)))
}

/// The value of cookie `name`.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// Fails with 415 unless a request with a body declares it JSON.
fn check_content_type(req: &Request) -> Result<(), ApiError> {
    let h = req.headers();
    let has_body = h.contains_key(header::TRANSFER_ENCODING)
        || h.get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0");
    if !has_body {
        return Ok(());
    }
    let ct = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if mime.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: "unsupported_media_type",
            message: format!(
                "request bodies must be sent as Content-Type: application/json, not '{}'",
                if ct.is_empty() { "none" } else { ct }
            ),
        })
    }
}

/// Fails with 403 unless a cookie session's state-changing request repeats its CSRF token.
fn check_csrf(auth: &Auth, caller: &Caller, headers: &HeaderMap) -> Result<(), ApiError> {
    let Credential::Session {
        id, cookie: true, ..
    } = &caller.credential
    else {
        return Ok(());
    };
    let given = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if bool::from(given.as_bytes().ct_eq(auth.csrf_token(id).as_bytes())) {
        Ok(())
    } else {
        Err(ApiError::forbidden_code(
            "csrf",
            format!(
                "a request that changes something with the session cookie must repeat the session's CSRF \
                 token in the {CSRF_HEADER} header"
            ),
        ))
    }
}

/// The middleware (see the module documentation).
///
/// A page of the Web UI asked for without a valid session is sent to the login page instead of being
/// answered 401.
pub async fn guard(State(state): State<SharedState>, mut req: Request, next: Next) -> Response {
    match admit(&state.auth, &state.telemetry, &mut req).await {
        Ok(()) => next.run(req).await,
        Err(refusal)
            if refusal.status() == StatusCode::UNAUTHORIZED
                && crate::ui::is_page(req.method(), req.uri().path()) =>
        {
            let target = req
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            crate::ui::to_login(&target)
        }
        Err(refusal) => refusal,
    }
}

async fn admit(
    auth: &Auth,
    telemetry: &crate::metrics::Telemetry,
    req: &mut Request,
) -> Result<(), Response> {
    let host = auth
        .settings
        .hosts
        .check(req.headers())
        .map_err(IntoResponse::into_response)?
        .to_owned();
    let peer = req
        .extensions()
        .get::<ConnectInfo<ClientAddr>>()
        .map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.0.ip());
    let client = client_ip(peer, req.headers(), &auth.settings.trusted_proxies);
    req.extensions_mut().insert(ClientIp(client));
    auth.limits
        .client(client)
        .map_err(IntoResponse::into_response)?;
    let unsafe_method = is_unsafe(req.method());
    if unsafe_method {
        check_origin(
            req.headers(),
            auth.scheme(),
            &host,
            &auth.settings.allowed_origins,
        )
        .map_err(IntoResponse::into_response)?;
    }
    check_content_type(req).map_err(IntoResponse::into_response)?;
    if PUBLIC_PATHS.contains(&req.uri().path()) || crate::ui::is_public(req.uri().path()) {
        return Ok(());
    }
    if req.uri().path() == crate::metrics::PATH && telemetry.is_scrape(req.headers()) {
        req.extensions_mut().insert(crate::metrics::Scrape);
        return Ok(());
    }
    let Some((credential, via_cookie)) =
        credential(req.headers()).map_err(IntoResponse::into_response)?
    else {
        return Err(ApiError::unauthorized(
            "unauthenticated",
            "this endpoint needs a token: log in (POST /api/auth/login, or `jobsched login`) and send \
             'Authorization: Bearer <token>'",
        )
        .into_response());
    };
    let caller = auth
        .authenticate(&credential, client, via_cookie)
        .await
        .map_err(IntoResponse::into_response)?;
    auth.limits
        .user(&caller.user_id, &caller.user)
        .map_err(IntoResponse::into_response)?;
    if unsafe_method {
        check_csrf(auth, &caller, req.headers()).map_err(IntoResponse::into_response)?;
    }
    tracing::Span::current().record("user", caller.user.as_str());
    req.extensions_mut().insert(caller);
    Ok(())
}

/// The check of an executor's own API: a login token of the cluster (signature and expiry, with the key
/// of `--jwt-secret-file`; an executor has no store to look users up in).
pub fn executor_token(
    key: Option<&super::jwt::SigningKey>,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    let Some((token, _)) = credential(headers)? else {
        return Err(ApiError::unauthorized(
            "unauthenticated",
            "this endpoint needs a login token: 'Authorization: Bearer <token>'",
        ));
    };
    let Some(key) = key else {
        return Err(ApiError::unauthorized(
            "token_invalid",
            "this executor checks no tokens: start it with --jwt-secret-file (the schedulers' key file)",
        ));
    };
    if token.starts_with(super::tokens::PREFIX) {
        return Err(ApiError::unauthorized(
            "token_invalid",
            "an executor cannot check API tokens (it has no store): send a login token",
        ));
    }
    key.verify(&token).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_authorization(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, value.parse().unwrap());
        h
    }

    #[test]
    fn the_bearer_scheme_is_read_in_any_case_and_other_schemes_are_refused() {
        for v in ["Bearer abc", "bearer abc", "BEARER abc"] {
            let got = credential(&with_authorization(v)).unwrap();
            assert_eq!(got, Some(("abc".to_owned(), false)), "{v}");
        }
        for v in ["Basic abc", "Bearer", "abc"] {
            let e = credential(&with_authorization(v)).unwrap_err();
            assert_eq!(e.code, "unauthenticated", "{v}");
        }
    }
}
