//! The OpenAPI 3.1 document and the route table it shares with the router: each [`Route`] takes its
//! method(s) and path from the handler's `#[utoipa::path]`, so the router serves exactly what the
//! document shows — a route cannot be served undocumented, nor documented unserved.

use crate::AppState;
use crate::error::Problem;
use axum::handler::Handler;
use axum::routing::{MethodFilter, MethodRouter};
use std::sync::OnceLock;
use utoipa::__dev::SchemaReferences;
use utoipa::openapi::path::{HttpMethod, Operation};
use utoipa::openapi::schema::Schema;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, RefOr};
use utoipa::{Modify, OpenApi};

/// What the document says besides its paths (which come from the route table).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Latchkey",
        description = "A self-hosted credential broker for SaaS data connectors. Authenticate with an API credential: HTTP Basic (workspace as user name, token as password) or Bearer.",
    ),
    components(schemas(Problem)),
    modifiers(&Security),
    tags(
        (name = "providers", description = "The provider catalog"),
        (name = "credentials", description = "Stored third-party credentials; secrets are write-only"),
        (name = "api-credentials", description = "The API credentials Latchkey issues to its clients"),
        (name = "workspaces", description = "Tenants (admin of the default workspace only)"),
        (name = "audit", description = "Who changed or used what (append-only)"),
        (name = "proxy", description = "Use a credential without reading it: Latchkey injects the provider's auth"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
    )
)]
pub struct ApiDoc;

impl ApiDoc {
    /// The whole document: the shell above with every route of the table.
    pub fn document() -> Document {
        let mut doc = ApiDoc::openapi();
        for route in crate::routes() {
            route.document_into(&mut doc);
        }
        doc
    }
}

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// One route: the handler, served at the method(s) and path of its `#[utoipa::path]`, and that
/// documentation.
pub(crate) struct Route {
    /// As the document writes it (`/v1/credentials/{id}`).
    path: String,
    methods: Vec<HttpMethod>,
    operation: Operation,
    schemas: Vec<(String, RefOr<Schema>)>,
    handler: MethodRouter<AppState>,
    /// Whether the last path parameter takes the rest of the path (`{*path}` to the router).
    rest: bool,
    /// Whether the request timeout applies.
    timed: bool,
}

impl Route {
    /// The handler `H` documented by `P` (the `__path_…` type `#[utoipa::path]` makes for it).
    pub(crate) fn new<P, H, T>(handler: H) -> Route
    where
        P: utoipa::Path + SchemaReferences,
        H: Handler<T, AppState>,
        T: 'static,
    {
        let methods = P::methods();
        let filter = methods
            .iter()
            .map(method_filter)
            .reduce(MethodFilter::or)
            .expect("a documented operation has a method");
        let mut schemas = Vec::new();
        P::schemas(&mut schemas);
        Route {
            path: P::path(),
            methods,
            operation: P::operation(),
            schemas,
            handler: axum::routing::on(filter, handler),
            rest: false,
            timed: true,
        }
    }

    /// The last path parameter takes the rest of the path, slashes included.
    pub(crate) fn rest_of_path(mut self) -> Route {
        self.rest = true;
        self
    }

    /// The request timeout does not apply (the route has limits of its own).
    pub(crate) fn untimed(mut self) -> Route {
        self.timed = false;
        self
    }

    pub(crate) fn timed(&self) -> bool {
        self.timed
    }

    /// The path as the router matches it.
    pub(crate) fn router_path(&self) -> String {
        match (self.rest, self.path.rfind('{')) {
            (true, Some(at)) => format!("{}{{*{}", &self.path[..at], &self.path[at + 1..]),
            _ => self.path.clone(),
        }
    }

    pub(crate) fn into_handler(self) -> MethodRouter<AppState> {
        self.handler
    }

    fn document_into(self, doc: &mut Document) {
        let several = self.methods.len() > 1;
        for method in self.methods {
            let mut operation = self.operation.clone();
            if several {
                // Operation ids are unique in a document: one per method.
                operation.operation_id = operation
                    .operation_id
                    .map(|id| format!("{id}_{}", method_name(&method)));
            }
            doc.paths
                .add_path_operation(&self.path, vec![method], operation);
        }
        let components = doc.components.get_or_insert_with(Default::default);
        components.schemas.extend(self.schemas);
    }
}

fn method_filter(method: &HttpMethod) -> MethodFilter {
    match method {
        HttpMethod::Get => MethodFilter::GET,
        HttpMethod::Post => MethodFilter::POST,
        HttpMethod::Put => MethodFilter::PUT,
        HttpMethod::Delete => MethodFilter::DELETE,
        HttpMethod::Options => MethodFilter::OPTIONS,
        HttpMethod::Head => MethodFilter::HEAD,
        HttpMethod::Patch => MethodFilter::PATCH,
        HttpMethod::Trace => MethodFilter::TRACE,
    }
}

fn method_name(method: &HttpMethod) -> &'static str {
    match method {
        HttpMethod::Get => "get",
        HttpMethod::Post => "post",
        HttpMethod::Put => "put",
        HttpMethod::Delete => "delete",
        HttpMethod::Options => "options",
        HttpMethod::Head => "head",
        HttpMethod::Patch => "patch",
        HttpMethod::Trace => "trace",
    }
}

/// This document (public: it holds no secret).
#[utoipa::path(get, path = "/v1/openapi.json", tag = "operations", responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)))]
pub async fn document() -> axum::Json<&'static Document> {
    static DOCUMENT: OnceLock<Document> = OnceLock::new();
    axum::Json(DOCUMENT.get_or_init(ApiDoc::document))
}
