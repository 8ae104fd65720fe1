//! Signing in (core's `authenticate`, the API's throttle) and out.

use super::*;

pub(super) async fn sign_in(State(state): State<AppState>, parts: Parts, body: Bytes) -> Response {
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
            let Some(value) = session.seal(&state.lk.key_ring()) else {
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

/// Sign out: the session is recorded as ended in the store, so every instance refuses its
/// cookie from now on (a copy of it included), and the browser is told to forget it.
pub(super) async fn sign_out(State(state): State<AppState>, posted: Posted) -> Response {
    if let Err(e) = session::revoke(&state, &posted.user.session).await {
        tracing::warn!(error = %e, "could not record a sign-out");
        return html(
            StatusCode::SERVICE_UNAVAILABLE,
            view::problem(
                None,
                "Not signed out",
                "The database is unavailable, so the session could not be ended; try again shortly.",
            ),
        );
    }
    tracing::info!("a web session was signed out");
    let mut r = see_other("/");
    r.headers_mut()
        .insert(header::SET_COOKIE, session::clear_cookie(posted.https));
    r
}
