//! Issued API credentials through `Latchkey`, on each backend (a real SQLite file, a real PostgreSQL database): the whole lifecycle as
//! `authenticate` sees it (SECURITY-TESTS 11–17 and 21), and that only a hash is stored (12).

use base64::Engine as _;
use latchkey_core::{
    Actor, ApiCredential, AuditQuery, AuthFailure, CoreError, ErrorKind, Latchkey,
    MAX_API_CREDENTIALS, MAX_GRACE_SECONDS, Role, Settings,
};
use latchkey_testdb::{Backend, TestDb};
use latchkey_vault::Secret;
use std::time::Duration;

const WS: &str = "default";

async fn start(backend: Backend) -> (TestDb, Latchkey) {
    let db = TestDb::new(backend).await;
    let settings = Settings {
        data_dir: db.data_dir(),
        database_url: db.database_url(),
        ..Default::default()
    };
    let (lk, _) = Latchkey::start(&settings).await.unwrap();
    (db, lk)
}

fn op() -> Actor {
    Actor::operator()
}

async fn add(lk: &Latchkey, name: &str, role: Role) -> (ApiCredential, Secret) {
    lk.add_api_credential(&op(), true, WS, name, role)
        .await
        .unwrap()
}

async fn the_whole_lifecycle_through_authenticate(backend: Backend) {
    let (_dir, lk) = start(backend).await;
    let (created, token) = add(&lk, "Pipeline", Role::Member).await;
    let t = token.expose().to_owned();
    assert!(t.starts_with("lkt_"));
    assert_eq!(created.hint, format!("lkt_…{}", &t[t.len() - 4..]));
    assert!(created.enabled);
    assert_eq!(created.role, Role::Member);
    assert_eq!(created.revision, 1);
    assert!(created.last_used_at.is_none());

    // The token works as Bearer and as Basic with its workspace.
    let p = lk.authenticate(None, &t).await.unwrap();
    assert_eq!(p.workspace, WS);
    assert_eq!(&*p.api_credential_id, created.id);
    assert_eq!(&*p.name, "Pipeline");
    assert!(!p.is_admin());
    assert_eq!(
        p.actor(),
        Actor::api_credential(created.id.clone(), "Pipeline")
    );
    lk.authenticate(Some(WS), &t).await.unwrap();
    // The use is recorded.
    let shown = lk.get_api_credential(WS, "pipeline").await.unwrap();
    assert!(shown.last_used_at.is_some());
    assert_eq!(shown.revision, 1, "a use does not change the revision");

    // Disabled → refused (the success just cached does not survive); enabled again → works.
    let disabled = lk
        .disable_api_credential(&op(), true, WS, &created.id, None)
        .await
        .unwrap();
    assert!(!disabled.enabled);
    assert_eq!(
        lk.authenticate(None, &t).await.unwrap_err(),
        AuthFailure::Disabled
    );
    lk.enable_api_credential(&op(), true, WS, "Pipeline", None)
        .await
        .unwrap();
    lk.authenticate(None, &t).await.unwrap();

    // Rename keeps the token valid.
    let renamed = lk
        .rename_api_credential(&op(), true, WS, "pipeline", "ETL nightly", None)
        .await
        .unwrap();
    assert_eq!(renamed.name, "ETL nightly");
    assert_eq!(
        lk.authenticate(None, &t).await.unwrap().name.as_ref(),
        "ETL nightly"
    );

    // Regenerate: the old token fails at once (though its success was cached), the new one works.
    lk.authenticate(None, &t).await.unwrap();
    let (regenerated, new_token) = lk
        .regenerate_api_credential(&op(), true, WS, "ETL nightly", None, None)
        .await
        .unwrap();
    let n = new_token.expose().to_owned();
    assert_ne!(n, t);
    assert_eq!(regenerated.hint, format!("lkt_…{}", &n[n.len() - 4..]));
    assert!(regenerated.grace_until.is_none());
    assert_eq!(
        lk.authenticate(None, &t).await.unwrap_err(),
        AuthFailure::Unknown
    );
    assert_eq!(
        lk.authenticate(None, &n)
            .await
            .unwrap()
            .api_credential_id
            .as_ref(),
        created.id
    );

    // With a grace period of 1 s: the old token works until it passes, then fails.
    let (graced, newest) = lk
        .regenerate_api_credential(&op(), true, WS, &created.id, Some(1), None)
        .await
        .unwrap();
    assert!(graced.grace_until.is_some());
    lk.authenticate(None, &n).await.unwrap();
    lk.authenticate(None, newest.expose()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        lk.authenticate(None, &n).await.unwrap_err(),
        AuthFailure::GraceExpired
    );
    lk.authenticate(None, newest.expose()).await.unwrap();
    assert!(
        lk.get_api_credential(WS, &created.id)
            .await
            .unwrap()
            .grace_until
            .is_none()
    );

    // Delete: the token fails at once.
    lk.delete_api_credential(&op(), true, WS, &created.id, None)
        .await
        .unwrap();
    assert_eq!(
        lk.authenticate(None, newest.expose()).await.unwrap_err(),
        AuthFailure::Unknown
    );
    assert!(matches!(
        lk.get_api_credential(WS, &created.id).await,
        Err(CoreError::ApiCredentialNotFound { .. })
    ));

    // Every change is in the audit log, with the target and never the token.
    let events = lk.list_audit(WS, &AuditQuery::default()).await.unwrap();
    let actions: Vec<&str> = events.items.iter().map(|e| e.action.as_str()).collect();
    for action in [
        "api_credential.create",
        "api_credential.disable",
        "api_credential.enable",
        "api_credential.rename",
        "api_credential.regenerate",
        "api_credential.delete",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    let dump = serde_json::to_string(&events).unwrap();
    for secret in [&t, &n, newest.expose()] {
        assert!(!dump.contains(&secret[4..]), "a token is in the audit log");
    }
}

async fn a_cached_success_never_outlives_a_change(backend: Backend) {
    let (_dir, lk) = start(backend).await;
    let (c, token) = add(&lk, "Cached", Role::Member).await;
    for _ in 0..3 {
        lk.authenticate(None, token.expose()).await.unwrap();
    }
    lk.disable_api_credential(&op(), true, WS, &c.id, None)
        .await
        .unwrap();
    assert_eq!(
        lk.authenticate(None, token.expose()).await.unwrap_err(),
        AuthFailure::Disabled
    );
    lk.enable_api_credential(&op(), true, WS, &c.id, None)
        .await
        .unwrap();
    lk.authenticate(None, token.expose()).await.unwrap();
    lk.delete_api_credential(&op(), true, WS, &c.id, None)
        .await
        .unwrap();
    assert_eq!(
        lk.authenticate(None, token.expose()).await.unwrap_err(),
        AuthFailure::Unknown
    );
}

async fn a_token_only_works_in_its_own_workspace(backend: Backend) {
    let (_dir, lk) = start(backend).await;
    lk.create_workspace(&op(), "team-b").await.unwrap();
    let (_, a) = add(&lk, "A", Role::Admin).await;
    let (b_cred, b) = lk
        .add_api_credential(&op(), true, "team-b", "B", Role::Member)
        .await
        .unwrap();
    assert_eq!(b_cred.workspace, "team-b");
    // Uncached and cached, the Basic username must name the token's workspace.
    for _ in 0..2 {
        assert_eq!(
            lk.authenticate(Some("team-b"), a.expose())
                .await
                .unwrap_err(),
            AuthFailure::WrongWorkspace
        );
        assert_eq!(
            lk.authenticate(Some("nope"), a.expose()).await.unwrap_err(),
            AuthFailure::WrongWorkspace
        );
        lk.authenticate(Some(WS), a.expose()).await.unwrap();
    }
    assert_eq!(
        lk.authenticate(None, b.expose()).await.unwrap().workspace,
        "team-b"
    );
    assert_eq!(
        lk.authenticate(Some(WS), b.expose()).await.unwrap_err(),
        AuthFailure::WrongWorkspace
    );
    // Management is scoped too: another workspace's id answers "not found".
    assert!(matches!(
        lk.get_api_credential(WS, &b_cred.id).await,
        Err(CoreError::ApiCredentialNotFound { .. })
    ));
    assert!(matches!(
        lk.disable_api_credential(&op(), true, WS, &b_cred.id, None)
            .await,
        Err(CoreError::ApiCredentialNotFound { .. })
    ));
    assert_eq!(lk.list_api_credentials("team-b").await.unwrap().len(), 1);
}

async fn typos_and_garbage_fail_before_any_lookup(backend: Backend) {
    let (_dir, lk) = start(backend).await;
    let (_, token) = add(&lk, "T", Role::Member).await;
    let t = token.expose();
    // The real token is cached now: a typo of it has another hash and is still checked.
    lk.authenticate(None, t).await.unwrap();
    for i in 4..t.len() {
        let mut changed = t.as_bytes().to_vec();
        changed[i] = if changed[i] == b'x' { b'y' } else { b'x' };
        let changed = String::from_utf8(changed).unwrap();
        assert_eq!(
            lk.authenticate(None, &changed).await.unwrap_err(),
            AuthFailure::BadChecksum,
            "position {i}"
        );
    }
    for bad in [
        "",
        "lkt_",
        "Bearer x",
        &t[..41],
        &format!("{t} "),
        "lkt_!!!",
    ] {
        assert_eq!(
            lk.authenticate(None, bad).await.unwrap_err(),
            AuthFailure::Malformed,
            "{bad:?}"
        );
    }
    // A well-formed token that was never issued.
    let (other, _) = latchkey_vault::generate_token();
    assert_eq!(
        lk.authenticate(None, other.expose()).await.unwrap_err(),
        AuthFailure::Unknown
    );
}

async fn only_admins_manage_and_the_cap_holds(backend: Backend) {
    let (_dir, lk) = start(backend).await;
    let (_, admin_token) = add(&lk, "Admin", Role::Admin).await;
    let (member, member_token) = add(&lk, "Member", Role::Member).await;
    let admin = lk.authenticate(None, admin_token.expose()).await.unwrap();
    let m = lk.authenticate(None, member_token.expose()).await.unwrap();
    assert!(admin.is_admin());
    assert!(!m.is_admin());

    // A member cannot mint, change or delete API credentials.
    let forbidden = |r: Result<(), CoreError>| {
        let e = r.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Forbidden, "{e}");
        assert_eq!(e.code(), "forbidden");
    };
    let ma = m.actor();
    forbidden(
        lk.add_api_credential(&ma, m.is_admin(), WS, "Mine", Role::Admin)
            .await
            .map(drop),
    );
    forbidden(
        lk.rename_api_credential(&ma, false, WS, &member.id, "x", None)
            .await
            .map(drop),
    );
    forbidden(
        lk.disable_api_credential(&ma, false, WS, "Admin", None)
            .await
            .map(drop),
    );
    forbidden(
        lk.enable_api_credential(&ma, false, WS, "Admin", None)
            .await
            .map(drop),
    );
    forbidden(
        lk.regenerate_api_credential(&ma, false, WS, "Admin", None, None)
            .await
            .map(drop),
    );
    forbidden(
        lk.delete_api_credential(&ma, false, WS, "Admin", None)
            .await
            .map(drop),
    );
    assert_eq!(lk.list_api_credentials(WS).await.unwrap().len(), 2);
    // The refusals are audited, by the member.
    let refused = lk
        .list_audit(
            WS,
            &AuditQuery {
                actor: Some("Member".to_owned()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(refused.items.len(), 6);
    assert!(
        refused
            .items
            .iter()
            .all(|e| e.outcome == "failure" && e.detail.as_deref() == Some("forbidden"))
    );

    // An admin API credential can.
    let (_, minted) = lk
        .add_api_credential(&admin.actor(), admin.is_admin(), WS, "Minted", Role::Member)
        .await
        .unwrap();
    lk.authenticate(None, minted.expose()).await.unwrap();

    // Names are unique ignoring case; bad input is refused with its field.
    let e = lk
        .add_api_credential(&op(), true, WS, "minted", Role::Member)
        .await
        .unwrap_err();
    assert!(matches!(e, CoreError::DuplicateApiCredentialName { .. }));
    assert_eq!((e.code(), e.field()), ("duplicate_name", Some("name")));
    let e = lk
        .rename_api_credential(&op(), true, WS, "Minted", "MEMBER", None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "duplicate_name");
    for bad in ["", "   ", &"x".repeat(201), "a\nb"] {
        let e = lk
            .add_api_credential(&op(), true, WS, bad, Role::Member)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid);
    }
    let e = lk
        .regenerate_api_credential(&op(), true, WS, "Minted", Some(MAX_GRACE_SECONDS + 1), None)
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.field(), e.kind()),
        (
            "invalid_grace_period",
            Some("grace_seconds"),
            ErrorKind::Invalid
        )
    );
    // The refused regenerate changed nothing.
    lk.authenticate(None, minted.expose()).await.unwrap();
    let e = lk
        .rename_api_credential(&op(), true, WS, "Minted", "Other", Some(7))
        .await
        .unwrap_err();
    assert!(matches!(e, CoreError::StaleRevision));

    // The cap: at most MAX_API_CREDENTIALS per workspace.
    let have = lk.list_api_credentials(WS).await.unwrap().len();
    for i in have..MAX_API_CREDENTIALS {
        add(&lk, &format!("Filler {i}"), Role::Member).await;
    }
    let e = lk
        .add_api_credential(&op(), true, WS, "One too many", Role::Member)
        .await
        .unwrap_err();
    assert!(matches!(e, CoreError::ApiCredentialLimit { limit: 100 }));
    assert_eq!(e.code(), "api_credential_limit");
    assert_eq!(e.kind(), ErrorKind::Conflict);
    // Another workspace has its own cap.
    lk.create_workspace(&op(), "other").await.unwrap();
    lk.add_api_credential(&op(), true, "other", "First", Role::Member)
        .await
        .unwrap();
}

async fn bootstrap_creates_the_first_admin_exactly_once(backend: Backend) {
    let (_dir, lk) = start(backend).await;
    let (admin, token) = lk.bootstrap_admin().await.unwrap().expect("created");
    assert_eq!(admin.name, "admin");
    assert_eq!(admin.role, Role::Admin);
    assert_eq!(admin.workspace, WS);
    let p = lk.authenticate(Some(WS), token.expose()).await.unwrap();
    assert!(p.is_admin());
    assert!(lk.bootstrap_admin().await.unwrap().is_none());
    // Even once the first admin is gone, an existing API credential anywhere stops it.
    lk.create_workspace(&op(), "team-b").await.unwrap();
    lk.add_api_credential(&op(), true, "team-b", "x", Role::Member)
        .await
        .unwrap();
    lk.delete_api_credential(&op(), true, WS, "admin", None)
        .await
        .unwrap();
    assert!(lk.bootstrap_admin().await.unwrap().is_none());
    assert_eq!(lk.list_api_credentials(WS).await.unwrap().len(), 0);
}

async fn failed_authentications_are_audited_without_the_token(backend: Backend) {
    let (_dir, lk) = start(backend).await;
    lk.record_auth_failure(
        Some(WS),
        AuthFailure::BadChecksum,
        Some("req-1".to_owned()),
        Some("10.0.0.9".to_owned()),
    )
    .await;
    lk.record_auth_failure(None, AuthFailure::Malformed, None, None)
        .await;
    lk.record_auth_failure(Some("Not A Slug"), AuthFailure::WrongWorkspace, None, None)
        .await;
    let events = lk
        .list_audit(
            WS,
            &AuditQuery {
                action: Some("auth.failure".to_owned()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(events.items.len(), 1);
    let e = &events.items[0];
    assert_eq!(e.outcome, "failure");
    assert_eq!(e.detail.as_deref(), Some("bad_checksum"));
    assert_eq!(e.request_id.as_deref(), Some("req-1"));
    assert_eq!(e.client.as_deref(), Some("10.0.0.9"));
    assert!(e.actor.id.is_none());
}

async fn a_pasted_token_is_never_echoed_in_an_error(backend: Backend) {
    let (_dir, lk) = start(backend).await;
    let (_, token) = add(&lk, "P", Role::Member).await;
    let t = token.expose();
    let e = lk.get_api_credential(WS, t).await.unwrap_err();
    assert!(!e.to_string().contains(&t[4..]), "{e}");
    let e = lk
        .disable_api_credential(&op(), true, WS, t, None)
        .await
        .unwrap_err();
    assert!(!e.to_string().contains(&t[4..]), "{e}");
    let e = lk
        .add_api_credential(&op(), true, WS, t, Role::Member)
        .await
        .unwrap_err();
    assert!(!e.to_string().contains(&t[4..]), "{e}");
    let audit = lk.list_audit(WS, &AuditQuery::default()).await.unwrap();
    assert!(!serde_json::to_string(&audit).unwrap().contains(&t[4..]));
    // Nor in any view.
    let list = lk.list_api_credentials(WS).await.unwrap();
    assert!(!serde_json::to_string(&list).unwrap().contains(&t[4..]));
    assert!(!format!("{list:?}").contains(&t[4..]));
}

async fn the_database_holds_no_form_of_any_token(backend: Backend) {
    let (db, lk) = start(backend).await;
    let mut tokens = Vec::new();
    for name in ["One", "Two", "Three"] {
        let (c, token) = add(&lk, name, Role::Member).await;
        tokens.push(token.expose().to_owned());
        let (_, regenerated) = lk
            .regenerate_api_credential(&op(), true, WS, &c.id, Some(60), None)
            .await
            .unwrap();
        tokens.push(regenerated.expose().to_owned());
    }
    for t in &tokens {
        lk.authenticate(None, t).await.unwrap();
    }
    let dump = db.dump().await;
    assert!(!dump.is_empty());
    for t in &tokens {
        let random = &t[4..36];
        let forms = [
            t.clone(),
            random.to_owned(),
            hex(t.as_bytes()),
            hex(t.as_bytes()).to_uppercase(),
            base64::engine::general_purpose::STANDARD.encode(t),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(t),
            base64::engine::general_purpose::STANDARD.encode(random),
        ];
        for form in &forms {
            assert!(
                !dump.windows(form.len()).any(|w| w == form.as_bytes()),
                "the database holds a form of a token"
            );
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

latchkey_testdb::backend_tests!(
    the_whole_lifecycle_through_authenticate,
    a_cached_success_never_outlives_a_change,
    a_token_only_works_in_its_own_workspace,
    typos_and_garbage_fail_before_any_lookup,
    only_admins_manage_and_the_cap_holds,
    bootstrap_creates_the_first_admin_exactly_once,
    failed_authentications_are_audited_without_the_token,
    a_pasted_token_is_never_echoed_in_an_error,
    the_database_holds_no_form_of_any_token,
);
