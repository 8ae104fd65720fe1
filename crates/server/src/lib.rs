#![doc = include_str!("../README.md")]

mod api;
mod error;
mod extract;
mod metrics;
mod openapi;
mod proxy;
mod serving;
mod web;

pub use error::{ApiError, Problem};
pub use metrics::Metrics;
pub use openapi::ApiDoc;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use extract::AuthThrottle;
use latchkey_core::Latchkey;
use openapi::Route;
use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

/// The header that carries a request's id, taken from the caller or made up, and given back.
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// How long a request other than a proxied one may take before it answers 408, unless set with
/// [`AppState::with_request_timeout`].
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a connection may go without sending a request head — after it is opened, or after the
/// answer to its previous request — before it is closed, unless set with
/// [`AppState::with_head_timeout`].
pub const DEFAULT_HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// What every handler can reach, behind one `Arc`: each layer and handler that takes the state
/// costs one count, not one per part.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub lk: Latchkey,
    pub metrics: Metrics,
    throttle: AuthThrottle,
    web: web::WebState,
    request_timeout: Duration,
    head_timeout: Duration,
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(lk: Latchkey) -> AppState {
        AppState(Arc::new(Shared {
            lk,
            metrics: Metrics::new(),
            throttle: AuthThrottle::new(20, Duration::from_secs(120)),
            web: web::WebState::default(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            head_timeout: DEFAULT_HEAD_TIMEOUT,
        }))
    }

    /// How long a request other than a proxied one may take before it answers 408. Set before
    /// the state is handed to the router.
    pub fn with_request_timeout(mut self, timeout: Duration) -> AppState {
        match Arc::get_mut(&mut self.0) {
            Some(shared) => shared.request_timeout = timeout,
            None => tracing::error!("the request timeout was set after the state was shared"),
        }
        self
    }

    /// How long a connection may go without sending a request head before it is closed. Set
    /// before the state is handed to the router.
    pub fn with_head_timeout(mut self, timeout: Duration) -> AppState {
        match Arc::get_mut(&mut self.0) {
            Some(shared) => shared.head_timeout = timeout,
            None => tracing::error!("the head timeout was set after the state was shared"),
        }
        self
    }

    pub(crate) fn head_timeout(&self) -> Duration {
        self.head_timeout
    }
}

/// Every route of the REST API and the operations endpoints — the one declaration both the router
/// and the OpenAPI document are made from (the web page's routes are in `web::router`).
pub(crate) fn routes() -> Vec<Route> {
    vec![
        Route::new::<__path_healthz, _, _>(healthz),
        Route::new::<__path_readyz, _, _>(readyz),
        Route::new::<__path_metrics_text, _, _>(metrics_text),
        Route::new::<openapi::__path_document, _, _>(openapi::document),
        Route::new::<api::__path_list_providers, _, _>(api::list_providers),
        Route::new::<api::__path_get_provider, _, _>(api::get_provider),
        Route::new::<api::__path_list_credentials, _, _>(api::list_credentials),
        Route::new::<api::__path_create_credential, _, _>(api::create_credential),
        Route::new::<api::__path_get_credential, _, _>(api::get_credential),
        Route::new::<api::__path_patch_credential, _, _>(api::patch_credential),
        Route::new::<api::__path_delete_credential, _, _>(api::delete_credential),
        Route::new::<api::__path_replace_secrets, _, _>(api::replace_secrets),
        Route::new::<api::__path_verify_credential, _, _>(api::verify_credential),
        Route::new::<api::__path_disable_credential, _, _>(api::disable_credential),
        Route::new::<api::__path_enable_credential, _, _>(api::enable_credential),
        Route::new::<api::__path_list_api_credentials, _, _>(api::list_api_credentials),
        Route::new::<api::__path_create_api_credential, _, _>(api::create_api_credential),
        Route::new::<api::__path_get_api_credential, _, _>(api::get_api_credential),
        Route::new::<api::__path_patch_api_credential, _, _>(api::patch_api_credential),
        Route::new::<api::__path_delete_api_credential, _, _>(api::delete_api_credential),
        Route::new::<api::__path_disable_api_credential, _, _>(api::disable_api_credential),
        Route::new::<api::__path_enable_api_credential, _, _>(api::enable_api_credential),
        Route::new::<api::__path_regenerate_api_credential, _, _>(api::regenerate_api_credential),
        Route::new::<api::__path_list_workspaces, _, _>(api::list_workspaces),
        Route::new::<api::__path_create_workspace, _, _>(api::create_workspace),
        Route::new::<api::__path_list_audit, _, _>(api::list_audit),
        // The proxy has its own limits (the caller's X-Latchkey-Max-Wait, up to five minutes, and
        // the upstream timeouts) rather than the request timeout.
        Route::new::<api::__path_proxy_root, _, _>(api::proxy_root).untimed(),
        Route::new::<api::__path_proxy_path, _, _>(api::proxy_path)
            .rest_of_path()
            .untimed(),
    ]
}

/// The whole HTTP application: the REST API under `/v1`, the web page at `/` and the operations
/// endpoints, and the state proxied requests are served with straight from the connection
/// ([`proxy::serve_direct`]).
#[derive(Clone)]
pub struct HttpApp {
    router: HttpService,
    state: AppState,
}

/// Build the [`HttpApp`] for `state`.
pub fn build_app(state: AppState) -> HttpApp {
    HttpApp {
        router: build_router(state.clone()),
        state,
    }
}

/// The router: every route, with the layers every request goes through.
fn build_router(state: AppState) -> HttpService {
    let request_id = REQUEST_ID;
    let (timed, untimed): (Vec<Route>, Vec<Route>) = routes().into_iter().partition(Route::timed);
    let mut router = web::router();
    for route in timed {
        router = router.route(&route.router_path(), route.into_handler());
    }
    router = router.layer(middleware::from_fn_with_state(
        state.clone(),
        request_deadline,
    ));
    for route in untimed {
        router = router.route(&route.router_path(), route.into_handler());
    }
    let router = router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_metrics,
        ))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            let route = req
                .extensions()
                .get::<MatchedPath>()
                .map(MatchedPath::as_str)
                .unwrap_or("-");
            tracing::info_span!("request", request_id = %id, method = %req.method(), route = %route)
        }))
        .with_state(state);
    // The layers that need no route go around the router once, rather than around each route
    // (where every request would clone each of them).
    let service = tower::ServiceBuilder::new()
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
        ]))
        .layer(SetRequestIdLayer::new(request_id.clone(), RequestIds))
        .layer(PropagateRequestIdLayer::new(request_id))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .service(router);
    HttpService::new(service)
}

/// The whole application as one service: what each connection's requests are handed to.
pub type HttpService =
    tower::util::BoxCloneSyncService<Request, Response, std::convert::Infallible>;

/// Request ids (for a request that brings none): UUID-shaped, a random start drawn once per
/// thread and then counted up, so that naming a request costs no system call.
#[derive(Clone, Copy)]
struct RequestIds;

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        Some(RequestId::new(new_request_id()))
    }
}

/// A new request id (see [`RequestIds`]).
pub(crate) fn new_request_id() -> HeaderValue {
    thread_local! {
        static NEXT: std::cell::Cell<u128> =
            std::cell::Cell::new(uuid::Uuid::now_v7().as_u128() ^ uuid::Uuid::now_v7().as_u128().rotate_left(64));
    }
    let n = NEXT.with(|next| {
        let n = next.get();
        next.set(n.wrapping_add(1));
        n
    });
    let mut id = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let id = uuid::Uuid::from_u128(n).hyphenated().encode_lower(&mut id);
    HeaderValue::from_str(id).expect("a UUID is a valid header value")
}

/// A request other than a proxied one that takes longer than the request timeout answers 408
/// (its handler is dropped).
async fn request_deadline(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(state.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "The request took longer than {} s and was abandoned; try again.",
                state.request_timeout.as_secs_f64()
            ),
        )
        .into_response(),
    }
}

async fn record_metrics(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(Cow::Borrowed("unmatched"), |m| {
            Cow::Owned(m.as_str().to_owned())
        });
    let response = next.run(request).await;
    state.metrics.request(
        method.as_str(),
        route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Up", body = Object)))]
async fn healthz() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

/// Ready when the database answers and the master key is loaded.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, description = "Ready", body = Object), (status = 503, description = "Not ready", body = Problem, content_type = "application/problem+json")))]
async fn readyz(State(state): State<AppState>) -> Response {
    match state
        .lk
        .repository()
        .get_meta(latchkey_core::KEY_CHECK)
        .await
    {
        Ok(Some(_)) => axum::Json(serde_json::json!({
            "status": "ready",
            "database": state.lk.repository().backend(),
            "master_key": state.lk.key_ring().primary_id().as_str(),
        }))
        .into_response(),
        Ok(None) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "The master key check is missing.",
        )
        .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database unavailable");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                "The database is unavailable.",
            )
            .into_response()
        }
    }
}

/// Prometheus metrics (OpenMetrics text): requests by route and status, latency, verification
/// outcomes by provider, authentication failures, proxy traffic. No names, ids or secrets.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "The metrics", body = String, content_type = "application/openmetrics-text")))]
async fn metrics_text(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "No such route. The API lives under /v1.",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "This route does not take that method.",
    )
}

/// A bound, not yet serving, application: tests bind port 0 and read the real port.
pub struct Application {
    listener: tokio::net::TcpListener,
    app: HttpApp,
}

impl Application {
    pub async fn bind(addr: SocketAddr, state: AppState) -> std::io::Result<Application> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        Ok(Application {
            listener,
            app: build_app(state),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serve until `shutdown` resolves; requests in flight then finish.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        serving::serve(self.listener, self.app, shutdown).await
    }
}
