//! Two `latchkey serve` processes on one PostgreSQL database share the proxy's rate-limit
//! throttle: together they never send a provider account more than its limit (CCAI Platform: 10
//! requests a second), so the sandbox never has to refuse one, and no caller sees a 429.

mod common;

use common::Env;
use common::serve::Served;
use latchkey_testdb::Backend;
use std::process::Stdio;

/// A `latchkey serve` of its own on the test's database, its log at `warn` and thrown away.
fn serve(env: &Env) -> Served {
    let mut command = env.command(&["serve", "--listen", "127.0.0.1:0"]);
    command.env("LATCHKEY_LOG", "warn");
    Served::start_with_stderr(command, Stdio::null())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_together_stay_within_the_providers_limit() {
    let env = Env::on(Backend::Postgres).await;
    env.add_demo("ccai-platform", "ccai").ok();
    let added = env.run(&["api-credentials", "add", "etl", "--role", "admin"], "");
    let token = added
        .ok()
        .stdout
        .split_whitespace()
        .find(|w| w.starts_with("lkt_"))
        .expect("the new token is printed")
        .to_owned();
    let (a, b) = (serve(&env), serve(&env));
    env.sandbox.clear_requests();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let started = std::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let url = format!(
            "{}/v1/proxy/ccai/manager/api/v1/agents?per=1",
            if i % 2 == 0 { &a.url } else { &b.url }
        );
        let request = client.get(url).bearer_auth(&token);
        tasks.spawn(async move { request.send().await.unwrap().status().as_u16() });
    }
    let mut statuses = std::collections::BTreeMap::new();
    while let Some(status) = tasks.join_next().await {
        *statuses.entry(status.unwrap()).or_insert(0) += 1;
    }
    assert_eq!(statuses, std::collections::BTreeMap::from([(200, 40)]));
    let stats = env.sandbox.rate_stats("ccai-platform").unwrap();
    assert_eq!(stats.throttled, 0, "the provider never had to refuse");
    assert!(
        env.sandbox
            .max_observed_rate("ccai-platform", std::time::Duration::from_secs(1))
            <= 10
    );
    // 40 requests at 10 a second, the first 10 at once: at least three seconds.
    assert!(started.elapsed() >= std::time::Duration::from_secs(3));
}
