//! Checking a credential's values against its provider's fields. Messages name the field, its
//! label and what to do; they never repeat a value (it may be a secret).

use crate::template::Template;
use crate::{Auth, FieldKind, Provider};

/// Why a credential's values do not fit its provider.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("`{field}` is not a field of {provider}; its fields are: {allowed}")]
    Unknown {
        provider: String,
        field: String,
        allowed: String,
    },
    #[error("{label} (`{field}`) is required. {help}")]
    Missing {
        field: String,
        label: String,
        help: String,
    },
    #[error("{label} (`{field}`) {reason}")]
    Invalid {
        field: String,
        label: String,
        reason: String,
    },
}

impl FieldError {
    pub fn field(&self) -> &str {
        match self {
            FieldError::Unknown { field, .. }
            | FieldError::Missing { field, .. }
            | FieldError::Invalid { field, .. } => field,
        }
    }
}

/// A single DNS label: 1-63 letters, digits or hyphens, not starting or ending with a hyphen.
pub fn is_dns_label(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-')
}

/// A header name Latchkey may set on an outbound request: an RFC 9110 token that is not one of
/// the headers the HTTP client or the connection owns.
pub(crate) fn is_header_name(name: &str) -> bool {
    const RESERVED: &[&str] = &[
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "proxy-authorization",
        "proxy-authenticate",
        "proxy-connection",
        "cookie",
    ];
    !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        && !RESERVED.contains(&name.to_ascii_lowercase().as_str())
}

impl Provider {
    /// Check a credential's complete set of values (secret and not) against this provider:
    /// unknown fields, missing required fields, lengths, control characters, host labels,
    /// choices, URLs, paths and advisory patterns. Empty values count as absent.
    pub fn check_values(&self, values: &[(&str, &str)]) -> Result<(), FieldError> {
        for (key, _) in values {
            if self.field(key).is_none() {
                return Err(FieldError::Unknown {
                    provider: self.name.clone(),
                    field: (*key).to_owned(),
                    allowed: self
                        .fields
                        .iter()
                        .map(|f| f.key.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        let get = |key: &str| lookup(values, key);
        for field in &self.fields {
            let invalid = |reason: String| FieldError::Invalid {
                field: field.key.clone(),
                label: field.label.clone(),
                reason,
            };
            let Some(value) = get(&field.key) else {
                if field.required {
                    return Err(FieldError::Missing {
                        field: field.key.clone(),
                        label: field.label.clone(),
                        help: field.help.clone(),
                    });
                }
                continue;
            };
            if value.chars().count() > field.max_length {
                return Err(invalid(format!(
                    "is longer than {} characters",
                    field.max_length
                )));
            }
            if value.chars().any(char::is_control) {
                return Err(invalid(
                    "contains a control character such as a line break; paste the value alone"
                        .to_owned(),
                ));
            }
            if field.host_label && !is_dns_label(value) {
                return Err(invalid(
                    "must be a single DNS label: letters, digits and hyphens, 1-63 characters, with no dots, slashes, @, # or spaces".to_owned(),
                ));
            }
            if !field.options.is_empty() && !field.options.iter().any(|o| o == value) {
                return Err(invalid(format!(
                    "must be one of: {}",
                    field.options.join(", ")
                )));
            }
            match field.kind {
                FieldKind::Text => {}
                FieldKind::Url => check_url(value).map_err(invalid)?,
                FieldKind::Path => {
                    if !value.starts_with('/') {
                        return Err(invalid("must start with /".to_owned()));
                    }
                    crate::render::check_path(value).map_err(|e| invalid(e.to_string()))?;
                }
                FieldKind::HeaderName => {
                    if !is_header_name(value) {
                        return Err(invalid("is not a header name Latchkey may set".to_owned()));
                    }
                }
            }
            if let Some((source, regex)) = &field.pattern
                && !regex.is_match(value)
            {
                let shown = if field.secret {
                    String::new()
                } else {
                    format!(" (expected the pattern {source})")
                };
                return Err(invalid(format!(
                    "does not look like a {}{shown}",
                    field.label
                )));
            }
        }
        if matches!(self.auth, Auth::Custom) {
            self.check_custom(values)?;
        }
        Ok(())
    }

    fn check_custom(&self, values: &[(&str, &str)]) -> Result<(), FieldError> {
        let get = |key: &str| lookup(values, key);
        let need = |key: &str, why: &str| -> Result<(), FieldError> {
            if get(key).is_some() {
                return Ok(());
            }
            let field = self
                .field(key)
                .expect("custom provider fields are checked at load");
            Err(FieldError::Missing {
                field: key.to_owned(),
                label: field.label.clone(),
                help: format!("{why} {}", field.help),
            })
        };
        match get("auth_type") {
            Some("header") => {
                need("header_name", "Header authentication needs it.")?;
                if let Some(template) = get("value_template") {
                    let ok = Template::parse(template)
                        .map(|t| {
                            let names: Vec<&str> = t.placeholders().collect();
                            names.contains(&"secret") && names.iter().all(|n| *n == "secret")
                        })
                        .unwrap_or(false);
                    if !ok {
                        return Err(FieldError::Invalid {
                            field: "value_template".to_owned(),
                            label: "Header Value Template".to_owned(),
                            reason: "must contain {secret} and no other placeholder".to_owned(),
                        });
                    }
                }
            }
            Some("query") => need("query_param", "Query authentication needs it.")?,
            Some("basic") => need("username", "Basic authentication needs it.")?,
            _ => {}
        }
        Ok(())
    }
}

fn lookup<'a>(values: &[(&'a str, &'a str)], key: &str) -> Option<&'a str> {
    values
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| *v)
        .filter(|v| !v.is_empty())
}

fn check_url(value: &str) -> Result<(), String> {
    let url = url::Url::parse(value)
        .map_err(|_| "is not a URL; write it like https://api.example.com".to_owned())?;
    if url.scheme() != "https" {
        return Err("must use https".to_owned());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "must not carry a user name or password (put the secret in the Secret field)"
                .to_owned(),
        );
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query (?) or fragment (#)".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels() {
        for good in ["acme", "a", "uc1", "my-company", "A1"] {
            assert!(is_dns_label(good), "{good}");
        }
        for bad in [
            "",
            "evil.com#",
            "a.b",
            "x@y",
            "has space",
            "-a",
            "a-",
            "a.evil.com/",
            "%2e",
            "a..b",
            "[::1]",
            "a\r\nb",
            "ünï",
            &"a".repeat(64),
        ] {
            assert!(!is_dns_label(bad), "{bad}");
        }
    }

    #[test]
    fn header_names() {
        assert!(is_header_name("X-Api-Key"));
        assert!(is_header_name("Authorization"));
        for bad in ["Host", "content-length", "Cookie", "bad header", "a:b", ""] {
            assert!(!is_header_name(bad), "{bad}");
        }
    }
}
