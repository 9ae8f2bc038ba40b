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
    given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |d, (a, b)| d | (a ^ b))
            == 0
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
