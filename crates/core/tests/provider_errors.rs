//! A provider that echoes the secret back (in its error body, its `Authorization` header, an
//! identity field, a huge or broken answer): no error core returns, no stored status reason or
//! identity, no audit entry and no panic message holds any form of it.

use base64::Engine as _;
use latchkey_core::{Actor, Latchkey, NewCredential, Settings, VerifyMode};
use latchkey_testdb::{Backend, TestDb};
use latchkey_vault::Secret;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, Once};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WS: &str = "default";
const API_ID: &str = "4242";
const TOKEN: &str = "lk-echoed-token-0123456789abcdef";
const NEW_TOKEN: &str = "lk-echoed-new-token-fedcba9876543210";
const CHORUS_TOKEN: &str = "lk-echoed-chorus-token-aaaabbbbcccc";

/// Every panic message seen in this test binary (the hook is installed once, for all tests).
static PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn collect_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            PANICS.lock().unwrap().push(format!("{payload} {info}"));
            default(info);
        }));
    });
}

/// An upstream on loopback that gives each connection the next scripted answer; `{auth}` in an
/// answer becomes the `Authorization` header the request carried, `{token}` the token.
async fn upstream(answers: Vec<Answer>) -> (String, Arc<Mutex<VecDeque<Answer>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let queue = Arc::new(Mutex::new(VecDeque::from(answers)));
    let script = queue.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&request);
            let auth = text
                .lines()
                .find_map(|l| {
                    l.split_once(':')
                        .filter(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                })
                .map(|(_, v)| v.trim().to_owned())
                .unwrap_or_default();
            let token = auth_token(&auth);
            let Some(answer) = script.lock().unwrap().pop_front() else {
                continue;
            };
            let fill = |text: &str| text.replace("{auth}", &auth).replace("{token}", &token);
            let answer = match answer {
                Answer::Http(status, body) => {
                    let body = fill(&body);
                    format!(
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                }
                Answer::Raw(text) => fill(&text),
            };
            let _ = socket.write_all(answer.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
    });
    (url, queue)
}

/// The token inside a Basic or raw `Authorization` value.
fn auth_token(auth: &str) -> String {
    match auth.strip_prefix("Basic ") {
        Some(encoded) => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.split_once(':').map(|(_, t)| t.to_owned()))
            .unwrap_or_default(),
        None => auth.to_owned(),
    }
}

enum Answer {
    /// A status line's code and reason, and a JSON body (its length is set after filling in).
    Http(&'static str, String),
    /// Bytes sent as they are (after filling in).
    Raw(String),
}

fn http(status: &'static str, body: &str) -> Answer {
    Answer::Http(status, body.to_owned())
}

/// Each secret in the forms it could leak in.
fn forms() -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let mut out = Vec::new();
    for s in [TOKEN, NEW_TOKEN, CHORUS_TOKEN] {
        let hex: String = s.bytes().map(|b| format!("{b:02x}")).collect();
        out.extend([
            s.to_owned(),
            s[..12].to_owned(),
            STANDARD.encode(s),
            URL_SAFE_NO_PAD.encode(s),
            hex.to_ascii_uppercase(),
            hex,
        ]);
        out.push(STANDARD.encode(format!("{API_ID}:{s}")));
    }
    out
}

fn assert_clean(what: &str, text: &str) {
    for form in forms() {
        assert!(!text.contains(&form), "{what} holds a secret: {text}");
    }
}

fn aircall(token: &str) -> BTreeMap<String, Secret> {
    BTreeMap::from([
        ("api_id".to_owned(), Secret::new(API_ID)),
        ("api_token".to_owned(), Secret::new(token)),
    ])
}

async fn a_provider_echoing_the_secret_leaks_it_nowhere(backend: Backend) {
    collect_panics();
    let echo = r#"{"message":"Forbidden: token {token} (Authorization: {auth})"}"#;
    let huge = format!(r#"{{"message":"{}{{token}}"}}"#, "x".repeat(1 << 20));
    let answers = vec![
        // create: rejected, the body repeats the token and the header
        http("403 Forbidden", echo),
        // create: rejected, JSON:API errors holding the header
        http(
            "401 Unauthorized",
            r#"{"errors":[{"detail":"bad header {auth}"}]}"#,
        ),
        // create: the token straddles the 200-character cut of the message
        http(
            "403 Forbidden",
            &format!(r#"{{"message":"{}{{token}}"}}"#, "y".repeat(190)),
        ),
        // create: a body over the 1 MiB read limit, a body that is not JSON, a 503 with the token
        http("403 Forbidden", &huge),
        http("403 Forbidden", "not json {token} {auth}"),
        http("503 Service Unavailable", echo),
        // create: a broken answer, then none at all
        Answer::Raw("HTTP/1.1 2x0 {token}\r\n\r\n".to_owned()),
        Answer::Raw(String::new()),
        // verify of a stored credential: rejected, echoing
        http("403 Forbidden", echo),
        // replacing its secret: rejected, echoing the new one
        http("403 Forbidden", echo),
        // Chorus: valid, with the token where the identity should be
        http("200 OK", r#"{"data":{"attributes":{"email":"{token}"}}}"#),
    ];
    let count = answers.len();
    let (url, left) = upstream(answers).await;

    let db = TestDb::new(backend).await;
    let settings = Settings {
        data_dir: db.data_dir(),
        database_url: db.database_url(),
        provider_base_urls: BTreeMap::from([
            ("aircall".to_owned(), url.clone()),
            ("chorus".to_owned(), url.clone()),
        ]),
        ..Default::default()
    };
    let (core, _) = Latchkey::start(&settings).await.unwrap();
    let op = Actor::operator();
    let new = |name: &str, token: &str| NewCredential {
        provider: "aircall".to_owned(),
        name: name.to_owned(),
        description: None,
        fields: aircall(token),
    };

    let mut seen = Vec::new();
    for attempt in 0..8 {
        let err = core
            .create_credential(&op, WS, new("Echo", TOKEN), VerifyMode::Verify)
            .await
            .expect_err("nothing the upstream answers makes it valid");
        let text = format!("{err}");
        if attempt < 3 {
            assert!(text.contains("Aircall"), "{text}");
            assert!(text.contains("[redacted]"), "the echo came through: {text}");
        }
        seen.push(text);
        seen.push(format!("{err:?}"));
    }

    let saved = core
        .create_credential(&op, WS, new("Echo", TOKEN), VerifyMode::Skip)
        .await
        .unwrap();
    let report = core.verify_credential(&op, WS, &saved.id).await.unwrap();
    seen.push(format!("{report:?}"));
    let after = core.get_credential(WS, &saved.id).await.unwrap();
    let reason = after
        .status_reason
        .clone()
        .expect("a rejection is recorded");
    assert!(reason.contains("[redacted]"), "{reason}");
    seen.push(format!("{after:?}"));
    seen.push(serde_json::to_string(&after).unwrap());

    let err = core
        .replace_fields(
            &op,
            WS,
            &saved.id,
            BTreeMap::from([("api_token".to_owned(), Secret::new(NEW_TOKEN))]),
            VerifyMode::Verify,
            None,
        )
        .await
        .expect_err("the provider rejects the new token");
    seen.push(format!("{err} {err:?}"));

    let chorus = core
        .create_credential(
            &op,
            WS,
            NewCredential {
                provider: "chorus".to_owned(),
                name: "Chorus".to_owned(),
                description: None,
                fields: BTreeMap::from([("api_token".to_owned(), Secret::new(CHORUS_TOKEN))]),
            },
            VerifyMode::Verify,
        )
        .await
        .unwrap();
    assert_eq!(chorus.identity.as_deref(), Some("[redacted]"));
    seen.push(format!("{chorus:?}"));
    assert!(left.lock().unwrap().is_empty(), "all {count} answers used");

    for text in &seen {
        assert_clean("an error or view", text);
    }
    let dump = db.dump().await;
    for form in forms() {
        assert!(
            !dump.windows(form.len()).any(|w| w == form.as_bytes()),
            "the database holds a secret"
        );
    }
    for panic in PANICS.lock().unwrap().iter() {
        assert_clean("a panic message", panic);
    }
}

latchkey_testdb::backend_tests!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_provider_echoing_the_secret_leaks_it_nowhere,
);
