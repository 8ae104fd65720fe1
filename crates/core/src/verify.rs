//! Asking the provider whether a credential works, and reading its answer the catalog's way.

use crate::Latchkey;
use crate::error::CoreError;
use crate::outbound::OutboundError;
use base64::Engine as _;
use latchkey_catalog::{FieldValues, OutboundRequest, Provider, Verdict};
use secrecy::ExposeSecret;
use zeroize::Zeroizing;

/// What the provider said about a credential.
#[derive(Debug, Clone)]
pub enum Verification {
    /// It works; the account identity where the answer carries one.
    Valid { identity: Option<String> },
    /// The provider refused it (the error says what to check).
    Rejected(RejectedBy),
    /// The provider could not be asked, or answered with something that says nothing.
    Unreachable { reason: String },
}

#[derive(Debug, Clone)]
pub struct RejectedBy {
    pub status: u16,
    pub field_keys: Vec<String>,
    pub fields: Vec<String>,
    pub hint: String,
    pub provider_message: Option<String>,
}

impl Verification {
    /// The error an operation that needs a valid credential reports.
    pub fn into_error(self, provider: &Provider) -> Option<CoreError> {
        match self {
            Verification::Valid { .. } => None,
            Verification::Rejected(r) => Some(CoreError::ProviderRejected {
                provider: provider.name.clone(),
                status: r.status,
                field_keys: r.field_keys,
                fields: r.fields,
                hint: r.hint,
                provider_message: r.provider_message,
            }),
            Verification::Unreachable { reason } => Some(CoreError::ProviderUnreachable {
                provider: provider.name.clone(),
                reason,
            }),
        }
    }
}

/// The values of a credential that must never appear in what we report.
pub(crate) struct Values<'a> {
    pub pairs: Vec<(&'a str, &'a str)>,
    pub secrets: Vec<&'a str>,
}

impl FieldValues for Values<'_> {
    fn value(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .filter(|v| !v.is_empty())
    }
}

impl Latchkey {
    /// Call the provider's verification request with these values and classify the answer.
    pub(crate) async fn ask_provider(
        &self,
        provider: &Provider,
        values: &Values<'_>,
    ) -> Result<Verification, CoreError> {
        let request = provider
            .verification_request(values)
            .map_err(|e| CoreError::Setup(format!("{}: {e}", provider.name)))?;
        let sent = sent_values(&request, &values.secrets);
        let secrets: Vec<&str> = sent.iter().map(|s| s.as_str()).collect();
        let account = crate::proxy::account_of(provider, values);
        if let Err(retry_after) = self
            .wait_for_slot(provider, account, self.outbound.config().timeout)
            .await
        {
            return Ok(Verification::Unreachable {
                reason: format!(
                    "its rate limit for this account leaves no slot for {} s",
                    retry_after.as_secs().max(1)
                ),
            });
        }
        let response = match self.outbound.send(&request).await {
            Ok(response) => response,
            Err(e) => {
                let reason = match e {
                    OutboundError::Timeout(s) => format!("no answer within {s} s"),
                    other => other.to_string(),
                };
                tracing::info!(provider = %provider.id, %reason, "verification could not reach the provider");
                return Ok(Verification::Unreachable {
                    reason: scrub(&reason, &secrets),
                });
            }
        };
        let status = response.status;
        let verdict = provider.verify.classify(status);
        tracing::info!(provider = %provider.id, status, ?verdict, "verification answered");
        Ok(match verdict {
            Verdict::Valid => {
                let body = response.json();
                if !provider.verify.body_matches(body.as_ref()) {
                    Verification::Unreachable {
                        reason: format!(
                            "it answered HTTP {status} but not with what {} sends",
                            provider.name
                        ),
                    }
                } else {
                    let identity = body.as_ref().and_then(|b| provider.verify.identity_in(b));
                    Verification::Valid {
                        identity: identity.map(|i| scrub(&i, &secrets)),
                    }
                }
            }
            Verdict::Rejected => {
                let field_keys = if provider.verify.check_fields.is_empty() {
                    provider.secret_fields().map(|f| f.key.clone()).collect()
                } else {
                    provider.verify.check_fields.clone()
                };
                let fields = field_keys
                    .iter()
                    .map(|k| {
                        provider
                            .field(k)
                            .map(|f| f.label.clone())
                            .unwrap_or_else(|| k.clone())
                    })
                    .collect();
                Verification::Rejected(RejectedBy {
                    status,
                    field_keys,
                    fields,
                    hint: provider
                        .verify
                        .hint(status)
                        .map(str::to_owned)
                        .unwrap_or_else(|| {
                            format!("{} did not accept the credential.", provider.name)
                        }),
                    provider_message: response.json().and_then(|b| provider_message(&b, &secrets)),
                })
            }
            Verdict::TryLater => Verification::Unreachable {
                reason: format!("it answered HTTP {status}{}", status_words(status)),
            },
            Verdict::Unexpected => Verification::Unreachable {
                reason: if (300..400).contains(&status) {
                    format!(
                        "it answered with a redirect (HTTP {status}), which Latchkey does not follow"
                    )
                } else {
                    format!(
                        "it answered HTTP {status}, which does not tell whether the credential works"
                    )
                },
            },
        })
    }
}

fn status_words(status: u16) -> &'static str {
    match status {
        429 => ", too many requests",
        500 => ", an internal error",
        502 => ", a bad gateway",
        503 => ", service unavailable",
        504 => ", a gateway timeout",
        _ => "",
    }
}

/// The provider's own short error text, from the usual places in its error body, with the
/// credential's secrets taken out before it is shortened (so no part of one survives a cut).
fn provider_message(body: &serde_json::Value, secrets: &[&str]) -> Option<String> {
    let candidates = [
        body.pointer("/errors/0/detail"),
        body.pointer("/errors/0/title"),
        body.pointer("/errorMessage"),
        body.pointer("/message"),
        body.pointer("/error"),
    ];
    let text = candidates.into_iter().flatten().find_map(|v| v.as_str())?;
    let text: String = text.chars().filter(|c| !c.is_control()).collect();
    let text: String = scrub(&text, secrets).chars().take(200).collect();
    let text = scrub(&text, secrets);
    (!text.trim().is_empty()).then(|| text.trim().trim_end_matches('.').to_owned())
}

/// The credential's secret values and what was sent with them: each auth header value (without
/// its scheme word, `Basic …`, `Bearer …`), so a provider echoing its `Authorization` header is
/// caught too.
fn sent_values(request: &OutboundRequest, secrets: &[&str]) -> Vec<Zeroizing<String>> {
    let mut out: Vec<Zeroizing<String>> = secrets
        .iter()
        .map(|s| Zeroizing::new((*s).to_owned()))
        .collect();
    for (_, value) in &request.headers {
        // `Basic abc…` is caught by its encoded part (the scheme word alone is no secret).
        let value = value.expose_secret();
        let part = value.split_once(' ').map_or(value, |(_, rest)| rest.trim());
        out.push(Zeroizing::new(part.to_owned()));
    }
    out
}

/// The forms a secret could come back in: as it is, base64 (standard and URL-safe, padded or
/// not), hex (either case) and percent-encoded.
fn forms(secret: &str) -> Vec<Zeroizing<String>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let bytes = secret.as_bytes();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let percent: String = url::form_urlencoded::byte_serialize(bytes).collect();
    let percent_space = percent.replace('+', "%20");
    [
        secret.to_owned(),
        STANDARD.encode(bytes),
        STANDARD_NO_PAD.encode(bytes),
        URL_SAFE.encode(bytes),
        URL_SAFE_NO_PAD.encode(bytes),
        hex.to_ascii_uppercase(),
        hex,
        percent,
        percent_space,
    ]
    .into_iter()
    .map(Zeroizing::new)
    .collect()
}

/// Remove any of the credential's secret values, in any of their forms, from a text that came
/// from outside; a text that ends with the start of one (cut short) loses that end too. Values
/// under 4 characters are left alone (they would redact ordinary words).
pub(crate) fn scrub(text: &str, secrets: &[&str]) -> String {
    const REDACTED: &str = "[redacted]";
    let mut all: Vec<Zeroizing<String>> = secrets
        .iter()
        .filter(|s| s.len() >= 4)
        .flat_map(|s| forms(s))
        .filter(|f| f.len() >= 4)
        .collect();
    // Longest first: a secret inside a longer form (e.g. a header value) goes with it.
    all.sort_by_key(|f| std::cmp::Reverse(f.len()));
    let mut out = text.to_owned();
    for form in &all {
        out = out.replace(form.as_str(), REDACTED);
    }
    for form in &all {
        let longest_tail = (4..form.len())
            .rev()
            .filter(|&n| form.is_char_boundary(n))
            .find(|&n| out.ends_with(&form[..n]));
        if let Some(n) = longest_tail {
            out.truncate(out.len() - n);
            out.push_str(REDACTED);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "sk-live-0123456789abcdef";

    #[test]
    fn scrub_takes_out_every_form_of_a_secret() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(SECRET);
        let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("ab?>~?secret");
        let hex: String = SECRET.bytes().map(|b| format!("{b:02X}")).collect();
        for text in [
            format!("invalid token {SECRET}"),
            format!("bad Authorization: Basic {b64}"),
            format!("{SECRET}{SECRET}"),
            format!("hex {hex} / {}", hex.to_lowercase()),
            format!("u={url_safe}"),
            "token=sk-live%2B0123".to_owned(),
        ] {
            let out = scrub(&text, &[SECRET, "ab?>~?secret", "sk-live+0123"]);
            assert!(!out.contains(SECRET), "{out}");
            assert!(!out.contains(&b64), "{out}");
            assert!(
                !out.contains(&hex) && !out.contains(&hex.to_lowercase()),
                "{out}"
            );
            assert!(!out.contains(&url_safe), "{out}");
            assert!(!out.contains("sk-live%2B0123"), "{out}");
            assert!(out.contains("[redacted]"), "{out}");
        }
        assert_eq!(
            scrub("nothing to hide", &[SECRET]),
            "nothing to hide",
            "other text is left as it is"
        );
        assert_eq!(
            scrub("a bc here", &["bc"]),
            "a bc here",
            "too short to redact"
        );
    }

    #[test]
    fn a_secret_cut_short_leaves_no_part_behind() {
        let text = format!("the token {}", &SECRET[..10]);
        let out = scrub(&text, &[SECRET]);
        assert_eq!(out, "the token [redacted]");
        // Through the provider-message path: a long message cut at 200 characters.
        let padding = "x".repeat(190);
        let body = serde_json::json!({ "message": format!("{padding}{SECRET}") });
        let message = provider_message(&body, &[SECRET]).unwrap();
        assert!(!message.contains(&SECRET[..4]), "{message}");
        assert!(message.ends_with("[redacted]"), "{message}");
    }

    #[test]
    fn the_auth_header_sent_is_scrubbed_too() {
        let catalog = latchkey_catalog::Catalog::builtin().unwrap();
        let values: std::collections::BTreeMap<String, String> = [
            ("api_id".to_owned(), "4242".to_owned()),
            ("api_token".to_owned(), SECRET.to_owned()),
        ]
        .into();
        let request = catalog
            .get("aircall")
            .unwrap()
            .verification_request(&values)
            .unwrap();
        let header = request.headers[0].1.expose_secret().to_owned();
        let sent = sent_values(&request, &[SECRET]);
        let sent: Vec<&str> = sent.iter().map(|s| s.as_str()).collect();
        let body =
            serde_json::json!({ "errors": [{ "detail": format!("Unauthorized: {header}") }] });
        let message = provider_message(&body, &sent).unwrap();
        let encoded = header.trim_start_matches("Basic ");
        assert!(!message.contains(encoded), "{message}");
        assert_eq!(message, "Unauthorized: Basic [redacted]");
    }
}
