//! The web page of the real `latchkey serve --sandbox` process, in headless Chromium: sign in with
//! the admin token it prints; add a credential per seed provider with the demo values it prints
//! and see each tile go `active`; a wrong secret shows the provider's reason inline with the typed
//! name kept; rename, describe and disable a credential; add an API credential, copy its token,
//! use it against the REST API, regenerate it behind the warning (the old token refused), turn it
//! off and on again, delete it behind the confirmation; sign out (the old cookie refused). Every
//! screen is saved under `target/screenshots/`; no secret used appears in any page source or in
//! the debug log.

#[path = "../../server/tests/common/browser.rs"]
#[allow(dead_code)]
mod browser;

mod common;

use browser::{Browser, ESCAPE, Sources, tile};
use common::serve::Served;
use serde_json::{Value, json};

/// `latchkey serve --sandbox` on `data_dir`, at the debug log level.
fn start(data_dir: &std::path::Path) -> Served {
    let mut cmd = common::latchkey(data_dir);
    cmd.args(["serve", "--sandbox", "--listen", "127.0.0.1:0"])
        .env("LATCHKEY_LOG", "debug");
    Served::start(cmd)
}

/// The third-party secrets among the demo values `server` printed.
fn demo_secrets(server: &Served) -> Vec<String> {
    server
        .demo
        .iter()
        .flat_map(|(_, fields)| fields)
        .filter(|(k, _)| k == "api_token" || k == "api_password")
        .map(|(_, v)| v.clone())
        .collect()
}

/// The REST API's answer status to `GET /v1/credentials` with `token`.
async fn api_status(server: &Served, token: &str) -> u16 {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(server.url("/v1/credentials"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn credential_count(server: &Served) -> usize {
    let body: Value = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(server.url("/v1/credentials"))
        .bearer_auth(server.admin.as_deref().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["items"].as_array().unwrap().len()
}

async fn wait_closed(b: &Browser, dialog: &str) {
    b.wait_until(
        &format!("{dialog} closed"),
        &format!("var d = document.getElementById('{dialog}'); return !d || !d.open;"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_page_of_serve_sandbox_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"));
    let admin = server
        .admin
        .clone()
        .expect("a first start prints the admin token");
    assert_eq!(
        server.demo.len(),
        4,
        "the demo values of the seed providers"
    );
    let catalog = latchkey_catalog::Catalog::builtin().unwrap();
    let b = Browser::start(1280, 900).await;
    let mut sources = Sources::default();
    let mut secrets = demo_secrets(&server);
    secrets.push(admin.clone());

    // A wrong token: one generic message, the workspace kept, the token field empty.
    b.goto(&server.url("/")).await;
    b.type_into("#token", "lkt_not_the_right_token").await;
    b.click_css(".sign-in button[type=submit]").await;
    b.wait_text(".notice-error", "Sign-in failed.").await;
    assert_eq!(b.property("#workspace", "value").await, json!("default"));
    assert_eq!(b.property("#token", "value").await, json!(""));
    b.screenshot("00-sign-in-failed.png").await;
    sources.keep(&b, "sign-in").await;

    // Sign in with the token serve printed.
    b.type_into("#workspace", "default").await;
    b.type_into("#token", &admin).await;
    b.click_css(".sign-in button[type=submit]").await;
    b.find("#add-credential").await;
    sources.keep(&b, "empty").await;

    // One credential per seed provider, with the demo values serve printed.
    for (provider, fields) in &server.demo {
        let name = format!("{provider} demo");
        b.open_add_overlay(provider).await;
        // The chosen provider's documentation link, and only its, is shown.
        let docs = catalog.get(provider).unwrap().docs_url.clone().unwrap();
        let shown = b
            .run(
                "return Array.prototype.filter.call(document.querySelectorAll('#add-dialog p.docs a'), function (a) { return a.offsetParent !== null; }).map(function (a) { return a.href; });",
                vec![],
            )
            .await;
        assert_eq!(
            shown.as_array().unwrap().len(),
            1,
            "{provider}: one link shown"
        );
        assert!(
            shown[0].as_str().unwrap().starts_with(docs.as_str()),
            "{provider}: {shown}"
        );
        b.type_into("#add-name", &name).await;
        b.type_into("#add-description", "Added in the browser test")
            .await;
        for (key, value) in fields {
            b.type_into(&format!("#f-{provider}-{key}"), value).await;
        }
        if provider == "aircall" {
            // Secrets are masked, and the toggle shows them.
            let secret = "#f-aircall-api_token";
            let toggle = "button[data-toggle-secret='f-aircall-api_token']";
            assert_eq!(b.property(secret, "type").await, json!("password"));
            b.screenshot("02-add-credential-overlay.png").await;
            b.click_css(toggle).await;
            assert_eq!(b.property(secret, "type").await, json!("text"));
            b.click_css(toggle).await;
            assert_eq!(b.property(secret, "type").await, json!("password"));
        }
        // A double click on Save: one credential.
        b.run(
            "var s = document.getElementById('add-save'); s.click(); s.click(); return true;",
            vec![],
        )
        .await;
        b.wait_text(&format!("{} .badge", tile(&name)), "active")
            .await;
        sources.keep(&b, &name).await;
    }
    assert_eq!(credential_count(&server).await, 4);
    let first_tile = b
        .run(
            "return document.querySelector('ul.tiles > li a').id;",
            vec![],
        )
        .await;
    assert_eq!(
        first_tile,
        json!("add-credential"),
        "Add Credential is the first tile"
    );

    // A wrong secret: the provider's reason inline, the typed name still there, the secret not.
    let wrong = "lk-sandbox-chorus-00000000000000000000".to_owned();
    secrets.push(wrong.clone());
    b.open_add_overlay("chorus").await;
    b.type_into("#add-name", "Chorus with a typo").await;
    b.type_into("#f-chorus-api_token", &wrong).await;
    b.click_css("#add-save").await;
    b.find("#f-chorus-api_token-error").await;
    b.wait_until(
        "the overlay again",
        "return document.getElementById('add-dialog').open;",
    )
    .await;
    assert!(
        b.text("#f-chorus-api_token-error")
            .await
            .contains("rejected")
    );
    assert_eq!(
        b.property("#add-name", "value").await,
        json!("Chorus with a typo")
    );
    assert_eq!(b.property("#add-provider", "value").await, json!("chorus"));
    assert_eq!(b.property("#f-chorus-api_token", "value").await, json!(""));
    b.screenshot("03-rejection-inline.png").await;
    sources.keep(&b, "rejection").await;
    b.press(ESCAPE).await;
    wait_closed(&b, "add-dialog").await;
    assert_eq!(credential_count(&server).await, 4);

    // Rename, describe and disable a credential from its page.
    b.click_css(&tile("aircall demo")).await;
    b.type_into("#edit-name", "Aircall production").await;
    b.type_into("#edit-description", "The support line's calls")
        .await;
    b.click_css("#edit-save").await;
    b.wait_text(".notice-ok", "Changes saved.").await;
    assert_eq!(b.text("#credential-title").await, "Aircall production");
    assert_eq!(
        b.property("#edit-description", "value").await,
        json!("The support line's calls")
    );
    b.click_css("#toggle-enabled").await;
    b.wait_text(".sub .badge", "disabled").await;
    b.screenshot("10-credential-page.png").await;
    sources.keep(&b, "disabled").await;
    // Delete asks first, naming the credential; Escape keeps it.
    b.click_css("#delete").await;
    b.wait_until(
        "the delete dialog",
        "return document.getElementById('delete-dialog').open;",
    )
    .await;
    assert!(b.text("#delete-title").await.contains("Aircall production"));
    b.press(ESCAPE).await;
    wait_closed(&b, "delete-dialog").await;

    // The tiles, filtered, and at a phone's width.
    b.goto(&server.url("/")).await;
    b.wait_text(
        &format!("{} .badge", tile("Aircall production")),
        "disabled",
    )
    .await;
    assert!(
        b.text(&format!("{} .desc", tile("Aircall production")))
            .await
            .contains("The support line's calls")
    );
    b.screenshot("01-credential-tiles.png").await;
    b.goto(&server.url("/?status=disabled")).await;
    b.find(&tile("Aircall production")).await;
    assert!(b.try_find(&tile("chorus demo")).await.is_none());
    b.goto(&server.url("/?q=CCAI")).await;
    b.find(&tile("ccai-platform demo")).await;
    assert!(b.try_find(&tile("chorus demo")).await.is_none());
    b.goto(&server.url("/?provider=chorus")).await;
    b.find(&tile("chorus demo")).await;
    assert!(b.try_find(&tile("ccai-platform demo")).await.is_none());
    sources.keep(&b, "filtered").await;
    b.set_size(375, 800).await;
    b.goto(&server.url("/")).await;
    b.find(&tile("chorus demo")).await;
    let fits = b
        .run(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1;",
            vec![],
        )
        .await;
    assert_eq!(fits, json!(true), "no horizontal scroll at 375 px");
    b.screenshot("06-credential-tiles-375px.png").await;
    sources.keep(&b, "narrow").await;
    b.open_add_overlay("ccai-platform").await;
    let fits = b
        .run(
            "var d = document.getElementById('add-dialog'); return d.getBoundingClientRect().right <= window.innerWidth && d.scrollWidth <= d.clientWidth + 1;",
            vec![],
        )
        .await;
    assert_eq!(fits, json!(true), "the overlay fits at 375 px");
    b.screenshot("12-add-credential-overlay-375px.png").await;
    b.press(ESCAPE).await;
    wait_closed(&b, "add-dialog").await;
    b.set_size(1280, 900).await;

    // + Add API Credential: the token shown once, copied, and working against the REST API.
    b.click_css("nav a[href='/api-credentials']").await;
    b.click_css("#add-api-credential").await;
    b.wait_until(
        "the add dialog",
        "return document.getElementById('add-api-dialog').open;",
    )
    .await;
    b.type_into("#add-api-name", "Nightly export").await;
    b.click_css("#add-api-create").await;
    b.find("#one-time-token").await;
    b.wait_until(
        "the token dialog",
        "return document.getElementById('token-dialog').open;",
    )
    .await;
    let first = b
        .property("#one-time-token", "value")
        .await
        .as_str()
        .unwrap()
        .to_owned();
    assert!(first.starts_with("lkt_"), "{first}");
    secrets.push(first.clone());
    assert!(
        b.text("#token-dialog .warning")
            .await
            .contains("does not appear again")
    );
    b.grant("clipboard-read").await;
    b.click_css("#copy-token").await;
    b.wait_text("#copy-token", "Copied").await;
    let copied = b.clipboard().await;
    assert_eq!(copied, first, "Copy puts the token on the clipboard");
    b.screenshot("05-one-time-token.png").await;
    sources.keep(&b, "token-1").await;
    b.click_css("#token-dialog button[data-close]").await;
    assert_eq!(
        api_status(&server, &copied).await,
        200,
        "the copied token works"
    );

    // The pane: name, hint, created, last used (just now), enabled.
    b.goto(&server.url("/api-credentials")).await;
    let row = "tr[data-api-credential='Nightly export']";
    let hint = b.text(&format!("{row} td[data-label=Token]")).await;
    assert!(
        hint.starts_with("lkt_") && hint.ends_with(&first[first.len() - 4..]),
        "{hint}"
    );
    assert!(
        b.text(&format!("{row} td[data-label=Created]"))
            .await
            .ends_with(" UTC")
    );
    assert!(
        b.text(&format!("{row} td[data-label='Last used']"))
            .await
            .ends_with(" UTC")
    );
    b.screenshot("04-api-credentials-pane.png").await;
    sources.keep(&b, "pane").await;

    // Edit → rename.
    b.click_css("button[data-edit='Nightly export']").await;
    b.type_into("dialog[open] input[name=name]", "Nightly export job")
        .await;
    b.click_css("dialog[open] button[type=submit]").await;
    b.find("tr[data-api-credential='Nightly export job']").await;
    assert_eq!(api_status(&server, &first).await, 200);

    // Refresh → Warning → Regenerate: a new token shown once, the old one refused.
    b.click_css("button[data-refresh='Nightly export job']")
        .await;
    b.wait_until(
        "the warning",
        "return !!document.querySelector('dialog[open][role=alertdialog]');",
    )
    .await;
    assert!(b.text("dialog[open] h2").await.contains("Warning"));
    b.screenshot("07-regenerate-warning.png").await;
    b.click_css("button[data-regenerate='Nightly export job']")
        .await;
    b.wait_until(
        "the new token",
        "var d = document.getElementById('token-dialog'); return !!d && d.open;",
    )
    .await;
    let second = b
        .property("#one-time-token", "value")
        .await
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(first, second);
    secrets.push(second.clone());
    sources.keep(&b, "token-2").await;
    assert_eq!(
        api_status(&server, &first).await,
        401,
        "the old token is refused"
    );
    assert_eq!(api_status(&server, &second).await, 200);
    b.press(ESCAPE).await;
    wait_closed(&b, "token-dialog").await;

    // The switch turns it off, and on again.
    b.goto(&server.url("/api-credentials")).await;
    let switch = "button[data-switch='Nightly export job']";
    let switched = |on: bool| {
        format!(
            "var s = document.querySelector(\"{switch}\"); return !!s && s.getAttribute('aria-checked') === '{on}';"
        )
    };
    assert_eq!(b.property(switch, "ariaChecked").await, json!("true"));
    b.click_css(switch).await;
    b.wait_until("the switch off", &switched(false)).await;
    assert_eq!(api_status(&server, &second).await, 401);
    sources.keep(&b, "api-disabled").await;
    b.click_css(switch).await;
    b.wait_until("the switch on", &switched(true)).await;
    b.wait_text(".notice-ok", "” enabled.").await;
    assert_eq!(api_status(&server, &second).await, 200);

    // At a phone's width the table becomes one block per API credential.
    b.set_size(375, 800).await;
    b.goto(&server.url("/api-credentials")).await;
    b.find(switch).await;
    let fits = b
        .run(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1 && document.querySelector('.table-wrap').scrollWidth <= document.querySelector('.table-wrap').clientWidth + 1;",
            vec![],
        )
        .await;
    assert_eq!(fits, json!(true), "no horizontal scroll at 375 px");
    b.screenshot("09-api-credentials-375px.png").await;
    b.set_size(1280, 900).await;

    // Delete asks first, naming it; confirmed, the row goes and the token is refused.
    b.click_css("button[data-delete='Nightly export job']")
        .await;
    b.wait_until(
        "the delete dialog",
        "return !!document.querySelector('dialog[open][role=alertdialog]');",
    )
    .await;
    assert!(
        b.text("dialog[open] h2")
            .await
            .contains("Nightly export job")
    );
    b.screenshot("13-delete-api-credential.png").await;
    b.click_css("dialog[open] button[type=submit].danger").await;
    b.wait_text(".notice-ok", "deleted").await;
    assert!(
        b.try_find("tr[data-api-credential='Nightly export job']")
            .await
            .is_none()
    );
    assert_eq!(api_status(&server, &second).await, 401);
    sources.keep(&b, "api-deleted").await;

    // Sign out: the sign-in page, and the cookie, replayed, refused.
    let cookie = b
        .cookie("latchkey_session")
        .await
        .expect("the session cookie");
    b.click_css("form[action='/sign-out'] button").await;
    b.find("#token").await;
    assert!(b.cookie("latchkey_session").await.is_none());
    sources.keep(&b, "signed-out").await;
    let replay = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(server.url("/"))
        .header("cookie", format!("latchkey_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status().as_u16(), 401);
    assert!(
        replay
            .text()
            .await
            .unwrap()
            .contains("Your session has ended")
    );

    sources.assert_free_of(&secrets[..secrets.len() - 2], &[]);
    sources.assert_free_of(std::slice::from_ref(&first), &["token-1"]);
    sources.assert_free_of(std::slice::from_ref(&second), &["token-2"]);
    drop(b);
    let (code, log) = server.stop_with("TERM");
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("DEBUG"), "the log is verbose");
    for secret in &secrets {
        assert!(!log.contains(secret.as_str()), "a secret in the log");
    }
    assert!(!log.contains(&cookie), "the cookie in the log");
}
