//! Injected faults over real sockets: a deterministic share of 5xx answers
//! and of connections closed without an answer, configured at start or at
//! run time.

mod common;

use std::time::{Duration, Instant};

use common::{authed, client, fetch, get, start, start_with};
use latchkey_sandbox::{Faults, PROVIDER_IDS, Scenario};

/// Send `request`: `Ok(status)`, or `Err` when the connection closed with no answer.
async fn attempt(request: reqwest::RequestBuilder) -> Result<u16, reqwest::Error> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    response.bytes().await?;
    Ok(status)
}

#[tokio::test]
async fn error_rate_answers_an_exact_evenly_spread_share_of_5xx() {
    let sb = start().await;
    let c = client();
    sb.set_error_rate(Some("aircall"), 0.25);
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let answer = fetch(&c, &sb, "aircall", "/v1/ping").await;
        if answer.status == 503 {
            assert_eq!(answer.body["error"], "Service Unavailable");
            assert!(answer.body["troubleshoot"].is_string());
        }
        statuses.push(answer.status);
    }
    assert_eq!(
        statuses,
        [200, 200, 200, 503, 200, 200, 200, 503, 200, 200, 200, 503]
    );
    // Other providers are untouched.
    for _ in 0..5 {
        assert_eq!(fetch(&c, &sb, "clari-copilot", "/users").await.status, 200);
    }
    assert_eq!(sb.faults("aircall").unwrap().error_rate, 0.25);

    // All providers at once, another status; the sequence starts again.
    sb.set_faults(
        None,
        Faults {
            error_rate: 0.5,
            error_status: 502,
            ..Faults::default()
        },
    );
    for id in PROVIDER_IDS {
        let path = match id {
            "chorus" => "/api/v1/users/me",
            "aircall" => "/v1/ping",
            "ccai-platform" => "/manager/api/v1/settings/organization",
            _ => "/users",
        };
        let first = fetch(&c, &sb, id, path).await;
        let second = fetch(&c, &sb, id, path).await;
        assert_eq!((first.status, second.status), (200, 502), "{id}");
    }
    // Unauthenticated requests get faults too (the gateway fails before auth).
    assert_eq!(
        get(&sb, "chorus", "/api/v1/users/me", &[]).await.status,
        401
    );
    assert_eq!(
        get(&sb, "chorus", "/api/v1/users/me", &[]).await.status,
        502
    );

    sb.set_error_rate(None, 0.0);
    for _ in 0..4 {
        assert_eq!(fetch(&c, &sb, "aircall", "/v1/ping").await.status, 200);
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn dropped_connections_close_without_an_answer() {
    let sb = start().await;
    sb.set_drop_rate(Some("clari-copilot"), 0.5);
    let c = client();
    let mut outcomes = Vec::new();
    for _ in 0..6 {
        let started = Instant::now();
        let outcome = attempt(authed(&c, &sb, "clari-copilot", "/calls?limit=5")).await;
        assert!(started.elapsed() < Duration::from_secs(5), "no hang");
        if let Err(e) = &outcome {
            assert!(!e.is_timeout() && !e.is_status(), "{e:?}");
        }
        outcomes.push(outcome.ok());
    }
    assert_eq!(
        outcomes,
        [Some(200), None, Some(200), None, Some(200), None]
    );
    let log = sb.requests("clari-copilot");
    assert_eq!(log.len(), 6, "dropped requests were received and recorded");
    let statuses: Vec<Option<u16>> = log.iter().map(|r| r.status).collect();
    assert_eq!(statuses, outcomes);
    assert_eq!(sb.faults("clari-copilot").unwrap().drop_rate, 0.5);

    // Drops and errors together: errors apply to the requests not dropped.
    sb.set_faults(
        Some("clari-copilot"),
        Faults {
            error_rate: 0.5,
            error_status: 500,
            drop_rate: 0.5,
        },
    );
    let mut outcomes = Vec::new();
    for _ in 0..4 {
        outcomes.push(
            attempt(authed(&c, &sb, "clari-copilot", "/users"))
                .await
                .ok(),
        );
    }
    assert_eq!(outcomes, [Some(200), None, Some(500), None]);
    sb.shutdown().await;
}

#[tokio::test]
async fn faults_configured_at_start_apply_from_the_first_request() {
    let scenario = Scenario {
        faults: Faults {
            drop_rate: 1.0,
            ..Faults::default()
        },
        ..Scenario::default()
    };
    let sb = start_with(scenario).await;
    let c = client();
    for id in PROVIDER_IDS {
        let outcome = attempt(c.get(common::url(&sb, id, "/anything"))).await;
        assert!(outcome.is_err(), "{id}: {outcome:?}");
    }
    sb.set_drop_rate(None, 0.0);
    assert_eq!(fetch(&c, &sb, "aircall", "/v1/ping").await.status, 200);
    sb.shutdown().await;
}

#[tokio::test]
async fn a_dropped_connection_sends_not_a_single_byte() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sb = start().await;
    sb.set_drop_rate(Some("aircall"), 1.0);
    let mut socket = tokio::net::TcpStream::connect(sb.addr("aircall").unwrap())
        .await
        .unwrap();
    socket
        .write_all(b"GET /v1/ping HTTP/1.1\r\nHost: sandbox\r\n\r\n")
        .await
        .unwrap();
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut received))
        .await
        .expect("the server closes the connection");
    // End of file (or a reset), with nothing before it.
    assert!(
        received.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&received)
    );
    let _ = read;
    assert_eq!(sb.requests("aircall")[0].status, None);
    sb.shutdown().await;
}

#[test]
#[should_panic(expected = "unknown sandbox provider")]
fn an_unknown_provider_is_a_loud_mistake() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sb = rt.block_on(start());
    sb.set_error_rate(Some("aircal"), 0.5);
}
