//! The web page served at `/`: sign in, the credentials screen of tiles with the Add New
//! Credential overlay, a credential's page, and the API Credentials pane. Server-rendered HTML,
//! a little plain JavaScript and CSS served from `/assets/`, nothing from elsewhere. Handlers are
//! as thin as the REST API's: each calls the same core operation with the signed-in person's
//! `Actor`; every rule is in core.
//!
//! Here: the routes, the security headers, the form extractors (`Posted`: same origin, a live
//! session, its CSRF token; `Viewer`). `session.rs`: the sealed cookie. `sign_in.rs`,
//! `credentials.rs`, `api_credentials.rs`: the handlers. `view.rs`: the HTML.

mod api_credentials;
mod credentials;
mod session;
mod sign_in;
mod view;

use crate::AppState;
use crate::extract::RequestInfo;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use latchkey_core::{
    ApiCredential, CoreError, ErrorKind, ListQuery, NewCredential, Role, Status, Verification,
    VerifyMode,
};
use latchkey_vault::Secret;
use maud::Markup;
use session::{NoSession, Session, WebUser};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tower_http::set_header::SetResponseHeaderLayer;
use view::{AddForm, Chrome, Detail, Filters, Issued};

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
const APP_JS: &str = include_str!("../../assets/app.js");
const APP_CSS: &str = include_str!("../../assets/app.css");
const ICON: &str = include_str!("../../assets/icon.svg");

/// The web page's own state: the one-time nonces of the Add New Credential form.
#[derive(Default)]
pub struct WebState {
    nonces: Mutex<HashMap<String, (Instant, Option<String>)>>,
}

enum Begin {
    Fresh,
    InFlight,
    Done,
}

const NONCE_TTL: Duration = Duration::from_secs(600);

impl WebState {
    fn begin(&self, nonce: &str) -> Begin {
        let mut map = self.nonces.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 10_000 {
            map.retain(|_, (at, _)| at.elapsed() < NONCE_TTL);
            if map.len() > 10_000 {
                map.clear();
            }
        }
        match map.get(nonce) {
            Some((at, _)) if at.elapsed() >= NONCE_TTL => {
                map.insert(nonce.to_owned(), (Instant::now(), None));
                Begin::Fresh
            }
            Some((_, Some(_))) => Begin::Done,
            Some((_, None)) => Begin::InFlight,
            None => {
                map.insert(nonce.to_owned(), (Instant::now(), None));
                Begin::Fresh
            }
        }
    }

    fn finish(&self, nonce: &str, id: Option<&str>) {
        let mut map = self.nonces.lock().unwrap_or_else(|p| p.into_inner());
        match id {
            Some(id) => {
                map.insert(nonce.to_owned(), (Instant::now(), Some(id.to_owned())));
            }
            None => {
                map.remove(nonce);
            }
        }
    }
}

/// A form post under way: if it ends without success (an error, or the request dropped), its
/// nonce is forgotten so that the form can be sent again.
struct Pending<'a> {
    web: &'a WebState,
    nonce: &'a str,
}

impl Pending<'_> {
    fn succeeded(self, id: &str) {
        self.web.finish(self.nonce, Some(id));
        std::mem::forget(self);
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.web.finish(self.nonce, None);
    }
}

/// The page's routes, with their security headers.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(credentials::home))
        .route("/sign-in", get(to_home).post(sign_in::sign_in))
        .route("/sign-out", get(to_home).post(sign_in::sign_out))
        .route(
            "/credentials",
            get(to_home).post(credentials::create_credential),
        )
        .route("/credentials/{id}", get(credentials::show_credential))
        .route(
            "/credentials/{id}/{action}",
            post(credentials::credential_action),
        )
        .route(
            "/api-credentials",
            get(api_credentials::api_credentials).post(api_credentials::add_api_credential),
        )
        .route(
            "/api-credentials/{id}/{action}",
            post(api_credentials::api_credential_action),
        )
        .route("/assets/app.js", get(app_js))
        .route("/assets/app.css", get(app_css))
        .route("/assets/icon.svg", get(icon))
        .route("/favicon.ico", get(icon))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}

async fn app_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        APP_JS,
    )
        .into_response()
}

async fn app_css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        APP_CSS,
    )
        .into_response()
}

async fn icon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "max-age=86400"),
        ],
        ICON,
    )
        .into_response()
}

async fn to_home() -> Response {
    see_other("/")
}

fn see_other(location: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn html(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

fn chrome<'a>(user: &'a WebUser, current: &'a str) -> Chrome<'a> {
    Chrome {
        workspace: user.workspace(),
        who: &user.principal.name,
        csrf: &user.session.csrf,
        current,
    }
}

/// A message from core as a sentence: capitalised, ending with a full stop.
fn sentence(e: &CoreError) -> String {
    if e.kind() == ErrorKind::Internal || e.kind() == ErrorKind::Setup {
        tracing::error!(error = %e, code = e.code(), "internal error");
        return "An internal error occurred; it has been logged. Try again, or ask the operator to look at the log.".to_owned();
    }
    let text = e.to_string();
    let mut chars = text.chars();
    let mut out: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => return text,
    };
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

fn status_of(e: &CoreError) -> StatusCode {
    crate::error::ApiError::status_for(e)
}

// ----- forms -----

/// A submitted form. Values are wiped from memory when it is dropped (some are secrets).
pub struct Form(Vec<(String, String)>);

impl Form {
    fn parse(bytes: &[u8]) -> Form {
        Form(
            form_urlencoded::parse(bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self, key: &str) -> &str {
        self.get(key).unwrap_or("")
    }

    fn revision(&self) -> Option<i64> {
        self.get("revision").and_then(|r| r.trim().parse().ok())
    }
}

impl Drop for Form {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        for (k, v) in &mut self.0 {
            k.zeroize();
            v.zeroize();
        }
    }
}

/// A form posted by a signed-in person from this page: same origin, a live session, and the
/// session's cross-site request forgery token.
pub struct Posted {
    user: WebUser,
    form: Form,
    https: bool,
}

/// Refuse a cross-site post. Browsers say where a request comes from in `Sec-Fetch-Site`; those
/// that do not send `Origin` (which is `null` here, because of `Referrer-Policy: no-referrer`, so
/// `null` is refused and `Sec-Fetch-Site` decides).
fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.to_str(), Ok("same-origin" | "none"));
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let origin = origin.to_str().unwrap_or("null");
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|o| o.eq_ignore_ascii_case(host))
}

fn forbidden_form() -> Response {
    html(
        StatusCode::FORBIDDEN,
        view::problem(
            None,
            "Form refused",
            "This form did not come from this page, or it belongs to a session that has ended. Reload the page and try again.",
        ),
    )
}

fn signed_out(why: NoSession, headers: &HeaderMap) -> Response {
    match why {
        NoSession::Absent => see_other("/"),
        NoSession::Ended => {
            let mut r = html(
                StatusCode::UNAUTHORIZED,
                view::sign_in(
                    latchkey_core::DEFAULT_WORKSPACE,
                    Some("Your session has ended. Sign in again."),
                ),
            );
            r.headers_mut().insert(
                header::SET_COOKIE,
                session::clear_cookie(session::is_https(headers)),
            );
            r
        }
        NoSession::Unavailable => html(
            StatusCode::SERVICE_UNAVAILABLE,
            view::problem(
                None,
                "Unavailable",
                "The database is unavailable; try again shortly.",
            ),
        ),
    }
}

impl FromRequest<AppState> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Posted, Response> {
        let (parts, body) = req.into_parts();
        if !same_origin(&parts.headers) {
            return Err(forbidden_form());
        }
        let user = session::current(&parts, state)
            .await
            .map_err(|why| signed_out(why, &parts.headers))?;
        let bytes = axum::body::to_bytes(body, crate::MAX_BODY)
            .await
            .map_err(|_| {
                html(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    view::problem(None, "Too large", "The form is too large."),
                )
            })?;
        let form = Form::parse(&bytes);
        if !form
            .get("csrf")
            .is_some_and(|c| session::same(c, &user.session.csrf))
        {
            tracing::info!("a web form without this session's CSRF token was refused");
            return Err(forbidden_form());
        }
        Ok(Posted {
            user,
            form,
            https: session::is_https(&parts.headers),
        })
    }
}

/// A signed-in person reading a page.
pub struct Viewer(WebUser);

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Viewer, Response> {
        session::current(parts, state)
            .await
            .map(Viewer)
            .map_err(|why| signed_out(why, &parts.headers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn cross_site_posts_are_refused() {
        let host = ("host", "127.0.0.1:8080");
        assert!(same_origin(&headers(&[host])), "no browser headers");
        assert!(same_origin(&headers(&[
            host,
            ("sec-fetch-site", "same-origin")
        ])));
        assert!(same_origin(&headers(&[
            host,
            ("sec-fetch-site", "same-origin"),
            ("origin", "null")
        ])));
        assert!(!same_origin(&headers(&[
            host,
            ("sec-fetch-site", "same-site")
        ])));
        assert!(!same_origin(&headers(&[
            host,
            ("sec-fetch-site", "cross-site")
        ])));
        assert!(same_origin(&headers(&[
            host,
            ("origin", "http://127.0.0.1:8080")
        ])));
        assert!(same_origin(&headers(&[
            host,
            ("origin", "https://127.0.0.1:8080")
        ])));
        assert!(!same_origin(&headers(&[
            host,
            ("origin", "http://evil.example")
        ])));
        assert!(!same_origin(&headers(&[
            host,
            ("origin", "http://127.0.0.1:8080.evil.example")
        ])));
        assert!(!same_origin(&headers(&[host, ("origin", "null")])));
        assert!(
            !same_origin(&headers(&[("origin", "http://127.0.0.1:8080")])),
            "no Host"
        );
    }

    #[test]
    fn form_values_are_read_once_decoded() {
        let form =
            Form::parse(b"name=Aircall+%E2%80%93+prod&aircall.api_id=x&name=second&revision=3");
        assert_eq!(form.get("name"), Some("Aircall – prod"));
        assert_eq!(form.get("aircall.api_id"), Some("x"));
        assert_eq!(form.revision(), Some(3));
        assert_eq!(form.text("missing"), "");
    }

    #[test]
    fn nonces_let_one_post_through() {
        let web = WebState::default();
        assert!(matches!(web.begin("n"), Begin::Fresh));
        assert!(matches!(web.begin("n"), Begin::InFlight));
        web.finish("n", Some("id"));
        assert!(matches!(web.begin("n"), Begin::Done));
        assert!(matches!(web.begin("m"), Begin::Fresh));
        web.finish("m", None);
        assert!(
            matches!(web.begin("m"), Begin::Fresh),
            "a failed post may be tried again"
        );
    }
}
