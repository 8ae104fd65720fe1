//! The web page served at `/`: sign in, the credentials screen of tiles with the Add New
//! Credential overlay, a credential's page, and the API Credentials pane. Server-rendered HTML,
//! a little plain JavaScript and CSS served from `/assets/`, nothing from elsewhere. Handlers are
//! as thin as the REST API's: each calls the same core operation with the signed-in person's
//! `Actor`; every rule is in core.

mod session;
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
    ApiCredential, CoreError, Credential, ErrorKind, ListQuery, NewCredential, Role, Status,
    Verification, VerifyMode,
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
        .route("/", get(home))
        .route("/sign-in", get(to_home).post(sign_in))
        .route("/sign-out", get(to_home).post(sign_out))
        .route("/credentials", get(to_home).post(create_credential))
        .route("/credentials/{id}", get(show_credential))
        .route("/credentials/{id}/{action}", post(credential_action))
        .route(
            "/api-credentials",
            get(api_credentials).post(add_api_credential),
        )
        .route(
            "/api-credentials/{id}/{action}",
            post(api_credential_action),
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

// ----- sign in and out -----

async fn sign_in(State(state): State<AppState>, parts: Parts, body: Bytes) -> Response {
    if !same_origin(&parts.headers) {
        return forbidden_form();
    }
    let form = Form::parse(&body);
    let workspace = form.text("workspace").trim().to_owned();
    let token = Secret::new(form.text("token").trim());
    let info = RequestInfo::from_parts(&parts);
    let workspace_or_default = if workspace.is_empty() {
        latchkey_core::DEFAULT_WORKSPACE.to_owned()
    } else {
        workspace.clone()
    };
    match state
        .lk
        .authenticate(Some(&workspace_or_default), token.expose())
        .await
    {
        Ok(principal) => {
            let session = Session::new(principal.workspace.clone(), token);
            let Some(value) = session.seal(state.lk.key_ring()) else {
                return html(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    view::problem(
                        None,
                        "Error",
                        "An internal error occurred; it has been logged.",
                    ),
                );
            };
            let mut r = see_other("/");
            r.headers_mut().insert(
                header::SET_COOKIE,
                session.set_cookie(&value, session::is_https(&parts.headers)),
            );
            r
        }
        Err(latchkey_core::AuthFailure::Unavailable) => {
            signed_out(NoSession::Unavailable, &parts.headers)
        }
        Err(failure) => {
            tracing::info!(reason = failure.as_str(), "web sign-in failed");
            state.metrics.auth_failure(failure.as_str());
            state
                .lk
                .record_auth_failure(
                    Some(&workspace_or_default),
                    failure,
                    info.request_id.clone(),
                    info.client.map(|c| c.to_string()),
                )
                .await;
            if let Some(client) = info.client
                && let Some(wait) = state.throttle.failed(client)
            {
                let seconds = wait.as_secs().max(1);
                let mut r = html(
                    StatusCode::TOO_MANY_REQUESTS,
                    view::sign_in(
                        &workspace,
                        Some(&format!(
                            "Too many failed sign-ins from this address; try again in {seconds} s."
                        )),
                    ),
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                return r;
            }
            html(
                StatusCode::UNAUTHORIZED,
                view::sign_in(
                    &workspace,
                    Some("Sign-in failed. Check the workspace and the API credential token."),
                ),
            )
        }
    }
}

async fn sign_out(posted: Posted) -> Response {
    let mut r = see_other("/");
    r.headers_mut()
        .insert(header::SET_COOKIE, session::clear_cookie(posted.https));
    r
}

// ----- credentials screen -----

#[derive(Debug, Default, serde::Deserialize)]
struct HomeQuery {
    #[serde(default)]
    provider: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    add: Option<String>,
    #[serde(default)]
    m: Option<String>,
}

async fn home(State(state): State<AppState>, parts: Parts) -> Response {
    let query: HomeQuery = Query::try_from_uri(&parts.uri)
        .map(|Query(q)| q)
        .unwrap_or_default();
    let user = match session::current(&parts, &state).await {
        Ok(user) => user,
        Err(NoSession::Absent) => {
            return html(
                StatusCode::OK,
                view::sign_in(latchkey_core::DEFAULT_WORKSPACE, None),
            );
        }
        Err(why) => return signed_out(why, &parts.headers),
    };
    let add = AddForm {
        open: query.add.is_some(),
        nonce: session::random_token(),
        ..AddForm::default()
    };
    let message = match query.m.as_deref() {
        Some("deleted") => Some(view::notice("ok", "Credential deleted.")),
        _ => None,
    };
    render_home(&state, &user, &query, &add, message, StatusCode::OK).await
}

async fn render_home(
    state: &AppState,
    user: &WebUser,
    query: &HomeQuery,
    add: &AddForm,
    message: Option<Markup>,
    status: StatusCode,
) -> Response {
    let catalog = state.lk.catalog();
    let provider = catalog.get(query.provider.trim()).map(|p| p.id.clone());
    let filter_status = Status::parse(query.status.trim()).ok();
    let mut list = ListQuery {
        provider: provider.clone(),
        status: filter_status,
        name_contains: Some(query.q.trim().to_owned()).filter(|q| !q.is_empty()),
        after: None,
        limit: Some(latchkey_core::MAX_PAGE),
    };
    let mut items: Vec<Credential> = Vec::new();
    // The whole workspace, page by page (bounded).
    for _ in 0..50 {
        match state.lk.list_credentials(user.workspace(), &list).await {
            Ok(page) => {
                items.extend(page.items);
                match page.next {
                    Some(next) => list.after = Some(next),
                    None => break,
                }
            }
            Err(e) => {
                return html(
                    status_of(&e),
                    view::problem(
                        Some(&chrome(user, "credentials")),
                        "Credentials",
                        &sentence(&e),
                    ),
                );
            }
        }
    }
    let filters = Filters {
        provider: provider.as_deref().unwrap_or(""),
        status: filter_status.map(Status::as_str).unwrap_or(""),
        q: query.q.trim(),
    };
    html(
        status,
        view::credentials(
            &chrome(user, "credentials"),
            catalog,
            &items,
            &filters,
            add,
            message,
        ),
    )
}

async fn create_credential(State(state): State<AppState>, posted: Posted) -> Response {
    let Posted { user, form, .. } = posted;
    let catalog = state.lk.catalog();
    let provider_id = form.text("provider").trim().to_owned();
    let nonce = form.text("nonce").to_owned();
    let mut add = AddForm {
        open: true,
        provider: provider_id.clone(),
        name: form.text("name").to_owned(),
        description: form.text("description").to_owned(),
        nonce: if nonce.is_empty() {
            session::random_token()
        } else {
            nonce.clone()
        },
        ..AddForm::default()
    };
    let Some(provider) = catalog.get(&provider_id) else {
        add.errors
            .insert("provider".into(), "Choose a provider.".into());
        return render_home(
            &state,
            &user,
            &HomeQuery::default(),
            &add,
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    let mut fields = BTreeMap::new();
    for f in &provider.fields {
        let value = form.text(&format!("{}.{}", provider.id, f.key));
        if !f.secret {
            add.values.insert(f.key.clone(), value.to_owned());
        }
        let value = if f.secret { value } else { value.trim() };
        if !value.is_empty() {
            fields.insert(f.key.clone(), Secret::new(value));
        }
    }
    let mode = if form.get("verify") == Some("skip") {
        VerifyMode::Skip
    } else {
        VerifyMode::Verify
    };

    // A second post of the same form (a double click) waits for the first and shows its result.
    let mut pending = None;
    if !nonce.is_empty() {
        let started = Instant::now();
        loop {
            match state.web.begin(&nonce) {
                Begin::Fresh => break,
                Begin::Done => return see_other("/"),
                Begin::InFlight if started.elapsed() < Duration::from_secs(60) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Begin::InFlight => return see_other("/"),
            }
        }
        pending = Some(Pending {
            web: &state.web,
            nonce: &nonce,
        });
    }
    let new = NewCredential {
        provider: provider.id.clone(),
        name: add.name.clone(),
        description: Some(add.description.clone()),
        fields,
    };
    let result = state
        .lk
        .create_credential(&user.actor, user.workspace(), new, mode)
        .await;
    if mode == VerifyMode::Verify {
        let outcome = match &result {
            Ok(_) => "valid",
            Err(CoreError::ProviderRejected { .. }) => "rejected",
            Err(CoreError::ProviderUnreachable { .. }) => "unreachable",
            Err(_) => "not_asked",
        };
        state.metrics.verification(&provider.id, outcome);
    }
    match result {
        Ok(c) => {
            if let Some(p) = pending.take() {
                p.succeeded(&c.id);
            }
            see_other("/")
        }
        Err(e) => {
            drop(pending);
            let status = status_of(&e);
            place_error(&e, provider, &mut add.errors);
            add.unreachable = matches!(e, CoreError::ProviderUnreachable { .. });
            render_home(&state, &user, &HomeQuery::default(), &add, None, status).await
        }
    }
}

/// Put an error beside the input(s) it concerns; "" is the form as a whole.
fn place_error(
    e: &CoreError,
    provider: &latchkey_catalog::Provider,
    errors: &mut BTreeMap<String, String>,
) {
    let message = sentence(e);
    match e {
        // The same outcome as core's message, in the page's words: its button, not the CLI's flag.
        // Said beside the first secret field, which must be typed again.
        CoreError::ProviderUnreachable {
            provider: name,
            reason,
        } => {
            let key = provider
                .fields
                .iter()
                .find(|f| f.secret)
                .map(|f| f.key.clone())
                .unwrap_or_default();
            errors.insert(
                key,
                format!(
                    "{name} could not be reached to verify the credential ({reason}). Nothing was saved. Try again later, or enter the secret again and pick Save without verifying: the credential is then marked unverified until a check succeeds."
                ),
            );
        }
        CoreError::ProviderRejected { field_keys, .. } if !field_keys.is_empty() => {
            for key in field_keys {
                errors.insert(key.clone(), message.clone());
            }
        }
        _ => {
            let key = match e.field() {
                Some(f) if provider.field(f).is_some() => f.to_owned(),
                Some(f @ ("name" | "description" | "provider")) => f.to_owned(),
                _ => String::new(),
            };
            errors.insert(key, message);
        }
    }
}

// ----- one credential -----

#[derive(Debug, Default, serde::Deserialize)]
struct DetailQuery {
    #[serde(default)]
    m: Option<String>,
}

async fn show_credential(
    State(state): State<AppState>,
    Viewer(user): Viewer,
    Path(id): Path<String>,
    uri: axum::http::Uri,
) -> Response {
    let query: DetailQuery = Query::try_from_uri(&uri)
        .map(|Query(q)| q)
        .unwrap_or_default();
    let message = match query.m.as_deref() {
        Some("saved") => Some(view::notice("ok", "Changes saved.")),
        Some("replaced") => Some(view::notice("ok", "The new secret was verified and saved.")),
        Some("disabled") => Some(view::notice(
            "ok",
            "Credential disabled: the proxy and pulls refuse it until it is enabled again.",
        )),
        Some("enabled") => Some(view::notice("ok", "Credential enabled.")),
        _ => None,
    };
    render_detail(
        &state,
        &user,
        &id,
        message,
        BTreeMap::new(),
        BTreeMap::new(),
        StatusCode::OK,
    )
    .await
}

async fn render_detail(
    state: &AppState,
    user: &WebUser,
    id: &str,
    message: Option<Markup>,
    edit_errors: BTreeMap<String, String>,
    secret_errors: BTreeMap<String, String>,
    status: StatusCode,
) -> Response {
    match state.lk.get_credential(user.workspace(), id).await {
        Ok(c) => {
            let provider = state.lk.catalog().get(&c.provider);
            html(
                status,
                view::credential(
                    &chrome(user, "credentials"),
                    &Detail {
                        credential: &c,
                        provider,
                        message,
                        secret_errors,
                        edit_errors,
                    },
                ),
            )
        }
        Err(e) => html(
            status_of(&e),
            view::problem(
                Some(&chrome(user, "credentials")),
                "Credential",
                &sentence(&e),
            ),
        ),
    }
}

const STALE: &str = "Someone else changed this credential since you opened it, so your change was not saved. The page now shows the current values: make your change again.";

async fn credential_action(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    posted: Posted,
) -> Response {
    let Posted { user, form, .. } = posted;
    let lk = &state.lk;
    let ws = user.workspace().to_owned();
    let revision = form.revision();
    let back = |m: &str| see_other(&format!("/credentials/{id}?m={m}"));
    let outcome: Result<Response, CoreError> = match action.as_str() {
        "edit" => {
            let current = match lk.get_credential(&ws, &id).await {
                Ok(c) => c,
                Err(e) => return failed(&state, &user, &id, e, Part::Page).await,
            };
            let name = form.text("name").trim().to_owned();
            let description = form.text("description").to_owned();
            let mut rev = revision;
            let mut result = Ok(());
            if name != current.name {
                match lk
                    .rename_credential(&user.actor, &ws, &id, &name, rev)
                    .await
                {
                    Ok(c) => rev = Some(c.revision),
                    Err(e) => result = Err(e),
                }
            }
            if result.is_ok()
                && description.trim() != current.description.trim()
                && let Err(e) = lk
                    .describe_credential(&user.actor, &ws, &id, &description, rev)
                    .await
            {
                result = Err(e);
            }
            match result {
                Ok(()) => Ok(back("saved")),
                Err(e) => return failed(&state, &user, &id, e, Part::Edit).await,
            }
        }
        "secrets" => {
            let current = match lk.get_credential(&ws, &id).await {
                Ok(c) => c,
                Err(e) => return failed(&state, &user, &id, e, Part::Page).await,
            };
            let Some(provider) = lk.catalog().get(&current.provider) else {
                return failed(
                    &state,
                    &user,
                    &id,
                    CoreError::Internal("provider gone".into()),
                    Part::Page,
                )
                .await;
            };
            let mut fields = BTreeMap::new();
            for f in provider.fields.iter().filter(|f| f.secret) {
                let value = form.text(&format!("{}.{}", provider.id, f.key));
                if !value.is_empty() {
                    fields.insert(f.key.clone(), Secret::new(value));
                }
            }
            if fields.is_empty() {
                let mut errors = BTreeMap::new();
                errors.insert(
                    String::new(),
                    "Enter the new value of the secret to replace.".to_owned(),
                );
                return render_detail(
                    &state,
                    &user,
                    &id,
                    None,
                    BTreeMap::new(),
                    errors,
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await;
            }
            match lk
                .replace_fields(&user.actor, &ws, &id, fields, VerifyMode::Verify, revision)
                .await
            {
                Ok(_) => Ok(back("replaced")),
                Err(e) => return failed(&state, &user, &id, e, Part::Secrets).await,
            }
        }
        "verify" => match lk.verify_credential(&user.actor, &ws, &id).await {
            Ok(report) => {
                let c = &report.credential;
                let outcome = match &report.verification {
                    Verification::Valid { .. } => "valid",
                    Verification::Rejected(_) => "rejected",
                    Verification::Unreachable { .. } => "unreachable",
                };
                state.metrics.verification(&c.provider, outcome);
                let message = match &report.verification {
                    Verification::Valid { .. } => view::notice(
                        "ok",
                        &format!("Verified: {} accepted the credential.", c.provider_name),
                    ),
                    Verification::Rejected(_) => view::notice(
                        "error",
                        c.status_reason
                            .as_deref()
                            .unwrap_or("The provider rejected the credential."),
                    ),
                    Verification::Unreachable { reason } => view::notice(
                        "error",
                        &format!(
                            "{} could not be reached to verify the credential ({reason}); nothing changed. Try again later.",
                            c.provider_name
                        ),
                    ),
                };
                Ok(render_detail(
                    &state,
                    &user,
                    &id,
                    Some(message),
                    BTreeMap::new(),
                    BTreeMap::new(),
                    StatusCode::OK,
                )
                .await)
            }
            Err(e) => Err(e),
        },
        "disable" => lk
            .disable_credential(&user.actor, &ws, &id, revision)
            .await
            .map(|_| back("disabled")),
        "enable" => lk
            .enable_credential(&user.actor, &ws, &id, revision)
            .await
            .map(|_| back("enabled")),
        "delete" => lk
            .delete_credential(&user.actor, &ws, &id, revision)
            .await
            .map(|_| see_other("/?m=deleted")),
        _ => {
            return html(
                StatusCode::NOT_FOUND,
                view::problem(
                    Some(&chrome(&user, "credentials")),
                    "Not found",
                    "No such page.",
                ),
            );
        }
    };
    match outcome {
        Ok(r) => r,
        Err(e) => failed(&state, &user, &id, e, Part::Page).await,
    }
}

enum Part {
    Page,
    Edit,
    Secrets,
}

/// Show a credential operation's failure on the credential's page, beside the form concerned.
async fn failed(state: &AppState, user: &WebUser, id: &str, e: CoreError, part: Part) -> Response {
    let status = status_of(&e);
    if matches!(e, CoreError::StaleRevision) {
        return render_detail(
            state,
            user,
            id,
            Some(view::notice("error", STALE)),
            BTreeMap::new(),
            BTreeMap::new(),
            status,
        )
        .await;
    }
    if e.kind() == ErrorKind::NotFound {
        return html(
            status,
            view::problem(
                Some(&chrome(user, "credentials")),
                "Credential",
                &sentence(&e),
            ),
        );
    }
    let mut errors = BTreeMap::new();
    match part {
        Part::Page => {
            return render_detail(
                state,
                user,
                id,
                Some(view::notice("error", &sentence(&e))),
                BTreeMap::new(),
                BTreeMap::new(),
                status,
            )
            .await;
        }
        Part::Edit => {
            let key = match e.field() {
                Some(f @ ("name" | "description")) => f.to_owned(),
                _ => String::new(),
            };
            if key.is_empty() {
                return render_detail(
                    state,
                    user,
                    id,
                    Some(view::notice("error", &sentence(&e))),
                    BTreeMap::new(),
                    BTreeMap::new(),
                    status,
                )
                .await;
            }
            errors.insert(key, sentence(&e));
            render_detail(state, user, id, None, errors, BTreeMap::new(), status).await
        }
        Part::Secrets => {
            match &e {
                CoreError::ProviderRejected { field_keys, .. } => {
                    for key in field_keys {
                        errors.insert(key.clone(), sentence(&e));
                    }
                    // A rejection that names a non-secret field too: say it above the form.
                    errors.insert(String::new(), sentence(&e));
                }
                _ => {
                    errors.insert(String::new(), sentence(&e));
                }
            }
            render_detail(state, user, id, None, BTreeMap::new(), errors, status).await
        }
    }
}

// ----- API Credentials pane -----

async fn api_credentials(State(state): State<AppState>, Viewer(user): Viewer) -> Response {
    render_api(&state, &user, None, None, StatusCode::OK).await
}

async fn render_api(
    state: &AppState,
    user: &WebUser,
    message: Option<Markup>,
    issued: Option<(&ApiCredential, &Secret)>,
    status: StatusCode,
) -> Response {
    let items = match state.lk.list_api_credentials(user.workspace()).await {
        Ok(items) => items,
        Err(e) => {
            return html(
                status_of(&e),
                view::problem(Some(&chrome(user, "api")), "API Credentials", &sentence(&e)),
            );
        }
    };
    let issued = issued.map(|(c, token)| Issued {
        name: &c.name,
        token: token.expose(),
    });
    html(
        status,
        view::api_credentials(&chrome(user, "api"), &items, message, issued.as_ref()),
    )
}

async fn add_api_credential(State(state): State<AppState>, posted: Posted) -> Response {
    let Posted { user, form, .. } = posted;
    let role = match Role::parse(form.get("role").unwrap_or("member")) {
        Ok(role) => role,
        Err(e) => {
            return render_api(
                &state,
                &user,
                Some(view::notice("error", &sentence(&e))),
                None,
                status_of(&e),
            )
            .await;
        }
    };
    match state
        .lk
        .add_api_credential(
            &user.actor,
            user.principal.is_admin(),
            user.workspace(),
            form.text("name"),
            role,
        )
        .await
    {
        Ok((c, token)) => render_api(&state, &user, None, Some((&c, &token)), StatusCode::OK).await,
        Err(e) => {
            render_api(
                &state,
                &user,
                Some(view::notice("error", &sentence(&e))),
                None,
                status_of(&e),
            )
            .await
        }
    }
}

async fn api_credential_action(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    posted: Posted,
) -> Response {
    let Posted { user, form, https } = posted;
    let lk = &state.lk;
    let admin = user.principal.is_admin();
    let ws = user.workspace().to_owned();
    let revision = form.revision();
    let result = match action.as_str() {
        "rename" => lk
            .rename_api_credential(&user.actor, admin, &ws, &id, form.text("name"), revision)
            .await
            .map(|c| format!("API credential renamed to “{}”.", c.name)),
        "disable" => lk
            .disable_api_credential(&user.actor, admin, &ws, &id, revision)
            .await
            .map(|c| {
                format!(
                    "API credential “{}” disabled: its token is refused until it is enabled again.",
                    c.name
                )
            }),
        "enable" => lk
            .enable_api_credential(&user.actor, admin, &ws, &id, revision)
            .await
            .map(|c| format!("API credential “{}” enabled.", c.name)),
        "delete" => lk
            .delete_api_credential(&user.actor, admin, &ws, &id, revision)
            .await
            .map(|c| format!("API credential “{}” deleted.", c.name)),
        "regenerate" => {
            return match lk
                .regenerate_api_credential(&user.actor, admin, &ws, &id, None, revision)
                .await
            {
                Ok((c, token)) => {
                    // Regenerating one's own token keeps this session, on the new token.
                    let renewed = (c.id == user.principal.api_credential_id).then(|| {
                        let mut s = Session::new(ws.clone(), Secret::new(token.expose()));
                        s.csrf = user.session.csrf.clone();
                        s.expires = user.session.expires;
                        s
                    });
                    let mut r =
                        render_api(&state, &user, None, Some((&c, &token)), StatusCode::OK).await;
                    if let Some(s) = renewed
                        && let Some(value) = s.seal(lk.key_ring())
                    {
                        r.headers_mut()
                            .insert(header::SET_COOKIE, s.set_cookie(&value, https));
                    }
                    r
                }
                Err(e) => {
                    render_api(
                        &state,
                        &user,
                        Some(view::notice("error", &api_error(&e))),
                        None,
                        status_of(&e),
                    )
                    .await
                }
            };
        }
        _ => {
            return html(
                StatusCode::NOT_FOUND,
                view::problem(Some(&chrome(&user, "api")), "Not found", "No such page."),
            );
        }
    };
    match result {
        Ok(message) => {
            render_api(
                &state,
                &user,
                Some(view::notice("ok", &message)),
                None,
                StatusCode::OK,
            )
            .await
        }
        Err(e) => {
            render_api(
                &state,
                &user,
                Some(view::notice("error", &api_error(&e))),
                None,
                status_of(&e),
            )
            .await
        }
    }
}

fn api_error(e: &CoreError) -> String {
    if matches!(e, CoreError::StaleRevision) {
        "Someone else changed this API credential since the page was loaded, so nothing was changed. The table now shows the current state: try again.".to_owned()
    } else {
        sentence(e)
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
