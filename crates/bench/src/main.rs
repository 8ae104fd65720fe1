//! `scripts/bench-core` and `scripts/bench-store`: measures, on this machine, sealing and opening
//! one credential's secrets, listing the first page of 50 credentials in a workspace of 100,000,
//! and a master-key rotation re-wrapping all 100,000 — on the embedded SQLite store, or on the
//! PostgreSQL database named by `BENCH_DATABASE_URL` — and prints one table. A benchmark, not a
//! test: the figures vary with the machine's load.

use latchkey_core::{Actor, Latchkey, ListQuery, NewCredential, Settings, VerifyMode};
use latchkey_vault::{Binding, KeyRing, MasterKey, Secret, SecretFields, encode_fields};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

struct Row {
    what: String,
    runs: usize,
    mean: Duration,
    p50: Duration,
    p99: Duration,
    target: &'static str,
}

fn stats(what: &str, mut samples: Vec<Duration>, target: &'static str) -> Row {
    samples.sort();
    let runs = samples.len();
    let mean = samples.iter().sum::<Duration>() / runs as u32;
    Row {
        what: what.to_owned(),
        runs,
        mean,
        p50: samples[runs / 2],
        p99: samples[(runs * 99 / 100).min(runs - 1)],
        target,
    }
}

/// Time `batch` calls at a time so that the clock's own cost does not dominate microseconds.
fn time_batches(batches: usize, batch: usize, mut f: impl FnMut()) -> Vec<Duration> {
    (0..batches)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..batch {
                f();
            }
            start.elapsed() / batch as u32
        })
        .collect()
}

fn main() {
    let credentials: usize = std::env::var("BENCH_CREDENTIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let mut rows = Vec::new();

    // Seal and open: one credential's secret fields (an Aircall token), as core does it.
    let ring = KeyRing::new(MasterKey::generate());
    let mut fields = SecretFields::new();
    fields.insert(
        "api_token".to_owned(),
        Secret::new("a3f9c2e41b8d05f6a1e7c2d9a4f8b3e6"),
    );
    let binding = Binding::new(
        "0190a6b2-aaaa-7000-8000-000000000001",
        "0190a6b2-bbbb-7000-8000-000000000002",
        1,
    );
    let envelope = ring
        .seal(&binding, encode_fields(&fields).expose())
        .unwrap();
    rows.push(stats(
        "seal one credential (encode + AES-256-GCM data key + wrap)",
        time_batches(200, 500, || {
            std::hint::black_box(
                ring.seal(&binding, encode_fields(&fields).expose())
                    .unwrap(),
            );
        }),
        "< 10 µs",
    ));
    rows.push(stats(
        "open one credential (unwrap + decrypt + decode)",
        time_batches(200, 500, || {
            let plain = ring.open(&binding, &envelope).unwrap();
            std::hint::black_box(latchkey_vault::decode_fields(plain.expose()).unwrap());
        }),
        "< 10 µs",
    ));

    // Listing: the first page of 50 in a workspace of `credentials`, through core on SQLite.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let database_url = std::env::var("BENCH_DATABASE_URL").ok();
    let backend = if database_url.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let (list, rewrap) = runtime.block_on(async {
        let settings = Settings {
            data_dir: dir.path().to_owned(),
            database_url: database_url.clone(),
            ..Settings::default()
        };
        let (lk, _) = Latchkey::start(&settings).await.unwrap();
        let seeding = Instant::now();
        // Eight writers at once (a server database takes them in parallel).
        let mut writers = tokio::task::JoinSet::new();
        for w in 0..8 {
            let lk = lk.clone();
            writers.spawn(async move {
                for i in (w..credentials).step_by(8) {
                    create(&lk, i).await;
                }
            });
        }
        while let Some(done) = writers.join_next().await {
            done.unwrap();
        }
        eprintln!(
            "seeded {credentials} credentials in {:.1?}",
            seeding.elapsed()
        );
        let query = ListQuery {
            limit: Some(50),
            ..ListQuery::default()
        };
        for _ in 0..20 {
            lk.list_credentials("default", &query).await.unwrap();
        }
        let mut samples = Vec::new();
        for _ in 0..500 {
            let start = Instant::now();
            let page = lk.list_credentials("default", &query).await.unwrap();
            samples.push(start.elapsed());
            assert_eq!(page.items.len(), 50);
        }
        // A master-key rotation, as `latchkey keys rotate` runs it (batches of 1,000).
        let start = Instant::now();
        let rotation = lk.begin_rotation(None).await.unwrap();
        assert_eq!(rotation.pending, credentials as u64);
        let mut after: Option<String> = None;
        let mut rewrapped = 0;
        loop {
            let batch = lk.rewrap_batch(after.as_deref(), 1000).await.unwrap();
            if batch.read == 0 {
                break;
            }
            rewrapped += batch.rewrapped;
            after = batch.last;
        }
        assert_eq!(lk.finish_rotation().await.unwrap(), 0);
        assert_eq!(rewrapped, credentials as u64);
        (samples, vec![start.elapsed()])
    });
    rows.push(stats(
        &format!("list first page of 50 in a workspace of {credentials} ({backend}, through core)"),
        list,
        "< 5 ms",
    ));
    rows.push(stats(
        &format!(
            "master-key rotation: re-wrap all {credentials} envelopes ({backend}, batches of 1,000)"
        ),
        rewrap,
        "< 30 s",
    ));

    println!("| measurement | runs | mean | p50 | p99 | target |");
    println!("|---|---:|---:|---:|---:|---|");
    for r in rows {
        println!(
            "| {} | {} | {:.2?} | {:.2?} | {:.2?} | {} |",
            r.what, r.runs, r.mean, r.p50, r.p99, r.target
        );
    }
}

async fn create(lk: &Latchkey, i: usize) {
    let mut fields = BTreeMap::new();
    fields.insert(
        "api_id".to_owned(),
        Secret::new(format!("company{}", i % 97)),
    );
    fields.insert(
        "api_token".to_owned(),
        Secret::new(format!("token-{i:08}-a3f9c2e41b8d05f6")),
    );
    let new = NewCredential {
        provider: "aircall".to_owned(),
        name: format!("Aircall {i:06}"),
        description: Some("Benchmark credential".to_owned()),
        fields,
    };
    lk.create_credential(&Actor::operator(), "default", new, VerifyMode::Skip)
        .await
        .unwrap();
}
