//! The OpenAPI 3.1 document, generated from the handlers' annotations and the types they use.

use crate::api;
use crate::error::Problem;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Latchkey",
        description = "A self-hosted credential broker for SaaS data connectors. Authenticate with an API credential: HTTP Basic (workspace as user name, token as password) or Bearer.",
    ),
    paths(
        api::list_providers,
        api::get_provider,
        api::list_credentials,
        api::create_credential,
        api::get_credential,
        api::patch_credential,
        api::delete_credential,
        api::replace_secrets,
        api::verify_credential,
        api::disable_credential,
        api::enable_credential,
        api::list_api_credentials,
        api::create_api_credential,
        api::get_api_credential,
        api::patch_api_credential,
        api::delete_api_credential,
        api::disable_api_credential,
        api::enable_api_credential,
        api::regenerate_api_credential,
        api::list_workspaces,
        api::create_workspace,
        api::list_audit,
        crate::proxy::proxy,
        crate::healthz,
        crate::readyz,
    ),
    components(schemas(Problem)),
    modifiers(&Security),
    tags(
        (name = "providers", description = "The provider catalog"),
        (name = "credentials", description = "Stored third-party credentials; secrets are write-only"),
        (name = "api-credentials", description = "The API credentials Latchkey issues to its clients"),
        (name = "workspaces", description = "Tenants (admin of the default workspace only)"),
        (name = "audit", description = "Who changed or used what"),
        (name = "proxy", description = "Use a credential without reading it: Latchkey injects the provider's auth"),
        (name = "operations", description = "Health and readiness"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
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

pub async fn document() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}
