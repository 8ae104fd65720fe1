//! The REST handlers under `/v1`. Each parses its input, calls one core operation as the
//! authenticated caller, and shapes the answer; every rule is in core.

use crate::AppState;
use crate::error::{
    ApiError, ApiResult, BodyErrors, ConflictErrors, Errors, ProviderErrors, ProxyErrors,
    StaleErrors,
};
use crate::extract::{Caller, IfMatch, JsonBody, OptionalJsonBody, etag};
use axum::Json;
use axum::extract::{Path, Query, State, rejection::QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use latchkey_core::{
    ApiCredential, AuditEvent, AuditQuery, CoreError, Credential, DEFAULT_WORKSPACE, ListQuery,
    NewCredential, Role, Status, Timestamp, Verification, VerifyMode, Workspace,
};
use latchkey_vault::Secret;
use serde::Deserialize;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Query parameters, with the problem envelope when they do not parse.
pub struct Params<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S>
    for Params<T>
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Params(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                format!(
                    "The query string does not fit: {}.",
                    std::error::Error::source(&e)
                        .map(|s| s.to_string())
                        .unwrap_or_default()
                ),
            )),
            Err(other) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                other.body_text(),
            )),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ProviderList {
    #[schema(value_type = Vec<Object>)]
    items: Vec<serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
pub struct CredentialList {
    items: Vec<Credential>,
    /// Pass as `after` for the next page; null on the last.
    next: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct VerifyResult {
    /// `valid` or `rejected`.
    outcome: String,
    message: String,
    credential: Credential,
}

#[derive(Serialize, ToSchema)]
pub struct ApiCredentialList {
    items: Vec<ApiCredential>,
}

/// A new token: shown in this answer only.
#[derive(Serialize, ToSchema)]
pub struct IssuedToken {
    api_credential: ApiCredential,
    token: String,
    warning: String,
}

#[derive(Serialize, ToSchema)]
pub struct WorkspaceList {
    items: Vec<Workspace>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditList {
    items: Vec<AuditEvent>,
    /// Pass as `before` for the next (older) page; null on the last.
    next: Option<String>,
}

fn with_etag<T: serde::Serialize>(status: StatusCode, revision: i64, body: &T) -> Response {
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(header::ETAG, etag(revision));
    response
}

fn credential_response(status: StatusCode, c: &Credential) -> Response {
    let mut response = with_etag(status, c.revision, c);
    if status == StatusCode::CREATED
        && let Ok(location) = HeaderValue::from_str(&format!("/v1/credentials/{}", c.id))
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

// ----- providers -----

#[utoipa::path(get, path = "/v1/providers", tag = "providers", responses((status = 200, body = ProviderList), Errors), security(("basic" = []), ("bearer" = [])))]
pub async fn list_providers(State(state): State<AppState>, _caller: Caller) -> Json<ProviderList> {
    let items: Vec<_> = state
        .lk
        .catalog()
        .providers()
        .iter()
        .map(latchkey_core::provider_json)
        .collect();
    Json(ProviderList { items })
}

#[utoipa::path(get, path = "/v1/providers/{id}", tag = "providers", params(("id" = String, Path, description = "Provider id", example = "aircall")), responses((status = 200, body = Object), Errors), security(("basic" = []), ("bearer" = [])))]
pub async fn get_provider(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let provider = state
        .lk
        .catalog()
        .get(&id)
        .ok_or_else(|| ApiError::not_found("provider"))?;
    Ok(Json(latchkey_core::provider_json(provider)))
}

// ----- credentials -----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VerifyParam {
    verify: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::ToSchema)]
pub struct CreateCredential {
    /// A provider id from /v1/providers.
    #[schema(example = "aircall")]
    provider: String,
    #[schema(min_length = 1, max_length = 200, example = "Aircall – production")]
    name: String,
    #[serde(default)]
    #[schema(max_length = 2000)]
    description: Option<String>,
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, String>)]
    fields: BTreeMap<String, Secret>,
}

fn verify_mode(param: &VerifyParam) -> VerifyMode {
    if param.verify == Some(false) {
        VerifyMode::Skip
    } else {
        VerifyMode::Verify
    }
}

#[utoipa::path(post, path = "/v1/credentials", tag = "credentials", params(VerifyParam), request_body = CreateCredential, responses((status = 201, body = Credential, headers(("ETag" = String), ("Location" = String))), Errors, BodyErrors, ConflictErrors, ProviderErrors), security(("basic" = []), ("bearer" = [])))]
pub async fn create_credential(
    State(state): State<AppState>,
    caller: Caller,
    Params(param): Params<VerifyParam>,
    JsonBody(body): JsonBody<CreateCredential>,
) -> ApiResult<Response> {
    let mode = verify_mode(&param);
    let provider = body.provider.clone();
    let new = NewCredential {
        provider: body.provider,
        name: body.name,
        description: body.description,
        fields: body.fields,
    };
    let result = state
        .lk
        .create_credential(&caller.actor, caller.workspace(), new, mode)
        .await;
    if mode == VerifyMode::Verify {
        state
            .metrics
            .verification(&provider_label(&state, &provider), outcome_of(&result));
    }
    Ok(credential_response(StatusCode::CREATED, &result?))
}

/// The provider id as a metric label: only catalog ids, never user text.
fn provider_label(state: &AppState, id: &str) -> String {
    if state.lk.catalog().get(id).is_some() {
        id.to_owned()
    } else {
        "unknown".to_owned()
    }
}

fn outcome_of<T>(result: &Result<T, CoreError>) -> &'static str {
    match result {
        Ok(_) => "valid",
        Err(CoreError::ProviderRejected { .. }) => "rejected",
        Err(CoreError::ProviderUnreachable { .. }) => "unreachable",
        Err(_) => "not_asked",
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListCredentials {
    provider: Option<String>,
    status: Option<String>,
    q: Option<String>,
    after: Option<String>,
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/v1/credentials", tag = "credentials", params(ListCredentials), responses((status = 200, body = CredentialList), Errors), security(("basic" = []), ("bearer" = [])))]
pub async fn list_credentials(
    State(state): State<AppState>,
    caller: Caller,
    Params(params): Params<ListCredentials>,
) -> ApiResult<Json<CredentialList>> {
    let status = params.status.as_deref().map(Status::parse).transpose()?;
    let query = ListQuery {
        provider: params.provider,
        status,
        name_contains: params.q,
        after: params.after,
        limit: params.limit,
    };
    let page = state
        .lk
        .list_credentials(caller.workspace(), &query)
        .await?;
    Ok(Json(CredentialList {
        items: page.items,
        next: page.next,
    }))
}

#[utoipa::path(get, path = "/v1/credentials/{id}", tag = "credentials", params(("id" = String, Path, description = "The object's id (or, for credentials and API credentials, its name)")), responses((status = 200, body = Credential, headers(("ETag" = String))), Errors), security(("basic" = []), ("bearer" = [])))]
pub async fn get_credential(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let c = state.lk.get_credential(caller.workspace(), &id).await?;
    Ok(credential_response(StatusCode::OK, &c))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::ToSchema)]
pub struct PatchCredential {
    name: Option<String>,
    description: Option<String>,
}

#[utoipa::path(patch, path = "/v1/credentials/{id}", tag = "credentials", params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "The ETag last read; a stale one answers 412")), request_body = PatchCredential, responses((status = 200, body = Credential, headers(("ETag" = String))), Errors, BodyErrors, ConflictErrors, StaleErrors), security(("basic" = []), ("bearer" = [])))]
pub async fn patch_credential(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    IfMatch(expected): IfMatch,
    JsonBody(body): JsonBody<PatchCredential>,
) -> ApiResult<Response> {
    if body.name.is_none() && body.description.is_none() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "nothing_to_change",
            "Send `name`, `description` or both.",
        ));
    }
    let ws = caller.workspace();
    let mut expected = expected;
    let mut current = None;
    if let Some(name) = &body.name {
        let c = state
            .lk
            .rename_credential(&caller.actor, ws, &id, name, expected)
            .await?;
        expected = Some(c.revision);
        current = Some(c);
    }
    if let Some(description) = &body.description {
        let reference = current.as_ref().map(|c| c.id.clone()).unwrap_or(id);
        current = Some(
            state
                .lk
                .describe_credential(&caller.actor, ws, &reference, description, expected)
                .await?,
        );
    }
    let c = current.expect("one of the two was sent");
    Ok(credential_response(StatusCode::OK, &c))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::ToSchema)]
pub struct ReplaceSecrets {
    #[schema(value_type = BTreeMap<String, String>)]
    fields: BTreeMap<String, Secret>,
}

#[utoipa::path(put, path = "/v1/credentials/{id}/secrets", tag = "credentials", params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "The ETag last read; a stale one answers 412"), VerifyParam), request_body = ReplaceSecrets, responses((status = 200, body = Credential, headers(("ETag" = String))), Errors, BodyErrors, ConflictErrors, StaleErrors, ProviderErrors), security(("basic" = []), ("bearer" = [])))]
pub async fn replace_secrets(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    IfMatch(expected): IfMatch,
    Params(param): Params<VerifyParam>,
    JsonBody(body): JsonBody<ReplaceSecrets>,
) -> ApiResult<Response> {
    let mode = verify_mode(&param);
    let result = state
        .lk
        .replace_fields(
            &caller.actor,
            caller.workspace(),
            &id,
            body.fields,
            mode,
            expected,
        )
        .await;
    if mode == VerifyMode::Verify {
        let provider = result
            .as_ref()
            .map(|c| c.provider.clone())
            .unwrap_or_default();
        state
            .metrics
            .verification(&provider_label(&state, &provider), outcome_of(&result));
    }
    Ok(credential_response(StatusCode::OK, &result?))
}

#[utoipa::path(post, path = "/v1/credentials/{id}/verify", tag = "credentials", params(("id" = String, Path, description = "The object's id (or, for credentials and API credentials, its name)")), responses((status = 200, body = VerifyResult, headers(("ETag" = String))), Errors, ConflictErrors, ProviderErrors), security(("basic" = []), ("bearer" = [])))]
pub async fn verify_credential(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let report = state
        .lk
        .verify_credential(&caller.actor, caller.workspace(), &id)
        .await?;
    let provider = provider_label(&state, &report.credential.provider);
    let outcome = match &report.verification {
        Verification::Valid { .. } => "valid",
        Verification::Rejected(_) => "rejected",
        Verification::Unreachable { .. } => "unreachable",
    };
    state.metrics.verification(&provider, outcome);
    if let Verification::Unreachable { reason } = &report.verification {
        return Err(CoreError::ProviderUnreachable {
            provider: report.credential.provider_name.clone(),
            reason: reason.clone(),
        }
        .into());
    }
    let message = match &report.verification {
        Verification::Valid { .. } => format!(
            "{} accepted the credential.",
            report.credential.provider_name
        ),
        _ => report.credential.status_reason.clone().unwrap_or_default(),
    };
    let revision = report.credential.revision;
    let body = VerifyResult {
        outcome: outcome.to_owned(),
        message,
        credential: report.credential,
    };
    Ok(with_etag(StatusCode::OK, revision, &body))
}

#[utoipa::path(post, path = "/v1/credentials/{id}/disable", tag = "credentials", params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "The ETag last read; a stale one answers 412")), responses((status = 200, body = Credential, headers(("ETag" = String))), Errors, ConflictErrors, StaleErrors), security(("basic" = []), ("bearer" = [])))]
pub async fn disable_credential(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    IfMatch(expected): IfMatch,
) -> ApiResult<Response> {
    let c = state
        .lk
        .disable_credential(&caller.actor, caller.workspace(), &id, expected)
        .await?;
    Ok(credential_response(StatusCode::OK, &c))
}

#[utoipa::path(post, path = "/v1/credentials/{id}/enable", tag = "credentials", params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "The ETag last read; a stale one answers 412")), responses((status = 200, body = Credential, headers(("ETag" = String))), Errors, ConflictErrors, StaleErrors), security(("basic" = []), ("bearer" = [])))]
pub async fn enable_credential(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    IfMatch(expected): IfMatch,
) -> ApiResult<Response> {
    let c = state
        .lk
        .enable_credential(&caller.actor, caller.workspace(), &id, expected)
        .await?;
    Ok(credential_response(StatusCode::OK, &c))
}

#[utoipa::path(delete, path = "/v1/credentials/{id}", tag = "credentials", params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "The ETag last read; a stale one answers 412")), responses((status = 204, description = "Deleted"), Errors, ConflictErrors, StaleErrors), security(("basic" = []), ("bearer" = [])))]
pub async fn delete_credential(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    IfMatch(expected): IfMatch,
) -> ApiResult<StatusCode> {
    state
        .lk
        .delete_credential(&caller.actor, caller.workspace(), &id, expected)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ----- API credentials -----

fn api_credential_response(status: StatusCode, c: &ApiCredential) -> Response {
    with_etag(status, c.revision, c)
}

fn with_token(status: StatusCode, c: &ApiCredential, token: &Secret) -> Response {
    let body = IssuedToken {
        api_credential: c.clone(),
        token: token.expose().to_owned(),
        warning: "This token will not be shown again: store it now.".to_owned(),
    };
    let mut response = with_etag(status, c.revision, &body);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[utoipa::path(get, path = "/v1/api-credentials", tag = "api-credentials", responses((status = 200, body = ApiCredentialList), Errors), security(("basic" = []), ("bearer" = [])))]
pub async fn list_api_credentials(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<ApiCredentialList>> {
    let items = state.lk.list_api_credentials(caller.workspace()).await?;
    Ok(Json(ApiCredentialList { items }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::ToSchema)]
pub struct CreateApiCredential {
    #[schema(min_length = 1, max_length = 200, example = "etl-nightly")]
    name: String,
    /// `admin` or `member` (the default).
    #[schema(example = "member")]
    role: Option<String>,
}

#[utoipa::path(post, path = "/v1/api-credentials", tag = "api-credentials", request_body = CreateApiCredential, responses((status = 201, body = IssuedToken, headers(("ETag" = String), ("Location" = String))), Errors, BodyErrors, ConflictErrors), security(("basic" = []), ("bearer" = [])))]
pub async fn create_api_credential(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateApiCredential>,
) -> ApiResult<Response> {
    let role = body
        .role
        .as_deref()
        .map(Role::parse)
        .transpose()?
        .unwrap_or(Role::Member);
    let (c, token) = state
        .lk
        .add_api_credential(
            &caller.actor,
            caller.principal.is_admin(),
            caller.workspace(),
            &body.name,
            role,
        )
        .await?;
    let mut response = with_token(StatusCode::CREATED, &c, &token);
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/api-credentials/{}", c.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

#[utoipa::path(get, path = "/v1/api-credentials/{id}", tag = "api-credentials", params(("id" = String, Path, description = "The object's id (or, for credentials and API credentials, its name)")), responses((status = 200, body = ApiCredential, headers(("ETag" = String))), Errors), security(("basic" = []), ("bearer" = [])))]
pub async fn get_api_credential(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let c = state.lk.get_api_credential(caller.workspace(), &id).await?;
    Ok(api_credential_response(StatusCode::OK, &c))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::ToSchema)]
pub struct PatchApiCredential {
    name: String,
}

#[utoipa::path(patch, path = "/v1/api-credentials/{id}", tag = "api-credentials", params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "The ETag last read; a stale one answers 412")), request_body = PatchApiCredential, responses((status = 200, body = ApiCredential, headers(("ETag" = String))), Errors, BodyErrors, ConflictErrors, StaleErrors), security(("basic" = []), ("bearer" = [])))]
pub async fn patch_api_credential(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    IfMatch(expected): IfMatch,
    JsonBody(body): JsonBody<PatchApiCredential>,
) -> ApiResult<Response> {
    let c = state
        .lk
        .rename_api_credential(
            &caller.actor,
            caller.principal.is_admin(),
            caller.workspace(),
            &id,
            &body.name,
            expected,
        )
        .await?;
    Ok(api_credential_response(StatusCode::OK, &c))
}

#[utoipa::path(post, path = "/v1/api-credentials/{id}/disable", tag = "api-credentials", params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "The ETag last read; a stale one answers 412")), responses((status = 200, body = ApiCredential, headers(("ETag" = String))), Errors, ConflictErrors, StaleErrors), security(("basic" = []), ("bearer" = [])))]
pub async fn disable_api_credential(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    IfMatch(expected): IfMatch,
) -> ApiResult<Response> {
    let c = state
        .lk
        .disable_api_credential(
            &caller.actor,
            caller.principal.is_admin(),
            caller.workspace(),
            &id,
            expected,
        )
        .await?;
    Ok(api_credential_response(StatusCode::OK, &c))
}

#[utoipa::path(post, path = "/v1/api-credentials/{id}/enable", tag = "api-credentials", params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "The ETag last read; a stale one answers 412")), responses((status = 200, body = ApiCredential, headers(("ETag" = String))), Errors, ConflictErrors, StaleErrors), security(("basic" = []), ("bearer" = [])))]
pub async fn enable_api_credential(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    IfMatch(expected): IfMatch,
) -> ApiResult<Response> {
    let c = state
        .lk
        .enable_api_credential(
            &caller.actor,
            caller.principal.is_admin(),
            caller.workspace(),
            &id,
            expected,
        )
        .await?;
    Ok(api_credential_response(StatusCode::OK, &c))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::ToSchema)]
pub struct Regenerate {
    grace_seconds: Option<u64>,
}

#[utoipa::path(post, path = "/v1/api-credentials/{id}/regenerate", tag = "api-credentials", params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "The ETag last read; a stale one answers 412")), request_body(content = Option<Regenerate>, description = "Optional; may be left out"), responses((status = 200, body = IssuedToken, headers(("ETag" = String))), Errors, BodyErrors, ConflictErrors, StaleErrors), security(("basic" = []), ("bearer" = [])))]
pub async fn regenerate_api_credential(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    IfMatch(expected): IfMatch,
    OptionalJsonBody(body): OptionalJsonBody<Regenerate>,
) -> ApiResult<Response> {
    let (c, token) = state
        .lk
        .regenerate_api_credential(
            &caller.actor,
            caller.principal.is_admin(),
            caller.workspace(),
            &id,
            body.grace_seconds,
            expected,
        )
        .await?;
    Ok(with_token(StatusCode::OK, &c, &token))
}

#[utoipa::path(delete, path = "/v1/api-credentials/{id}", tag = "api-credentials", params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "The ETag last read; a stale one answers 412")), responses((status = 204, description = "Deleted"), Errors, ConflictErrors, StaleErrors), security(("basic" = []), ("bearer" = [])))]
pub async fn delete_api_credential(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    IfMatch(expected): IfMatch,
) -> ApiResult<StatusCode> {
    state
        .lk
        .delete_api_credential(
            &caller.actor,
            caller.principal.is_admin(),
            caller.workspace(),
            &id,
            expected,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ----- workspaces -----

fn require_default_admin(caller: &Caller) -> ApiResult<()> {
    if caller.principal.is_admin() && caller.workspace() == DEFAULT_WORKSPACE {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Only an admin API credential of the default workspace may list or create workspaces.",
        ))
    }
}

#[utoipa::path(get, path = "/v1/workspaces", tag = "workspaces", responses((status = 200, body = WorkspaceList), Errors), security(("basic" = []), ("bearer" = [])))]
pub async fn list_workspaces(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<WorkspaceList>> {
    require_default_admin(&caller)?;
    Ok(Json(WorkspaceList {
        items: state.lk.list_workspaces().await?,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::ToSchema)]
pub struct CreateWorkspace {
    /// Lowercase letters, digits and hyphens.
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,62}$", example = "team-b")]
    slug: String,
}

#[utoipa::path(post, path = "/v1/workspaces", tag = "workspaces", request_body = CreateWorkspace, responses((status = 201, body = Workspace), Errors, BodyErrors, ConflictErrors), security(("basic" = []), ("bearer" = [])))]
pub async fn create_workspace(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateWorkspace>,
) -> ApiResult<Response> {
    require_default_admin(&caller)?;
    let ws = state.lk.create_workspace(&caller.actor, &body.slug).await?;
    Ok((StatusCode::CREATED, Json(ws)).into_response())
}

// ----- audit -----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListAudit {
    action: Option<String>,
    target: Option<String>,
    actor: Option<String>,
    /// RFC 3339.
    since: Option<String>,
    before: Option<String>,
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(ListAudit), responses((status = 200, body = AuditList), Errors), security(("basic" = []), ("bearer" = [])))]
pub async fn list_audit(
    State(state): State<AppState>,
    caller: Caller,
    Params(params): Params<ListAudit>,
) -> ApiResult<Json<AuditList>> {
    let since = params
        .since
        .as_deref()
        .map(|s| {
            humantime_parse(s).ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_since",
                    "`since` must be an RFC 3339 time such as 2026-11-01T00:00:00Z.",
                )
                .field("since")
            })
        })
        .transpose()?;
    let query = AuditQuery {
        action: params.action,
        target: params.target,
        actor: params.actor,
        since,
        before: params.before,
        limit: params.limit,
    };
    let page = state.lk.list_audit(caller.workspace(), &query).await?;
    Ok(Json(AuditList {
        items: page.items,
        next: page.next,
    }))
}

fn humantime_parse(text: &str) -> Option<Timestamp> {
    latchkey_core::parse_rfc3339(text)
}

// ----- proxy (the HTTP side is in `crate::proxy`) -----

/// Send a request to the credential's provider at a path under its base URL, with the provider's
/// auth injected; the request's body and allowed headers are passed on as sent (HEAD as GET). The
/// answer is the provider's, streamed back with its status and headers.
#[utoipa::path(
    method(get, post, put, patch, delete, options),
    path = "/v1/proxy/{credential}/{path}",
    operation_id = "proxy",
    tag = "proxy",
    params(
        ("credential" = String, Path, description = "The credential's id or name"),
        ("path" = String, Path, description = "The path under the provider's base URL (may hold `/`), with the query string passed on"),
        ProxyHeaders,
    ),
    responses(
        (status = "default", description = "The provider's answer (any status it gives)"),
        Errors,
        ProxyErrors,
    ),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn proxy_path(
    state: State<AppState>,
    caller: Caller,
    request: axum::extract::Request,
) -> ApiResult<Response> {
    crate::proxy::proxy(state, caller, request).await
}

/// As `/v1/proxy/{credential}/{path}`, at the provider's base URL itself.
#[utoipa::path(
    method(get, post, put, patch, delete, options),
    path = "/v1/proxy/{credential}",
    operation_id = "proxy_root",
    tag = "proxy",
    params(
        ("credential" = String, Path, description = "The credential's id or name"),
        ProxyHeaders,
    ),
    responses(
        (status = "default", description = "The provider's answer (any status it gives)"),
        Errors,
        ProxyErrors,
    ),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn proxy_root(
    state: State<AppState>,
    caller: Caller,
    request: axum::extract::Request,
) -> ApiResult<Response> {
    crate::proxy::proxy(state, caller, request).await
}

/// The headers the proxy reads for itself (never passed on).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct ProxyHeaders {
    /// Seconds Latchkey may wait for a rate-limit slot and retries (default 30, at most 300).
    #[param(rename = "X-Latchkey-Max-Wait", minimum = 0)]
    max_wait: Option<f64>,
}
