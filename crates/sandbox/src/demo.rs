//! Demo credentials: the values each simulated provider accepts.

use std::collections::hash_map::RandomState;
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Known-good demo credentials each simulated provider accepts.
///
/// [`Default`] gives fixed, distinctive values (the ones the README shows);
/// [`DemoCredentials::random`] gives values of the same shapes with random
/// hex parts, for tests that search output for leaked secrets.
#[derive(Clone, Debug)]
pub struct DemoCredentials {
    /// Chorus API token of a user whose role allows API access.
    pub chorus_token: String,
    /// Chorus API token of a valid user whose role is *not* allowed API access (answers 403).
    pub chorus_no_api_token: String,
    /// Aircall API ID (Basic username).
    pub aircall_api_id: String,
    /// Aircall API token (Basic password).
    pub aircall_api_token: String,
    /// CCAI Platform subdomain (Basic username).
    pub ccai_subdomain: String,
    /// CCAI Platform region label.
    pub ccai_region: String,
    /// CCAI Platform API token (Basic password).
    pub ccai_api_token: String,
    /// Clari Copilot `X-Api-Key`.
    pub clari_api_key: String,
    /// Clari Copilot `X-Api-Password`.
    pub clari_api_password: String,
}

impl Default for DemoCredentials {
    fn default() -> Self {
        Self {
            chorus_token: "lk-sandbox-chorus-9f3a2c7e41b8d05f6a1e".to_owned(),
            chorus_no_api_token: "lk-sandbox-chorus-norole-5b7e0c2d9a4f".to_owned(),
            aircall_api_id: "lksandboxaircall01".to_owned(),
            aircall_api_token: "lk-sandbox-aircall-3e8d1f6b2a9c7e40".to_owned(),
            ccai_subdomain: "acme".to_owned(),
            ccai_region: "uc1".to_owned(),
            ccai_api_token: "lk-sandbox-ccai-7c2e9b4f1d6a3e80".to_owned(),
            clari_api_key: "lk-sandbox-clari-key-4a9e2f7c".to_owned(),
            clari_api_password: "lk-sandbox-clari-pass-8d3b6e1f0c5a".to_owned(),
        }
    }
}

impl DemoCredentials {
    /// Random values of the same shapes as the defaults (fixed prefix, random
    /// lowercase hex suffix). The region stays `uc1`; the subdomain stays a valid
    /// DNS label (`acme` plus hex).
    pub fn random() -> Self {
        Self {
            chorus_token: format!("lk-sandbox-chorus-{}", random_hex(20)),
            chorus_no_api_token: format!("lk-sandbox-chorus-norole-{}", random_hex(12)),
            aircall_api_id: format!("lksandboxaircall{}", random_hex(8)),
            aircall_api_token: format!("lk-sandbox-aircall-{}", random_hex(16)),
            ccai_subdomain: format!("acme{}", random_hex(6)),
            ccai_region: "uc1".to_owned(),
            ccai_api_token: format!("lk-sandbox-ccai-{}", random_hex(16)),
            clari_api_key: format!("lk-sandbox-clari-key-{}", random_hex(8)),
            clari_api_password: format!("lk-sandbox-clari-pass-{}", random_hex(12)),
        }
    }

    /// The demo fields for `provider`, as `(field key, value, is_secret)` in the
    /// catalog's field order. Unknown provider: empty.
    pub fn fields(&self, provider: &str) -> Vec<(&'static str, String, bool)> {
        match provider {
            "chorus" => vec![("api_token", self.chorus_token.clone(), true)],
            "aircall" => vec![
                ("api_id", self.aircall_api_id.clone(), false),
                ("api_token", self.aircall_api_token.clone(), true),
            ],
            "ccai-platform" => vec![
                ("subdomain", self.ccai_subdomain.clone(), false),
                ("region", self.ccai_region.clone(), false),
                ("api_token", self.ccai_api_token.clone(), true),
            ],
            "clari-copilot" => vec![
                ("api_key", self.clari_api_key.clone(), false),
                ("api_password", self.clari_api_password.clone(), true),
            ],
            _ => Vec::new(),
        }
    }
}

/// `len` lowercase hex digits from std-only randomness: `RandomState` (randomly
/// keyed SipHash) over the time and a process-wide counter. Not for real secrets.
fn random_hex(len: usize) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let keys = RandomState::new();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut out = String::with_capacity(len + 16);
    while out.len() < len {
        let mut hasher = keys.build_hasher();
        hasher.write_u128(nanos);
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        let _ = write!(out, "{:016x}", hasher.finish());
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_hex_has_requested_length_and_alphabet() {
        for len in [1, 6, 16, 20, 33] {
            let s = random_hex(len);
            assert_eq!(s.len(), len);
            assert!(
                s.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
        }
        assert_ne!(random_hex(20), random_hex(20));
    }

    #[test]
    fn unknown_provider_has_no_fields() {
        assert!(DemoCredentials::default().fields("custom").is_empty());
    }
}
