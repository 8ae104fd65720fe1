//! Asking the provider whether a credential works, and reading its answer the catalog's way.

use crate::Latchkey;
use crate::error::CoreError;
use crate::outbound::OutboundError;
use latchkey_catalog::{FieldValues, Provider, Verdict};

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
                    reason: scrub(&reason, &values.secrets),
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
                        identity: identity.map(|i| scrub(&i, &values.secrets)),
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
                    provider_message: response
                        .json()
                        .and_then(|b| provider_message(&b))
                        .map(|m| scrub(&m, &values.secrets)),
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

/// The provider's own short error text, from the usual places in its error body.
fn provider_message(body: &serde_json::Value) -> Option<String> {
    let candidates = [
        body.pointer("/errors/0/detail"),
        body.pointer("/errors/0/title"),
        body.pointer("/errorMessage"),
        body.pointer("/message"),
        body.pointer("/error"),
    ];
    let text = candidates.into_iter().flatten().find_map(|v| v.as_str())?;
    let text: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
    (!text.trim().is_empty()).then(|| text.trim().trim_end_matches('.').to_owned())
}

/// Remove any of the credential's secret values from a text that came from outside.
pub(crate) fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(secret, "[redacted]");
    }
    out
}
