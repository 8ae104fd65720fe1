//! The credentials screen (tiles, filters, the Add New Credential overlay) and a credential's page.

use super::*;

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
    /// The cursor: the last credential of the previous page.
    #[serde(default)]
    after: Option<String>,
}

/// Tiles per page.
const TILES: u32 = 100;

pub(super) async fn home(State(state): State<AppState>, parts: Parts) -> Response {
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
    let list = ListQuery {
        provider: provider.clone(),
        status: filter_status,
        name_contains: Some(query.q.trim().to_owned()).filter(|q| !q.is_empty()),
        after: query.after.clone().filter(|a| !a.is_empty()),
        limit: Some(TILES),
    };
    let page = match state.lk.list_credentials(user.workspace(), &list).await {
        Ok(page) => page,
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
    };
    let filters = Filters {
        provider: provider.as_deref().unwrap_or(""),
        status: filter_status.map(Status::as_str).unwrap_or(""),
        q: query.q.trim(),
        first_page: list.after.is_none(),
        next: page.next.as_deref(),
    };
    let items = page.items;
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

pub(super) async fn create_credential(State(state): State<AppState>, posted: Posted) -> Response {
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

pub(super) async fn show_credential(
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

pub(super) async fn credential_action(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    posted: Posted,
) -> Response {
    let Posted { user, form, .. } = posted;
    let lk = &state.lk;
    let ws = user.workspace().to_owned();
    let revision = form.revision();
    // The reference may be a name: encoded, it stays one path segment (`.` too, so that a name
    // `..` is no step up).
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'~');
    let encoded = percent_encoding::utf8_percent_encode(&id, SEGMENT).to_string();
    let back = |m: &str| see_other(&format!("/credentials/{encoded}?m={m}"));
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
