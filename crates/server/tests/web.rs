//! The web page: plain HTTP tests (headers, the session cookie, CSRF, sign-in messages, no secret
//! in any page) and browser tests in headless Chromium against the real app on a real socket with
//! the real sandbox providers.

mod common;

use latchkey_testdb::Backend;

use common::browser::{Browser, ENTER, Sources, TAB, tile};
use common::{TestApp, expect};
use reqwest::{Method, StatusCode, header};
use serde_json::json;

// ----- plain HTTP helpers -----

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// The value of the first `<input name=NAME value=…>` in a page.
fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in page"))
        + marker.len();
    page[start..][..page[start..].find('"').unwrap()].to_owned()
}

/// A signed-in browser-less session: the cookie and the page's CSRF token.
struct Web {
    client: reqwest::Client,
    base: String,
    cookie: String,
    csrf: String,
}

impl Web {
    async fn sign_in(app: &TestApp, workspace: &str, token: &str) -> Web {
        let client = client();
        let response = client
            .post(app.url("/sign-in"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form(&[("workspace", workspace), ("token", token)]))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let set = response.headers()[header::SET_COOKIE].to_str().unwrap();
        let cookie = set.split(';').next().unwrap().to_owned();
        let mut web = Web {
            client,
            base: format!("http://{}", app.addr),
            cookie,
            csrf: String::new(),
        };
        let (status, page) = web.get("/").await;
        assert_eq!(status, StatusCode::OK);
        web.csrf = hidden(&page, "csrf");
        web
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .header(header::COOKIE, &self.cookie)
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    }

    async fn post_raw(&self, path: &str, pairs: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .header(header::COOKIE, &self.cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form(pairs))
            .send()
            .await
            .unwrap()
    }

    /// Post with this session's CSRF token.
    async fn post(&self, path: &str, pairs: &[(&str, &str)]) -> (StatusCode, String) {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(pairs);
        let r = self.post_raw(path, &all).await;
        (r.status(), r.text().await.unwrap())
    }
}

/// The Add New Credential form's fields for the sandbox's demo values of `provider`.
fn demo_pairs(app: &TestApp, provider: &str, name: &str) -> Vec<(String, String)> {
    let mut pairs = vec![
        ("provider".to_owned(), provider.to_owned()),
        ("name".to_owned(), name.to_owned()),
        ("description".to_owned(), "from the web page".to_owned()),
    ];
    for (key, value, _) in app.sandbox.demo().fields(provider) {
        pairs.push((format!("{provider}.{key}"), value));
    }
    pairs
}

fn as_refs(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

async fn credential_count(app: &TestApp) -> usize {
    let body = expect(app.admin(Method::GET, "/v1/credentials"), 200).await;
    body["items"].as_array().unwrap().len()
}

const SEED_PROVIDERS: [&str; 4] = ["chorus", "aircall", "ccai-platform", "clari-copilot"];

// ----- plain HTTP tests -----

async fn pages_carry_security_headers_and_no_inline_script_or_style(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = client().get(app.url("/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let h = r.headers().clone();
    let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
    assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(h[header::CACHE_CONTROL], "no-store");
    assert!(
        h[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = r.text().await.unwrap();
    assert!(page.contains("Sign in"));
    assert!(!page.contains("<script>"), "no inline script");
    assert!(!page.contains(" style="), "no inline style");
    assert!(
        !page.contains("http://") && !page.contains("//cdn"),
        "nothing from elsewhere"
    );

    for (path, kind) in [
        ("/assets/app.js", "text/javascript"),
        ("/assets/app.css", "text/css"),
    ] {
        let r = client().get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(
            r.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with(kind)
        );
        assert!(r.headers().contains_key(header::CONTENT_SECURITY_POLICY));
    }
    // The REST API is unchanged: no page headers there.
    let r = app
        .admin(Method::GET, "/v1/credentials")
        .send()
        .await
        .unwrap();
    assert!(!r.headers().contains_key(header::CONTENT_SECURITY_POLICY));
}

async fn sign_in_sets_a_sealed_http_only_strict_expiring_cookie_and_sign_out_clears_it(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let r = client()
        .post(app.url("/sign-in"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(&[
            ("workspace", "default"),
            ("token", &app.admin_token),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[header::LOCATION], "/");
    let cookie = r.headers()[header::SET_COOKIE].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("latchkey_session="), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http: no Secure");
    assert!(!cookie.contains(&app.admin_token), "the token is sealed");
    assert!(
        !cookie.contains(&app.admin_token[4..20]),
        "the token is sealed"
    );

    // Behind a TLS-terminating proxy the cookie is Secure.
    let r = client()
        .post(app.url("/sign-in"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("x-forwarded-proto", "https")
        .body(form(&[
            ("workspace", "default"),
            ("token", &app.admin_token),
        ]))
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .ends_with("; Secure")
    );

    let web = Web::sign_in(&app, "default", &app.admin_token).await;
    let (status, page) = web.get("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Add Credential") && page.contains("Add New Credential"));
    assert!(!page.contains(&app.admin_token));

    // Without a session, a page sends to the sign-in form and a post is refused.
    let r = client()
        .get(app.url("/api-credentials"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[header::LOCATION], "/");
    let r = client()
        .post(app.url("/credentials"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(&[("provider", "chorus")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(credential_count(&app).await, 0);

    // A tampered cookie is no session.
    let mut tampered = web.cookie.clone();
    tampered.pop();
    tampered.push(if web.cookie.ends_with('A') { 'B' } else { 'A' });
    let r = client()
        .get(app.url("/api-credentials"))
        .header(header::COOKIE, tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let r = web.post_raw("/sign-out", &[("csrf", &web.csrf)]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cleared = r.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(cleared.starts_with("latchkey_session=;") && cleared.contains("Max-Age=0"));
}

async fn every_wrong_sign_in_gets_the_same_generic_message(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // A well-formed token that no longer exists.
    let made = expect(
        app.admin(Method::POST, "/v1/api-credentials")
            .json(&json!({ "name": "gone" })),
        201,
    )
    .await;
    let gone = made["token"].as_str().unwrap().to_owned();
    let id = made["api_credential"]["id"].as_str().unwrap().to_owned();
    expect(
        app.admin(Method::DELETE, &format!("/v1/api-credentials/{id}")),
        204,
    )
    .await;
    let mut typo = app.admin_token.clone();
    let last = typo.pop().unwrap();
    typo.push(if last == 'a' { 'b' } else { 'a' });

    for (workspace, token) in [
        ("default", "not a token"),
        ("default", typo.as_str()),
        ("default", gone.as_str()),
        ("other", app.admin_token.as_str()),
        ("", ""),
    ] {
        let r = client()
            .post(app.url("/sign-in"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form(&[("workspace", workspace), ("token", token)]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{workspace}");
        assert!(!r.headers().contains_key(header::SET_COOKIE));
        let page = r.text().await.unwrap();
        assert!(
            page.contains("Sign-in failed. Check the workspace and the API credential token."),
            "{page}"
        );
        assert!(!page.contains(token) || token.is_empty() || token == "not a token");
    }
}

async fn repeated_wrong_sign_ins_are_throttled_like_the_api(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut last = StatusCode::OK;
    let mut retry_after = None;
    for _ in 0..21 {
        let r = client()
            .post(app.url("/sign-in"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form(&[("workspace", "default"), ("token", "lkt_wrong")]))
            .send()
            .await
            .unwrap();
        last = r.status();
        retry_after = r.headers().get(header::RETRY_AFTER).cloned();
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after.is_some());
    // The rightful token still signs in.
    Web::sign_in(&app, "default", &app.admin_token).await;
}

async fn forms_without_the_session_csrf_token_or_from_another_origin_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let web = Web::sign_in(&app, "default", &app.admin_token).await;
    let pairs = demo_pairs(&app, "aircall", "Aircall prod");
    let refs = as_refs(&pairs);

    let r = web.post_raw("/credentials", &refs).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "no CSRF token");
    let mut wrong = vec![("csrf", "forged")];
    wrong.extend_from_slice(&refs);
    let r = web.post_raw("/credentials", &wrong).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "a wrong CSRF token");

    // The right token, but posted from another site.
    let mut right = vec![("csrf", web.csrf.as_str())];
    right.extend_from_slice(&refs);
    let r = web
        .client
        .post(app.url("/credentials"))
        .header(header::COOKIE, &web.cookie)
        .header(header::ORIGIN, "http://evil.example")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(&right))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "another origin");
    let r = web
        .client
        .post(app.url("/credentials"))
        .header(header::COOKIE, &web.cookie)
        .header("sec-fetch-site", "cross-site")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(&right))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "a cross-site fetch");
    // Another session's token does not do either.
    let other = Web::sign_in(&app, "default", &app.admin_token).await;
    let mut foreign = vec![("csrf", other.csrf.as_str())];
    foreign.extend_from_slice(&refs);
    let r = web.post_raw("/credentials", &foreign).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "another session's token");
    // Sign-out too needs it.
    let r = web.post_raw("/sign-out", &[]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(credential_count(&app).await, 0);

    let (status, _) = web.post("/credentials", &refs).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(credential_count(&app).await, 1);

    // The page acts as the signed-in API credential: the audit log says who, from where.
    let audit = expect(
        app.admin(Method::GET, "/v1/audit?action=credential.create"),
        200,
    )
    .await;
    let event = &audit["items"][0];
    assert_eq!(event["outcome"], "success");
    assert_eq!(event["actor"]["name"], "admin");
    assert_eq!(event["target"]["name"], "Aircall prod");
    assert_eq!(event["client"], "127.0.0.1");
    assert!(event["request_id"].is_string());
}

async fn a_double_submitted_add_form_creates_one_credential(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let web = Web::sign_in(&app, "default", &app.admin_token).await;
    let (_, page) = web.get("/").await;
    let nonce = hidden(&page, "nonce");
    let mut pairs = demo_pairs(&app, "chorus", "Chorus main");
    pairs.push(("nonce".to_owned(), nonce));
    let refs = as_refs(&pairs);
    let (a, b) = tokio::join!(
        web.post("/credentials", &refs),
        web.post("/credentials", &refs)
    );
    assert_eq!(a.0, StatusCode::SEE_OTHER);
    assert_eq!(b.0, StatusCode::SEE_OTHER);
    assert_eq!(credential_count(&app).await, 1);
    // A third click, later, shows the same result.
    let (c, _) = web.post("/credentials", &refs).await;
    assert_eq!(c, StatusCode::SEE_OTHER);
    assert_eq!(credential_count(&app).await, 1);
}

async fn the_session_ends_when_its_api_credential_is_disabled_or_regenerated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let made = expect(
        app.admin(Method::POST, "/v1/api-credentials")
            .json(&json!({ "name": "web user" })),
        201,
    )
    .await;
    let token = made["token"].as_str().unwrap().to_owned();
    let id = made["api_credential"]["id"].as_str().unwrap().to_owned();

    let web = Web::sign_in(&app, "default", &token).await;
    assert_eq!(web.get("/").await.0, StatusCode::OK);
    expect(
        app.admin(Method::POST, &format!("/v1/api-credentials/{id}/disable")),
        200,
    )
    .await;
    let (status, page) = web.get("/").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(page.contains("Your session has ended"));
    let (status, _) = web.post("/credentials", &[("provider", "chorus")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    expect(
        app.admin(Method::POST, &format!("/v1/api-credentials/{id}/enable")),
        200,
    )
    .await;
    let web = Web::sign_in(&app, "default", &token).await;
    expect(
        app.admin(
            Method::POST,
            &format!("/v1/api-credentials/{id}/regenerate"),
        ),
        200,
    )
    .await;
    assert_eq!(
        web.get("/api-credentials").await.0,
        StatusCode::UNAUTHORIZED
    );
}

async fn a_stale_edit_shows_a_message_instead_of_overwriting(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app.create_demo("aircall", "Aircall prod").await;
    let id = created["id"].as_str().unwrap().to_owned();
    let web = Web::sign_in(&app, "default", &app.admin_token).await;
    let (status, page) = web.get(&format!("/credentials/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let revision = hidden(&page, "revision");

    // Someone else renames it meanwhile.
    expect(
        app.admin(Method::PATCH, &format!("/v1/credentials/{id}"))
            .json(&json!({ "name": "Renamed elsewhere" })),
        200,
    )
    .await;
    let (status, page) = web
        .post(
            &format!("/credentials/{id}/edit"),
            &[
                ("revision", &revision),
                ("name", "Mine"),
                ("description", "test"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    assert!(
        page.contains("Someone else changed this credential"),
        "{page}"
    );
    assert!(page.contains("Renamed elsewhere"));
    let now = expect(
        app.admin(Method::GET, &format!("/v1/credentials/{id}")),
        200,
    )
    .await;
    assert_eq!(now["name"], "Renamed elsewhere");

    // The same for disable with the old revision.
    let (status, _) = web
        .post(
            &format!("/credentials/{id}/disable"),
            &[("revision", &revision)],
        )
        .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
}

async fn no_page_holds_a_secret_and_a_rejection_keeps_the_typed_values(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let web = Web::sign_in(&app, "default", &app.admin_token).await;
    let mut pages = Vec::new();
    for provider in SEED_PROVIDERS {
        let pairs = demo_pairs(&app, provider, &format!("{provider} from the web"));
        let (status, page) = web.post("/credentials", &as_refs(&pairs)).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    }
    // A wrong secret: the provider's reason beside the field, the typed values kept, the secret not.
    let wrong = "lk-sandbox-aircall-0000000000000000";
    let demo = app.sandbox.demo().clone();
    let (status, page) = web
        .post(
            "/credentials",
            &[
                ("provider", "aircall"),
                ("name", "Aircall typo"),
                ("description", "kept too"),
                ("aircall.api_id", &demo.aircall_api_id),
                ("aircall.api_token", wrong),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("id=\"f-aircall-api_token-error\""), "{page}");
    assert!(page.contains("Aircall rejected"));
    assert!(page.contains("value=\"Aircall typo\""));
    assert!(page.contains("kept too"));
    assert!(page.contains(&format!("value=\"{}\"", demo.aircall_api_id)));
    assert!(!page.contains(wrong));
    pages.push(page);

    let (_, home) = web.get("/").await;
    for provider in SEED_PROVIDERS {
        assert!(home.contains(&format!("{provider} from the web")));
    }
    assert_eq!(home.matches("badge badge-active").count(), 4, "{home}");
    pages.push(home);
    let list = expect(app.admin(Method::GET, "/v1/credentials"), 200).await;
    for c in list["items"].as_array().unwrap() {
        let (status, page) = web
            .get(&format!("/credentials/{}", c["id"].as_str().unwrap()))
            .await;
        assert_eq!(status, StatusCode::OK);
        pages.push(page);
    }
    pages.push(web.get("/api-credentials").await.1);
    for page in &pages {
        for secret in app.secrets() {
            assert!(!page.contains(&secret), "a secret in a page");
        }
        assert!(!page.contains(&app.admin_token), "the token in a page");
    }
}

async fn an_unreachable_provider_offers_save_without_verifying(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let web = Web::sign_in(&app, "default", &app.admin_token).await;
    let pairs = demo_pairs(&app, "clari-copilot", "Clari main");
    app.sandbox.set_forced_status(Some(503));
    let (status, page) = web.post("/credentials", &as_refs(&pairs)).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(page.contains("could not be reached"), "{page}");
    assert!(page.contains("Save without verifying"));
    assert!(page.contains("value=\"Clari main\""));
    assert_eq!(credential_count(&app).await, 0);

    let mut skip = as_refs(&pairs);
    skip.push(("verify", "skip"));
    let (status, _) = web.post("/credentials", &skip).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    app.sandbox.set_forced_status(None);
    let (_, home) = web.get("/").await;
    assert!(home.contains("badge badge-unverified"), "{home}");

    // Verify now turns it active.
    let list = expect(app.admin(Method::GET, "/v1/credentials"), 200).await;
    let id = list["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, page) = web.post(&format!("/credentials/{id}/verify"), &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("Verified: Clari Copilot accepted the credential."),
        "{page}"
    );
    assert!(page.contains("badge badge-active"));
}

async fn the_credential_page_replaces_a_secret_verified_first_enables_and_deletes(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let created = app.create_demo("aircall", "Aircall prod").await;
    let id = created["id"].as_str().unwrap().to_owned();
    let web = Web::sign_in(&app, "default", &app.admin_token).await;
    let page = |p: &str| format!("/credentials/{id}{p}");

    // A rejected new secret: the reason beside it, the old one kept.
    let (_, detail) = web.get(&page("")).await;
    let revision = hidden(&detail, "revision");
    let wrong = "lk-sandbox-aircall-1111111111111111";
    let (status, body) = web
        .post(
            &page("/secrets"),
            &[("revision", &revision), ("aircall.api_token", wrong)],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("id=\"f-aircall-api_token-error\""), "{body}");
    assert!(!body.contains(wrong));
    let now = expect(
        app.admin(Method::GET, &format!("/v1/credentials/{id}")),
        200,
    )
    .await;
    assert_eq!(now["status"], "active");
    assert_eq!(now["revision"].to_string(), revision);

    // The right one is saved.
    let token = app.sandbox.demo().aircall_api_token.clone();
    let (status, _) = web
        .post(
            &page("/secrets"),
            &[("revision", &revision), ("aircall.api_token", &token)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, detail) = web.get(&page("?m=replaced")).await;
    assert!(detail.contains("The new secret was verified and saved."));
    assert!(!detail.contains(&token));

    // Disable, enable, then delete behind a confirmation that names it.
    let revision = hidden(&detail, "revision");
    assert_eq!(
        web.post(&page("/disable"), &[("revision", &revision)])
            .await
            .0,
        StatusCode::SEE_OTHER
    );
    let (_, detail) = web.get(&page("")).await;
    assert!(detail.contains("badge badge-disabled") && detail.contains(">Enable<"));
    let revision = hidden(&detail, "revision");
    assert_eq!(
        web.post(&page("/enable"), &[("revision", &revision)])
            .await
            .0,
        StatusCode::SEE_OTHER
    );
    let (_, detail) = web.get(&page("")).await;
    assert!(detail.contains("Delete credential “Aircall prod”?"));
    let revision = hidden(&detail, "revision");
    let (status, _) = web.post(&page("/delete"), &[("revision", &revision)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(credential_count(&app).await, 0);
    assert_eq!(web.get(&page("")).await.0, StatusCode::NOT_FOUND);
}

async fn a_member_sees_the_api_credentials_pane_but_may_not_manage_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let made = expect(
        app.admin(Method::POST, "/v1/api-credentials")
            .json(&json!({ "name": "reader", "role": "member" })),
        201,
    )
    .await;
    let web = Web::sign_in(&app, "default", made["token"].as_str().unwrap()).await;
    let (status, pane) = web.get("/api-credentials").await;
    assert_eq!(status, StatusCode::OK);
    assert!(pane.contains("reader"));
    let (status, body) = web
        .post("/api-credentials", &[("name", "sneaky"), ("role", "admin")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let list = expect(app.admin(Method::GET, "/v1/api-credentials"), 200).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
}

/// Another instance over the app's database and master key (and, if given, with the operator's
/// provider files in `providers_dir`): its address.
async fn second_instance(
    app: &TestApp,
    providers_dir: Option<std::path::PathBuf>,
) -> std::net::SocketAddr {
    let mut settings = latchkey_core::Settings {
        data_dir: app.db.data_dir(),
        database_url: app.db.database_url(),
        providers_dir,
        ..latchkey_core::Settings::default()
    };
    for id in latchkey_sandbox::PROVIDER_IDS {
        settings
            .provider_base_urls
            .insert(id.to_owned(), app.sandbox.base_url(id).unwrap());
    }
    let (second, _) = latchkey_core::Latchkey::start(&settings).await.unwrap();
    let other = latchkey_server::Application::bind(
        "127.0.0.1:0".parse().unwrap(),
        latchkey_server::AppState::new(second),
    )
    .await
    .unwrap();
    let addr = other.local_addr().unwrap();
    tokio::spawn(other.serve(std::future::pending()));
    addr
}

/// Two instances over one database and master key: a session signed in on one works on the
/// other; signing out on the first ends it on the second at once; disabling its API credential
/// on the first ends a session on the second within the authentication cache's few seconds.
async fn a_session_works_on_every_instance_and_ends_on_all_of_them(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let other_addr = second_instance(&app, None).await;

    let made = expect(
        app.admin(Method::POST, "/v1/api-credentials")
            .json(&json!({ "name": "roaming" })),
        201,
    )
    .await;
    let id = made["api_credential"]["id"].as_str().unwrap().to_owned();
    let token = made["token"].as_str().unwrap().to_owned();
    let mut web = Web::sign_in(&app, "default", &token).await;
    web.base = format!("http://{other_addr}");
    assert_eq!(
        web.get("/").await.0,
        StatusCode::OK,
        "the other instance opens the session"
    );
    let pairs = demo_pairs(&app, "chorus", "Made on the other instance");
    assert_eq!(
        web.post("/credentials", &as_refs(&pairs)).await.0,
        StatusCode::SEE_OTHER
    );
    assert_eq!(credential_count(&app).await, 1);

    // Signed out on the first instance, its cookie is refused by the second at once.
    let mut leaving = Web::sign_in(&app, "default", &token).await;
    let (status, _) = leaving.post("/sign-out", &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    leaving.base = format!("http://{other_addr}");
    let (status, page) = leaving.get("/").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "signed out everywhere");
    assert!(page.contains("Your session has ended"));
    assert_eq!(web.get("/").await.0, StatusCode::OK, "other sessions go on");

    expect(
        app.admin(Method::POST, &format!("/v1/api-credentials/{id}/disable")),
        200,
    )
    .await;
    let started = std::time::Instant::now();
    loop {
        let (status, _) = web.get("/").await;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(7),
            "the session still works on the other instance"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

async fn tiles_come_a_hundred_to_a_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for i in 0..101 {
        let mut body = app.demo_body("chorus", &format!("Chorus {i:03}"));
        body["description"] = json!("paged");
        expect(
            app.admin(Method::POST, "/v1/credentials?verify=false")
                .json(&body),
            201,
        )
        .await;
    }
    let web = Web::sign_in(&app, "default", &app.admin_token).await;
    let (_, first) = web.get("/?provider=chorus").await;
    assert_eq!(first.matches("class=\"tile status-").count(), 100);
    assert!(first.contains("Chorus 000") && !first.contains("Chorus 100"));
    let next = hidden_href(&first, "next-page");
    assert!(
        next.contains("provider=chorus") && next.contains("after="),
        "{next}"
    );
    let (_, second) = web.get(&next).await;
    assert_eq!(second.matches("class=\"tile status-").count(), 1);
    assert!(second.contains("Chorus 100") && second.contains("First page"));
    assert!(!second.contains("id=\"next-page\""));
}

/// The `href` of the link with this id.
fn hidden_href(page: &str, id: &str) -> String {
    let at = page.find(&format!("id=\"{id}\"")).expect("the link");
    let start = page[..at].rfind("href=\"").unwrap() + "href=\"".len();
    page[start..][..page[start..].find('"').unwrap()].replace("&amp;", "&")
}

async fn regenerating_ones_own_token_keeps_the_session_on_the_new_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let list = expect(app.admin(Method::GET, "/v1/api-credentials"), 200).await;
    let admin = list["items"][0].clone();
    let id = admin["id"].as_str().unwrap();
    let revision = admin["revision"].to_string();
    let mut web = Web::sign_in(&app, "default", &app.admin_token).await;
    let r = web
        .post_raw(
            &format!("/api-credentials/{id}/regenerate"),
            &[("csrf", &web.csrf), ("revision", &revision)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let renewed = r.headers()[header::SET_COOKIE].to_str().unwrap().to_owned();
    let page = r.text().await.unwrap();
    let token = hidden_value_by_id(&page, "one-time-token");
    assert!(token.starts_with("lkt_") && token != app.admin_token);
    expect(
        app.with_token(Method::GET, "/v1/credentials", &app.admin_token),
        401,
    )
    .await;

    let old_cookie = std::mem::replace(
        &mut web.cookie,
        renewed.split(';').next().unwrap().to_owned(),
    );
    assert_eq!(web.get("/").await.0, StatusCode::OK, "the session goes on");
    assert!(!renewed.contains(&token));
    web.cookie = old_cookie;
    assert_eq!(
        web.get("/").await.0,
        StatusCode::UNAUTHORIZED,
        "the old cookie is done"
    );
}

/// The `value` of the input with this id.
fn hidden_value_by_id(page: &str, id: &str) -> String {
    let at = page.find(&format!("id=\"{id}\"")).expect("the input");
    let start = at + page[at..].find("value=\"").unwrap() + "value=\"".len();
    page[start..][..page[start..].find('"').unwrap()].to_owned()
}

async fn signing_out_ends_the_session_on_the_server_so_a_copied_cookie_is_refused(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    // A record of a session that has expired since: the next sign-out prunes it.
    let now = latchkey_core::Timestamp::now().millis();
    let repo = app.lk.repository().clone();
    repo.revoke_session("long-gone", now - 1_000, now)
        .await
        .unwrap();
    assert!(repo.session_revoked("long-gone").await.unwrap());

    let web = Web::sign_in(&app, "default", &app.admin_token).await;
    let other = Web::sign_in(&app, "default", &app.admin_token).await;
    let copied = web.cookie.clone();
    let r = web.post_raw("/sign-out", &[("csrf", &web.csrf)]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[header::LOCATION], "/");
    assert!(
        r.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert!(
        !repo.session_revoked("long-gone").await.unwrap(),
        "expired records are pruned"
    );

    // The copied cookie, replayed: the sign-in page, and every form refused.
    let replay = Web {
        client: client(),
        base: web.base.clone(),
        cookie: copied,
        csrf: web.csrf.clone(),
    };
    for path in ["/", "/api-credentials"] {
        let (status, page) = replay.get(path).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(page.contains("Your session has ended. Sign in again."));
        assert!(page.contains("id=\"token\""), "the sign-in form");
    }
    let pairs = demo_pairs(&app, "chorus", "After sign-out");
    let (status, _) = replay.post("/credentials", &as_refs(&pairs)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = replay
        .post("/api-credentials", &[("name", "after sign-out")])
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(credential_count(&app).await, 0);
    let list = expect(app.admin(Method::GET, "/v1/api-credentials"), 200).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    // Another session of the same API credential goes on; a new sign-in works.
    assert_eq!(other.get("/").await.0, StatusCode::OK);
    let again = Web::sign_in(&app, "default", &app.admin_token).await;
    assert_eq!(again.get("/").await.0, StatusCode::OK);
}

/// What the page's forms could change: every credential and API credential as the REST API
/// shows them (less the API credentials' last use, which reading them updates).
async fn snapshot(app: &TestApp) -> (serde_json::Value, serde_json::Value) {
    let credentials = expect(app.admin(Method::GET, "/v1/credentials"), 200).await;
    let mut api = expect(app.admin(Method::GET, "/v1/api-credentials"), 200).await;
    for a in api["items"].as_array_mut().unwrap() {
        a.as_object_mut().unwrap().remove("last_used_at");
    }
    (credentials, api)
}

/// Every form of the page — the credential page's, the API Credentials pane's, sign-out — posted
/// without the session's CSRF token, with the right token from another origin, and with it from
/// a cross-site fetch: each refused, nothing changed.
async fn every_form_is_refused_without_the_csrf_token_or_from_another_origin(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app.create_demo("aircall", "Aircall prod").await;
    let id = created["id"].as_str().unwrap().to_owned();
    let off = app.create_demo("chorus", "Chorus off").await;
    let off_id = off["id"].as_str().unwrap().to_owned();
    expect(
        app.admin(Method::POST, &format!("/v1/credentials/{off_id}/disable")),
        200,
    )
    .await;
    let made = expect(
        app.admin(Method::POST, "/v1/api-credentials")
            .json(&json!({ "name": "Nightly export" })),
        201,
    )
    .await;
    let api_id = made["api_credential"]["id"].as_str().unwrap().to_owned();
    let api_token = made["token"].as_str().unwrap().to_owned();
    let stopped = expect(
        app.admin(Method::POST, "/v1/api-credentials")
            .json(&json!({ "name": "Stopped" })),
        201,
    )
    .await;
    let stopped_id = stopped["api_credential"]["id"].as_str().unwrap().to_owned();
    expect(
        app.admin(
            Method::POST,
            &format!("/v1/api-credentials/{stopped_id}/disable"),
        ),
        200,
    )
    .await;

    let web = Web::sign_in(&app, "default", &app.admin_token).await;
    let (_, detail) = web.get(&format!("/credentials/{id}")).await;
    let rev = hidden(&detail, "revision");
    let (_, detail) = web.get(&format!("/credentials/{off_id}")).await;
    let off_rev = hidden(&detail, "revision");
    let api_rev = made["api_credential"]["revision"].to_string();
    let stopped_rev = (stopped["api_credential"]["revision"].as_i64().unwrap() + 1).to_string();
    let new_token = app.sandbox.demo().aircall_api_token.clone();
    let c = |action: &str| format!("/credentials/{id}/{action}");
    let a = |action: &str| format!("/api-credentials/{api_id}/{action}");
    let forms: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            c("edit"),
            vec![
                ("revision", &rev),
                ("name", "Renamed"),
                ("description", "changed"),
            ],
        ),
        (
            c("secrets"),
            vec![("revision", &rev), ("aircall.api_token", &new_token)],
        ),
        (c("verify"), vec![]),
        (c("disable"), vec![("revision", &rev)]),
        (
            format!("/credentials/{off_id}/enable"),
            vec![("revision", &off_rev)],
        ),
        (c("delete"), vec![("revision", &rev)]),
        (
            "/api-credentials".to_owned(),
            vec![("name", "Sneaky"), ("role", "admin")],
        ),
        (
            a("rename"),
            vec![("revision", &api_rev), ("name", "Renamed")],
        ),
        (a("regenerate"), vec![("revision", &api_rev)]),
        (a("disable"), vec![("revision", &api_rev)]),
        (
            format!("/api-credentials/{stopped_id}/enable"),
            vec![("revision", &stopped_rev)],
        ),
        (a("delete"), vec![("revision", &api_rev)]),
        ("/sign-out".to_owned(), vec![]),
    ];
    let before = snapshot(&app).await;
    for (path, pairs) in &forms {
        let r = web.post_raw(path, pairs).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path} without a token");
        let mut with_token = vec![("csrf", web.csrf.as_str())];
        with_token.extend_from_slice(pairs);
        for (name, value) in [
            (header::ORIGIN.as_str(), "http://evil.example"),
            ("sec-fetch-site", "cross-site"),
            ("sec-fetch-site", "same-site"),
        ] {
            let r = web
                .client
                .post(app.url(path))
                .header(header::COOKIE, &web.cookie)
                .header(name, value)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(form(&with_token))
                .send()
                .await
                .unwrap();
            assert_eq!(
                r.status(),
                StatusCode::FORBIDDEN,
                "{path} with {name}: {value}"
            );
            assert!(!r.headers().contains_key(header::SET_COOKIE), "{path}");
            let page = r.text().await.unwrap();
            assert!(page.contains("Form refused"), "{path}");
            assert!(!page.contains("lkt_"), "{path}: no token in the answer");
        }
    }
    assert_eq!(snapshot(&app).await, before, "nothing changed");
    let audit = expect(app.admin(Method::GET, "/v1/audit?limit=200"), 200).await;
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["outcome"] == "success"),
        "no operation was even tried: {audit}"
    );
    expect(
        app.with_token(Method::GET, "/v1/credentials", &api_token),
        200,
    )
    .await;
    assert_eq!(web.get("/").await.0, StatusCode::OK, "still signed in");

    // With the token, from this page, the same forms work (spot checks).
    let (status, _) = web.post(&a("disable"), &[("revision", &api_rev)]).await;
    assert_eq!(status, StatusCode::OK);
    expect(
        app.with_token(Method::GET, "/v1/credentials", &api_token),
        401,
    )
    .await;
    let (status, _) = web.post(&c("disable"), &[("revision", &rev)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _) = web.post("/sign-out", &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}

/// The sign-in form has no session yet, so no CSRF token: a sign-in posted from another origin
/// (login CSRF: signing the victim in as the attacker) is refused, and no cookie is set.
async fn a_sign_in_from_another_origin_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (name, value) in [
        (header::ORIGIN.as_str(), "http://evil.example"),
        (header::ORIGIN.as_str(), "null"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let r = client()
            .post(app.url("/sign-in"))
            .header(name, value)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form(&[
                ("workspace", "default"),
                ("token", &app.admin_token),
            ]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{name}: {value}");
        assert!(!r.headers().contains_key(header::SET_COOKIE));
        let page = r.text().await.unwrap();
        assert!(page.contains("Form refused"));
        assert!(!page.contains(&app.admin_token));
    }
    // From the page itself, as a browser says it, the same sign-in works.
    let r = client()
        .post(app.url("/sign-in"))
        .header("sec-fetch-site", "same-origin")
        .header(header::ORIGIN, format!("http://{}", app.addr))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(&[
            ("workspace", "default"),
            ("token", &app.admin_token),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(r.headers().contains_key(header::SET_COOKIE));
}

/// Text as maud writes it into a page.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Where `needle` is in `page`, after `from`.
fn at(page: &str, from: usize, needle: &str) -> usize {
    from + page[from..]
        .find(needle)
        .unwrap_or_else(|| panic!("{needle} not in the page after {from}"))
}

/// The Add New Credential overlay: the seeds' description hint; the provider picker with the four
/// seed providers first and then the others (an operator's provider included); each provider's
/// fields with their labels and help text in catalog order, and its documentation link.
async fn the_overlay_shows_the_hint_seed_providers_first_and_each_field_in_catalog_order(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("acme.toml"),
        r#"id = "acme"
name = "Acme CRM"
description = "An operator's own provider."
docs_url = "https://docs.acme.example/api"
base_url = "https://api.acme.example"

[[fields]]
key = "api_key"
label = "Acme API Key"
help = "In Acme go to Admin > API and copy the key."
secret = true

[auth]
type = "bearer"
token = "{api_key}"

[verify]
method = "GET"
path = "/me"
valid = [200]
rejected = [401]
"#,
    )
    .unwrap();
    let addr = second_instance(&app, Some(dir.path().to_path_buf())).await;
    let mut web = Web::sign_in(&app, "default", &app.admin_token).await;
    web.base = format!("http://{addr}");
    let (status, page) = web.get("/?add=1").await;
    assert_eq!(status, StatusCode::OK);
    let overlay = &page[page.find("id=\"add-dialog\"").unwrap()..];
    assert!(overlay.contains(" open"), "?add=1 opens the overlay");

    // The seeds' hint, tied to the description field.
    assert!(overlay.contains("aria-describedby=\"add-description-help\""));
    let hint = at(overlay, 0, "id=\"add-description-help\"");
    assert!(
        overlay[hint..].starts_with(
            "id=\"add-description-help\">Resource descriptions are recommended but are not required."
        ),
        "{}",
        &overlay[hint..hint + 200]
    );
    assert!(overlay.contains(
        "help the owner and other users efficiently understand and utilize the resource."
    ));

    // The picker: the four seed providers first, then the others.
    let picker = &overlay[at(overlay, 0, "id=\"add-provider\"")..];
    let picker = &picker[..picker.find("</select>").unwrap()];
    let ids: Vec<&str> = picker
        .split("<option value=\"")
        .skip(1)
        .map(|o| &o[..o.find('"').unwrap()])
        .collect();
    assert_eq!(
        ids,
        [
            "",
            "chorus",
            "aircall",
            "ccai-platform",
            "clari-copilot",
            "custom",
            "acme"
        ],
        "{picker}"
    );

    // Each provider's fields: label, then help text, in catalog order; and its documentation link.
    let catalog = latchkey_catalog::Catalog::from_files(&[latchkey_catalog::ProviderFile {
        path: "acme.toml".into(),
        text: std::fs::read_to_string(dir.path().join("acme.toml")).unwrap(),
    }])
    .unwrap();
    for p in catalog.providers() {
        let id = &p.id;
        let start = at(overlay, 0, &format!("data-provider=\"{id}\""));
        let end = start + overlay[start..].find("</fieldset>").unwrap();
        let fieldset = &overlay[start..end];
        let mut pos = 0;
        for f in &p.fields {
            let (key, label, help) = (&f.key, &f.label, &f.help);
            let label_at = at(
                fieldset,
                pos,
                &format!("<label for=\"f-{id}-{key}\">{}", escaped(label)),
            );
            let help_at = at(
                fieldset,
                label_at,
                &format!("id=\"f-{id}-{key}-help\">{}</p>", escaped(help)),
            );
            assert!(
                fieldset[label_at..help_at]
                    .contains(&format!("aria-describedby=\"f-{id}-{key}-help\"")),
                "{id}.{key}: the input is described by its help"
            );
            pos = help_at;
        }
        if let Some(docs) = &p.docs_url {
            at(fieldset, pos, &format!("href=\"{}\"", escaped(docs)));
        }
    }
    assert!(
        catalog.providers()[..4]
            .iter()
            .all(|p| p.docs_url.is_some()),
        "every seed provider has its documentation link"
    );
    assert_eq!(catalog.providers().len(), ids.len() - 1);
}

/// The tile of the credential `name` in a page of tiles.
fn tile_of<'a>(page: &'a str, name: &str) -> &'a str {
    let start = page
        .find(&format!("data-credential=\"{name}\""))
        .unwrap_or_else(|| panic!("no tile {name}"));
    let start = page[..start].rfind("<a ").unwrap();
    &page[start..][..page[start..].find("</a>").unwrap()]
}

/// A tile shows last verified, the verified identity and last used; an invalid credential (made
/// invalid by a verification, or by a proxied request the provider rejects) shows why; the Add
/// Credential tile comes first.
async fn tiles_show_verification_identity_last_use_and_why_a_credential_is_invalid(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let used = app.create_demo("chorus", "Chorus used").await;
    let identity = used["identity"]
        .as_str()
        .expect("chorus says who")
        .to_owned();
    expect(
        app.admin(Method::GET, "/v1/proxy/Chorus%20used/api/v1/users/me"),
        200,
    )
    .await;
    app.create_demo("clari-copilot", "Clari fresh").await;
    // Saved without verifying, with a secret the provider does not take; then Verify now.
    let mut wrong = app.demo_body("aircall", "Aircall wrong");
    wrong["fields"]["api_token"] = json!("lk-sandbox-aircall-0000000000000000");
    let wrong = expect(
        app.admin(Method::POST, "/v1/credentials?verify=false")
            .json(&wrong),
        201,
    )
    .await;
    let wrong_id = wrong["id"].as_str().unwrap().to_owned();
    // Active until the provider rejects a proxied request (its secret revoked there, say).
    let revoked = app.create_demo("ccai-platform", "CCAI revoked").await;

    let web = Web::sign_in(&app, "default", &app.admin_token).await;
    let (status, page) = web
        .post(&format!("/credentials/{wrong_id}/verify"), &[])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("badge badge-invalid"), "{page}");
    app.sandbox.set_forced_status(Some(401));
    let r = app
        .admin(
            Method::GET,
            "/v1/proxy/CCAI%20revoked/manager/api/v1/settings/organization",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    app.sandbox.set_forced_status(None);

    let (_, home) = web.get("/").await;
    let tiles = &home[home.find("<ul class=\"tiles\"").unwrap()..];
    let first = &tiles[..tiles.find("</li>").unwrap()];
    assert!(first.contains("id=\"add-credential\"") && first.contains("Add Credential"));
    assert!(!first.contains("class=\"tile status-"));

    let t = tile_of(&home, "Chorus used");
    assert!(t.contains("badge badge-active"), "{t}");
    let verified = at(t, 0, "<dt>Last verified</dt><dd><time datetime=");
    let id_at = at(t, verified, "<dt>Identity</dt><dd>");
    assert!(t[id_at..].starts_with(&format!("<dt>Identity</dt><dd>{}</dd>", escaped(&identity))));
    at(t, id_at, "<dt>Last used</dt><dd><time datetime=");
    assert!(!t.contains("class=\"reason\""));

    let t = tile_of(&home, "Clari fresh");
    assert!(t.contains("<dt>Last verified</dt><dd><time"), "{t}");
    assert!(t.contains("<dt>Last used</dt><dd>never</dd>"), "{t}");

    for name in ["Aircall wrong", "CCAI revoked"] {
        let now = expect(
            app.admin(Method::GET, &format!("/v1/credentials/{}", urlencode(name))),
            200,
        )
        .await;
        assert_eq!(now["status"], "invalid", "{name}: {now}");
        let reason = now["status_reason"].as_str().unwrap();
        assert!(!reason.is_empty());
        let t = tile_of(&home, name);
        assert!(t.contains("badge badge-invalid"), "{t}");
        assert!(
            t.contains(&format!("<p class=\"reason\">{}</p>", escaped(reason))),
            "{name}: {reason} in {t}"
        );
    }
    assert_eq!(revoked["status"], "active");
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// The credential page saves an edited description (the name unchanged), a new name and
/// description together, and an emptied description.
async fn the_credential_page_saves_an_edited_description(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app.create_demo("aircall", "Aircall prod").await;
    let id = created["id"].as_str().unwrap().to_owned();
    let web = Web::sign_in(&app, "default", &app.admin_token).await;
    let path = format!("/credentials/{id}");
    let rest = || app.admin(Method::GET, &format!("/v1/credentials/{id}"));

    for (name, description) in [
        ("Aircall prod", "Calls of the support team, pulled nightly."),
        ("Aircall support", "Support team & <night> pulls."),
        ("Aircall support", ""),
    ] {
        let (_, detail) = web.get(&path).await;
        let revision = hidden(&detail, "revision");
        let r = web
            .post_raw(
                &format!("{path}/edit"),
                &[
                    ("csrf", &web.csrf),
                    ("revision", &revision),
                    ("name", name),
                    ("description", description),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{description}");
        assert_eq!(r.headers()[header::LOCATION], format!("{path}?m=saved"));
        let now = expect(rest(), 200).await;
        assert_eq!(now["name"], name);
        assert_eq!(now["description"], description);
        let (_, detail) = web.get(&format!("{path}?m=saved")).await;
        assert!(detail.contains("Changes saved."));
        assert!(
            detail.contains(&format!(
                "aria-describedby=\"edit-description-help\">{}</textarea>",
                escaped(description)
            )),
            "{detail}"
        );
        let (_, home) = web.get("/").await;
        let t = tile_of(&home, name);
        if description.is_empty() {
            assert!(!t.contains("class=\"desc\""));
        } else {
            assert!(t.contains(&format!("<p class=\"desc\">{}</p>", escaped(description))));
        }
    }
}

/// The API Credentials pane's table: name, the token's hint, role, created, last used, enabled.
async fn the_api_credentials_table_shows_hint_created_and_last_used(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let made = expect(
        app.admin(Method::POST, "/v1/api-credentials")
            .json(&json!({ "name": "Nightly export" })),
        201,
    )
    .await;
    let token = made["token"].as_str().unwrap().to_owned();
    let unused = expect(
        app.admin(Method::POST, "/v1/api-credentials")
            .json(&json!({ "name": "Never used", "role": "member" })),
        201,
    )
    .await;
    expect(app.with_token(Method::GET, "/v1/credentials", &token), 200).await;
    let web = Web::sign_in(&app, "default", &app.admin_token).await;
    let (_, pane) = web.get("/api-credentials").await;
    assert!(!pane.contains(&token));
    let row = |name: &str| {
        let start = pane
            .find(&format!("data-api-credential=\"{name}\""))
            .unwrap_or_else(|| panic!("no row {name}"));
        pane[start..][..pane[start..].find("</tr>").unwrap()].to_owned()
    };
    let used = row("Nightly export");
    let hint = made["api_credential"]["hint"].as_str().unwrap();
    assert!(hint.starts_with("lkt_") && hint.ends_with(&token[token.len() - 4..]));
    for needle in [
        "<th scope=\"row\">Nightly export</th>".to_owned(),
        format!("<td data-label=\"Token\"><code>{hint}</code></td>"),
        "<td data-label=\"Role\">member</td>".to_owned(),
        "<td data-label=\"Created\"><time datetime=".to_owned(),
        "<td data-label=\"Last used\"><time datetime=".to_owned(),
        "aria-checked=\"true\"".to_owned(),
    ] {
        assert!(used.contains(&needle), "{needle} in {used}");
    }
    let never = row("Never used");
    assert!(never.contains(&format!(
        "<code>{}</code>",
        unused["api_credential"]["hint"].as_str().unwrap()
    )));
    assert!(never.contains("<td data-label=\"Created\"><time datetime="));
    assert!(
        never.contains("<td data-label=\"Last used\">never</td>"),
        "{never}"
    );
    for header in ["Name", "Token", "Role", "Created", "Last used", "Enabled"] {
        assert!(pane.contains(&format!("<th scope=\"col\">{header}</th>")));
    }
}

// ----- browser tests -----
// The main flow runs against the real `latchkey serve --sandbox` process
// (crates/cli/tests/web_browser.rs); here, in process, what needs the sandbox under the test's
// control (a provider that cannot be reached) and the keyboard.

async fn browser_sign_in(b: &Browser, app: &TestApp) {
    b.goto(&app.url("/")).await;
    b.type_into("#workspace", "default").await;
    b.type_into("#token", &app.admin_token).await;
    b.click_css(".sign-in button[type=submit]").await;
    b.find("#add-credential").await;
}

async fn fill_demo(b: &Browser, app: &TestApp, provider: &str, name: &str) {
    b.type_into("#add-name", name).await;
    b.type_into("#add-description", "Added in the browser test")
        .await;
    for (key, value, _) in app.sandbox.demo().fields(provider) {
        b.type_into(&format!("#f-{provider}-{key}"), &value).await;
    }
}

/// Focus the element `css` (as Tab would), with a script.
async fn focus(b: &Browser, css: &str) {
    b.run(
        "var e = document.querySelector(arguments[0]); e.focus(); return document.activeElement === e;",
        vec![json!(css)],
    )
    .await;
}

/// Keyboard only: the Add New Credential overlay and every dialog of the API Credentials pane
/// (add, the one-time token, edit, the refresh warning, delete) open with Enter, keep the focus
/// inside, close with Escape and give the focus back; an API credential is added, renamed and
/// deleted with the keyboard alone. And, with the provider unreachable, the overlay offers Save
/// without verifying.
#[tokio::test]
async fn browser_keyboard_only_dialogs_and_save_without_verifying() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let b = Browser::start(1280, 900).await;
    let mut sources = Sources::default();
    browser_sign_in(&b, &app).await;

    // The overlay: Enter on the Add Credential tile.
    focus(&b, "#add-credential").await;
    b.press(ENTER).await;
    b.assert_focus_trapped_and_escape_closes("add-dialog", 9, "#add-credential")
        .await;

    // The provider cannot be reached: the overlay offers Save without verifying.
    app.sandbox.set_forced_status(Some(503));
    b.open_add_overlay("clari-copilot").await;
    fill_demo(&b, &app, "clari-copilot", "Clari while offline").await;
    b.click_css("#add-save").await;
    b.find("#save-unverified").await;
    b.wait_until(
        "the overlay again",
        "return document.getElementById('add-dialog').open;",
    )
    .await;
    assert!(
        b.text("#f-clari-copilot-api_password-error")
            .await
            .contains("could not be reached")
    );
    assert_eq!(
        b.property("#add-name", "value").await,
        json!("Clari while offline")
    );
    assert_eq!(
        b.focused().await,
        "f-clari-copilot-api_password",
        "the secret to type again has the focus"
    );
    b.screenshot("11-provider-unreachable.png").await;
    sources.keep(&b, "unreachable").await;
    let password = app.sandbox.demo().clari_api_password.clone();
    b.type_into("#f-clari-copilot-api_password", &password)
        .await;
    b.click_css("#save-unverified").await;
    b.wait_text(
        &format!("{} .badge", tile("Clari while offline")),
        "unverified",
    )
    .await;
    app.sandbox.set_forced_status(None);
    assert_eq!(credential_count(&app).await, 1);

    // The credential's delete confirmation: the focus starts on Cancel, not on Delete.
    b.click_css(&tile("Clari while offline")).await;
    focus(&b, "#delete").await;
    b.press(ENTER).await;
    b.wait_until(
        "the delete dialog",
        "return document.getElementById('delete-dialog').open;",
    )
    .await;
    assert_eq!(
        b.run("return document.activeElement.textContent;", vec![])
            .await,
        json!("Cancel")
    );
    b.assert_focus_trapped_and_escape_closes("delete-dialog", 3, "#delete")
        .await;

    // + Add API Credential with the keyboard alone: Enter opens the dialog with the focus on the
    // name, the name typed, Enter creates it; the one-time token's dialog has the focus on Done.
    b.goto(&app.url("/api-credentials")).await;
    b.find("#add-api-credential").await;
    focus(&b, "#add-api-credential").await;
    b.press(ENTER).await;
    b.assert_focus_trapped_and_escape_closes("add-api-dialog", 4, "#add-api-credential")
        .await;
    b.press(ENTER).await;
    b.wait_until(
        "the add dialog",
        "return document.getElementById('add-api-dialog').open;",
    )
    .await;
    assert_eq!(b.focused().await, "add-api-name");
    b.press("Keyboard job").await;
    b.press(ENTER).await;
    b.find("#token-dialog").await;
    b.wait_until(
        "the token dialog",
        "var d = document.getElementById('token-dialog'); return d.open && d.contains(document.activeElement) && document.activeElement.textContent === 'Done';",
    )
    .await;
    let token = b
        .property("#one-time-token", "value")
        .await
        .as_str()
        .unwrap()
        .to_owned();
    sources.keep(&b, "token").await;
    expect(app.with_token(Method::GET, "/v1/credentials", &token), 200).await;
    let list = expect(app.admin(Method::GET, "/v1/api-credentials"), 200).await;
    let id = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "Keyboard job")
        .expect("the new API credential")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    b.assert_focus_trapped_and_escape_closes("token-dialog", 3, "body")
        .await;

    // Edit, Refresh (its warning) and Delete: each opens with Enter, keeps the focus, closes
    // with Escape back to its button.
    for (button, dialog) in [
        ("data-edit", format!("edit-{id}")),
        ("data-refresh", format!("refresh-{id}")),
        ("data-delete", format!("delete-{id}")),
    ] {
        let css = format!("button[{button}='Keyboard job']");
        focus(&b, &css).await;
        b.press(ENTER).await;
        b.assert_focus_trapped_and_escape_closes(&dialog, 3, &css)
            .await;
    }
    // Rename with the keyboard: the name field has the focus; Enter saves.
    focus(&b, "button[data-edit='Keyboard job']").await;
    b.press(ENTER).await;
    b.wait_until(
        "the edit dialog",
        &format!("return document.getElementById('edit-{id}').open;"),
    )
    .await;
    assert_eq!(b.focused().await, format!("edit-name-{id}"));
    // Control+A selects the name, the new one replaces it.
    b.press("\u{E009}a\u{E000}Keyboard job renamed").await;
    b.press(ENTER).await;
    b.find("tr[data-api-credential='Keyboard job renamed']")
        .await;
    // Delete with the keyboard: Enter opens the confirmation on Cancel, Tab goes to Delete,
    // Enter deletes.
    focus(&b, "button[data-delete='Keyboard job renamed']").await;
    b.press(ENTER).await;
    b.wait_until(
        "the delete dialog",
        &format!("return document.getElementById('delete-{id}').open;"),
    )
    .await;
    b.press(TAB).await;
    assert_eq!(
        b.run("return document.activeElement.textContent;", vec![])
            .await,
        json!("Delete")
    );
    b.press(ENTER).await;
    b.wait_text(".notice-ok", "deleted").await;
    assert!(
        b.try_find("tr[data-api-credential='Keyboard job renamed']")
            .await
            .is_none()
    );
    expect(app.with_token(Method::GET, "/v1/credentials", &token), 401).await;
    sources.keep(&b, "deleted").await;

    let mut secrets = app.secrets();
    secrets.push(app.admin_token.clone());
    sources.assert_free_of(&secrets, &[]);
    sources.assert_free_of(std::slice::from_ref(&token), &["token"]);
}

latchkey_testdb::backend_tests!(
    pages_carry_security_headers_and_no_inline_script_or_style,
    sign_in_sets_a_sealed_http_only_strict_expiring_cookie_and_sign_out_clears_it,
    every_wrong_sign_in_gets_the_same_generic_message,
    repeated_wrong_sign_ins_are_throttled_like_the_api,
    forms_without_the_session_csrf_token_or_from_another_origin_are_refused,
    a_double_submitted_add_form_creates_one_credential,
    the_session_ends_when_its_api_credential_is_disabled_or_regenerated,
    a_stale_edit_shows_a_message_instead_of_overwriting,
    no_page_holds_a_secret_and_a_rejection_keeps_the_typed_values,
    an_unreachable_provider_offers_save_without_verifying,
    the_credential_page_replaces_a_secret_verified_first_enables_and_deletes,
    a_member_sees_the_api_credentials_pane_but_may_not_manage_it,
    a_session_works_on_every_instance_and_ends_on_all_of_them,
    tiles_come_a_hundred_to_a_page,
    regenerating_ones_own_token_keeps_the_session_on_the_new_token,
    signing_out_ends_the_session_on_the_server_so_a_copied_cookie_is_refused,
    every_form_is_refused_without_the_csrf_token_or_from_another_origin,
    a_sign_in_from_another_origin_is_refused,
    the_overlay_shows_the_hint_seed_providers_first_and_each_field_in_catalog_order,
    tiles_show_verification_identity_last_use_and_why_a_credential_is_invalid,
    the_credential_page_saves_an_edited_description,
    the_api_credentials_table_shows_hint_created_and_last_used,
);
