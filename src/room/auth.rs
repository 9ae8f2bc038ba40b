//! The room's door: with `--http-token-file`, every request but `/healthz` (and the page that
//! asks for the token, with its style) needs the token, as `Authorization: Bearer TOKEN` or
//! as the cookie the page sets once the token is typed. Without one, the room listens on
//! loopback only (`bind` in `mod.rs`). Every answer carries a strict Content-Security-Policy.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::Room;
use super::pages::token_page;

/// The cookie that carries the token once the page was given it.
const COOKIE: &str = "drctl_room";

/// No inline script or style, nothing from elsewhere: everything is served by drctl.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Refuses a request without the room's token (when it has one).
pub async fn require_token(
    State(room): State<Arc<Room>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = &room.token else {
        // Without a token the room listens on loopback only, and answers only requests that
        // name it there: a page of another site whose name was made to point at 127.0.0.1
        // (DNS rebinding) sends its own name, and reads nothing.
        if !names_loopback(request.headers()) {
            return (
                StatusCode::MISDIRECTED_REQUEST,
                "this incident room answers requests to a loopback address only (Host: localhost, 127.0.0.1 or [::1])\n",
            )
                .into_response();
        }
        return next.run(request).await;
    };
    let open = matches!(
        request.uri().path(),
        "/healthz" | "/login" | "/static/room.css"
    );
    if open || carries(request.headers(), token) {
        return next.run(request).await;
    }
    let wants_page = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let mut response = if wants_page {
        (StatusCode::UNAUTHORIZED, Html(token_page(false))).into_response()
    } else {
        (
            StatusCode::UNAUTHORIZED,
            "this incident room needs its token: Authorization: Bearer TOKEN\n",
        )
            .into_response()
    };
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"drctl\""),
    );
    response
}

/// Whether `headers` carry `token`, as a bearer token or the room's cookie.
fn carries(headers: &HeaderMap, token: &str) -> bool {
    let bearer = headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.strip_prefix("Bearer "))
        .any(|given| same(given.trim(), token));
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .any(|given| same(given, token));
    bearer || cookie
}

/// Compares in time that does not depend on where the texts differ.
fn same(given: &str, token: &str) -> bool {
    use subtle::ConstantTimeEq;
    given.as_bytes().ct_eq(token.as_bytes()).into()
}

/// Whether the request's `Host` names a loopback address (`localhost`, `127.0.0.1`, `[::1]`,
/// with or without a port).
fn names_loopback(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn only_a_loopback_host_is_answered_without_a_token() {
        for ok in [
            "127.0.0.1:8080",
            "localhost:1",
            "LOCALHOST",
            "[::1]:80",
            "127.1.2.3",
        ] {
            assert!(names_loopback(&host(ok)), "{ok}");
        }
        for bad in [
            "evil.example:8080",
            "evil.example",
            "127.0.0.1.evil.example",
            "localhost.evil.example:80",
            "[::2]:80",
            "10.0.0.1:80",
        ] {
            assert!(!names_loopback(&host(bad)), "{bad}");
        }
        assert!(!names_loopback(&HeaderMap::new()), "no Host at all");
    }

    #[test]
    fn the_token_must_be_given_whole() {
        assert!(same("0123456789abcdef", "0123456789abcdef"));
        assert!(!same("0123456789abcde", "0123456789abcdef"));
        assert!(!same("0123456789abcdeX", "0123456789abcdef"));
    }
}

/// The form of the token page.
#[derive(serde::Deserialize)]
pub struct Login {
    token: String,
}

/// `POST /login`: the token typed once, kept in a cookie for the pages and their streams.
pub async fn login(
    State(room): State<Arc<Room>>,
    axum::Form(login): axum::Form<Login>,
) -> Response {
    match &room.token {
        Some(token) if same(login.token.trim(), token) => {
            let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict");
            let mut response = Redirect::to("/").into_response();
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Some(_) => (StatusCode::UNAUTHORIZED, Html(token_page(true))).into_response(),
        None => Redirect::to("/").into_response(),
    }
}

/// Adds the room's security headers to every answer.
pub async fn secure(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}
