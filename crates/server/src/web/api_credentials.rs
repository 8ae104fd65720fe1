//! The API Credentials pane: add (token shown once), rename, regenerate behind a warning,
//! disable/enable, delete.

use super::*;

pub(super) async fn api_credentials(
    State(state): State<AppState>,
    Viewer(user): Viewer,
) -> Response {
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

pub(super) async fn add_api_credential(State(state): State<AppState>, posted: Posted) -> Response {
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

pub(super) async fn api_credential_action(
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
                    let renewed = (*c.id == *user.principal.api_credential_id).then(|| {
                        let mut s = Session::new(ws.clone(), Secret::new(token.expose()));
                        s.id = user.session.id.clone();
                        s.csrf = user.session.csrf.clone();
                        s.expires = user.session.expires;
                        s
                    });
                    let mut r =
                        render_api(&state, &user, None, Some((&c, &token)), StatusCode::OK).await;
                    if let Some(s) = renewed
                        && let Some(value) = s.seal(&lk.key_ring())
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
