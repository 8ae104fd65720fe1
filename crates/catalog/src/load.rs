//! Turning a provider file into a validated [`Provider`]; every problem names file and line.

use crate::schema::{RawAuth, RawProvider, RawStatus};
use crate::template::Template;
use crate::validate::is_header_name;
use crate::{Auth, BaseUrl, Field, FieldKind, Provider, RateLimit, StatusSet, Verify};
use std::collections::BTreeMap;
use std::time::Duration;

/// A provider file's path (for messages) and contents.
#[derive(Debug, Clone)]
pub struct ProviderFile {
    pub path: String,
    pub text: String,
}

/// A provider file that cannot be used, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {message}", if *.line > 0 { format!(":{}", .line) } else { String::new() })]
pub struct CatalogError {
    pub file: String,
    /// 1-based; 0 when the problem is not on a line (e.g. configuration).
    pub line: usize,
    pub message: String,
}

const DEFAULT_MAX_LENGTH: usize = 4096;

pub(crate) fn parse_provider(file: &ProviderFile) -> Result<Provider, CatalogError> {
    let line_of = |offset: usize| {
        file.text[..offset.min(file.text.len())]
            .matches('\n')
            .count()
            + 1
    };
    let fail = |offset: usize, message: String| CatalogError {
        file: file.path.clone(),
        line: line_of(offset),
        message,
    };

    let raw: RawProvider = toml::from_str(&file.text).map_err(|e| {
        let offset = e.span().map(|s| s.start).unwrap_or(0);
        fail(offset, e.message().trim().to_owned())
    })?;

    let id = raw.id.get_ref().clone();
    if id.is_empty()
        || id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        || id.starts_with('-')
    {
        return Err(fail(
            raw.id.span().start,
            format!("id `{id}` must be 1-64 lowercase letters, digits or hyphens"),
        ));
    }
    if raw.name.get_ref().trim().is_empty() {
        return Err(fail(
            raw.name.span().start,
            "name must not be empty".to_owned(),
        ));
    }
    if let Some(docs) = &raw.docs_url
        && !docs.get_ref().starts_with("https://")
    {
        return Err(fail(
            docs.span().start,
            "docs_url must be an https URL".to_owned(),
        ));
    }

    // Fields.
    let mut fields: Vec<Field> = Vec::new();
    for spanned in &raw.fields {
        let f = spanned.get_ref();
        let at = spanned.span().start;
        let key = f.key.get_ref().clone();
        if key.is_empty()
            || !key.starts_with(|c: char| c.is_ascii_lowercase())
            || !key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(fail(
                f.key.span().start,
                format!(
                    "field key `{key}` must be lowercase letters, digits and underscores, starting with a letter"
                ),
            ));
        }
        if fields.iter().any(|existing| existing.key == key) {
            return Err(fail(
                f.key.span().start,
                format!("field `{key}` is defined twice"),
            ));
        }
        if f.label.trim().is_empty() {
            return Err(fail(at, format!("field `{key}` needs a label")));
        }
        let kind = match f.kind.as_ref().map(|k| k.get_ref().as_str()) {
            None | Some("text") => FieldKind::Text,
            Some("url") => FieldKind::Url,
            Some("path") => FieldKind::Path,
            Some("header_name") => FieldKind::HeaderName,
            Some(other) => {
                return Err(fail(
                    f.kind.as_ref().map(|k| k.span().start).unwrap_or(at),
                    format!(
                        "field `{key}` has the unknown kind `{other}`; use text, url, path or header_name"
                    ),
                ));
            }
        };
        if f.secret && kind != FieldKind::Text {
            return Err(fail(
                at,
                format!("secret field `{key}` must be of kind text"),
            ));
        }
        let pattern = match &f.pattern {
            None => None,
            Some(p) => {
                let regex = regex_lite::Regex::new(p.get_ref()).map_err(|e| {
                    fail(
                        p.span().start,
                        format!("field `{key}` has an invalid pattern: {e}"),
                    )
                })?;
                Some((p.get_ref().clone(), regex))
            }
        };
        fields.push(Field {
            key,
            label: f.label.trim().to_owned(),
            help: f.help.trim().to_owned(),
            secret: f.secret,
            required: f.required,
            kind,
            options: f.options.clone(),
            max_length: f.max_length.unwrap_or(DEFAULT_MAX_LENGTH),
            host_label: false,
            pattern,
        });
    }
    if !fields.iter().any(|f| f.secret) {
        return Err(fail(
            raw.id.span().start,
            "a provider needs at least one secret field (secret = true)".to_owned(),
        ));
    }

    // Base URL: fields placed in the host become DNS-label fields.
    let base_url = parse_base_url(raw.base_url.get_ref(), &fields, false)
        .map_err(|m| fail(raw.base_url.span().start, format!("base_url {m}")))?;
    for field in fields.iter_mut().filter(|_| base_url.from_field.is_none()) {
        if host_placeholders(base_url.template.as_str()).any(|p| p == field.key) {
            field.host_label = true;
        }
    }

    let known = |name: &str| fields.iter().any(|f| f.key == name);
    let check_template = |text: &str, at: usize, what: &str| -> Result<Template, CatalogError> {
        let template = Template::parse(text).map_err(|m| fail(at, format!("{what}: {m}")))?;
        if let Some(unknown) = template.placeholders().find(|p| !known(p)) {
            return Err(fail(
                at,
                format!("{what} uses `{{{unknown}}}`, which is not one of this provider's fields"),
            ));
        }
        Ok(template)
    };

    // Auth.
    let auth_at = raw.auth.span().start;
    let auth = match raw.auth.get_ref() {
        RawAuth::Header { headers } => {
            if headers.is_empty() {
                return Err(fail(
                    auth_at,
                    "auth of type header needs at least one header".to_owned(),
                ));
            }
            let mut out = Vec::new();
            for h in headers {
                if !is_header_name(&h.name) {
                    return Err(fail(
                        auth_at,
                        format!("`{}` is not a header name Latchkey may set", h.name),
                    ));
                }
                out.push((
                    h.name.clone(),
                    check_template(&h.value, auth_at, "auth header")?,
                ));
            }
            Auth::Header(out)
        }
        RawAuth::Basic { username, password } => Auth::Basic {
            username: check_template(username, auth_at, "auth username")?,
            password: check_template(password, auth_at, "auth password")?,
        },
        RawAuth::Bearer { token } => Auth::Bearer {
            token: check_template(token, auth_at, "auth token")?,
        },
        RawAuth::Query { param, value } => {
            if param.is_empty() || param.contains(['&', '=', '#', '?', ' ']) {
                return Err(fail(
                    auth_at,
                    format!("`{param}` is not a usable query parameter name"),
                ));
            }
            Auth::Query {
                param: param.clone(),
                value: check_template(value, auth_at, "auth value")?,
            }
        }
        RawAuth::Custom {} => {
            for needed in ["base_url", "auth_type", "secret"] {
                if !known(needed) {
                    return Err(fail(
                        auth_at,
                        format!("auth of type custom needs the field `{needed}`"),
                    ));
                }
            }
            Auth::Custom
        }
    };

    // Verification.
    let verify_at = raw.verify.span().start;
    let v = raw.verify.get_ref();
    let method = v.method.to_ascii_uppercase();
    if !["GET", "HEAD", "POST"].contains(&method.as_str()) {
        return Err(fail(
            verify_at,
            format!("verify method `{}` must be GET, HEAD or POST", v.method),
        ));
    }
    if !v.path.starts_with('/') && !v.path.starts_with('{') {
        return Err(fail(
            verify_at,
            format!("verify path `{}` must start with /", v.path),
        ));
    }
    let path = check_template(&v.path, verify_at, "verify path")?;
    let statuses = |list: &[RawStatus], what: &str| -> Result<Vec<StatusSet>, CatalogError> {
        list.iter()
            .map(|s| match s {
                RawStatus::Code(code) if (100..=599).contains(code) => Ok(StatusSet::Code(*code as u16)),
                RawStatus::Class(class)
                    if class.len() == 3
                        && class.ends_with("xx")
                        && matches!(class.as_bytes()[0], b'1'..=b'5') =>
                {
                    Ok(StatusSet::Class(u16::from(class.as_bytes()[0] - b'0')))
                }
                other => Err(fail(
                    verify_at,
                    format!("verify {what} holds {other:?}; use status codes such as 401 or classes such as \"5xx\""),
                )),
            })
            .collect()
    };
    let valid = statuses(&v.valid, "valid")?;
    let rejected = statuses(&v.rejected, "rejected")?;
    let try_later = statuses(&v.try_later, "try_later")?;
    if valid.is_empty() || rejected.is_empty() {
        return Err(fail(
            verify_at,
            "verify needs both `valid` and `rejected` statuses".to_owned(),
        ));
    }
    for code in 100..=599u16 {
        let hits = [&valid, &rejected, &try_later]
            .iter()
            .filter(|set| set.iter().any(|s| s.contains(code)))
            .count();
        if hits > 1 {
            return Err(fail(
                verify_at,
                format!("status {code} is in more than one of valid, rejected and try_later"),
            ));
        }
    }
    if let Some(pointer) = &v.identity
        && !pointer.starts_with('/')
    {
        return Err(fail(
            verify_at,
            format!("identity `{pointer}` must be a JSON pointer such as /data/email"),
        ));
    }
    if let Some(unknown) = v.check_fields.iter().find(|f| !known(f)) {
        return Err(fail(
            verify_at,
            format!("check_fields names `{unknown}`, which is not one of this provider's fields"),
        ));
    }
    let mut hints = BTreeMap::new();
    for (status, hint) in &v.hints {
        let code: u16 = status
            .parse()
            .ok()
            .filter(|c| (100..=599).contains(c))
            .ok_or_else(|| {
                fail(
                    verify_at,
                    format!("hint key `{status}` must be an HTTP status such as 403"),
                )
            })?;
        hints.insert(code, hint.clone());
    }

    // Rate limit.
    let rate_limit = match &raw.rate_limit {
        None => None,
        Some(spanned) => {
            let r = spanned.get_ref();
            let at = spanned.span().start;
            let per = r
                .per
                .as_deref()
                .map(|p| {
                    parse_period(p).ok_or_else(|| {
                        fail(
                            at,
                            format!("rate_limit per `{p}` must look like 1s, 1m, 1h or 1d"),
                        )
                    })
                })
                .transpose()?;
            if r.requests.is_some() != per.is_some() || r.requests == Some(0) {
                return Err(fail(
                    at,
                    "rate_limit needs both `requests` (above 0) and `per`".to_owned(),
                ));
            }
            let account = r
                .account
                .as_deref()
                .map(|a| check_template(a, at, "rate_limit account"))
                .transpose()?;
            Some(RateLimit {
                requests: r.requests,
                per,
                scope: r.scope.clone(),
                account,
                configurable: r.configurable,
                weekly: r.weekly,
                reset_header: r.reset_header.clone(),
                note: r.note.clone(),
            })
        }
    };

    Ok(Provider {
        id: id.clone(),
        name: raw.name.get_ref().trim().to_owned(),
        description: raw.description.clone().unwrap_or_default(),
        docs_url: raw.docs_url.as_ref().map(|d| d.get_ref().clone()),
        fields,
        auth,
        verify: Verify {
            method,
            path,
            valid,
            rejected,
            try_later,
            identity: v.identity.clone(),
            expect: v
                .expect
                .as_ref()
                .map(|e| (e.pointer.clone(), e.equals.clone())),
            check_fields: v.check_fields.clone(),
            hints,
        },
        rate_limit,
        order: raw.order.unwrap_or(1000),
        source: file.path.clone(),
        base_url,
        base_overridden: false,
        id_line: line_of(raw.id.span().start),
    })
}

/// Validate a base URL template. Placeholders may stand only for whole DNS labels of the host
/// (or, for the custom provider, for the whole URL from a field of kind `url`).
pub(crate) fn parse_base_url(
    text: &str,
    fields: &[Field],
    operator: bool,
) -> Result<BaseUrl, String> {
    let template = Template::parse(text)?;
    let placeholders: Vec<&str> = template.placeholders().collect();
    if let Some(unknown) = placeholders
        .iter()
        .find(|p| !fields.iter().any(|f| f.key == **p))
    {
        return Err(format!(
            "uses `{{{unknown}}}`, which is not one of this provider's fields"
        ));
    }
    // The whole URL from one field.
    if placeholders.len() == 1 && text == format!("{{{}}}", placeholders[0]) {
        let field = fields
            .iter()
            .find(|f| f.key == placeholders[0])
            .expect("checked above");
        if field.kind != FieldKind::Url || operator {
            return Err("may be a single placeholder only for a field of kind url".to_owned());
        }
        return Ok(BaseUrl {
            template,
            from_field: Some(field.key.clone()),
        });
    }
    // Put a plain label where each placeholder is, then check the URL's shape.
    let mut sample = text.to_owned();
    for p in &placeholders {
        sample = sample.replace(&format!("{{{p}}}"), "sample");
    }
    let url = url::Url::parse(&sample).map_err(|e| format!("`{text}` is not a URL ({e})"))?;
    match url.scheme() {
        "https" => {}
        "http" if operator => {}
        "http" => {
            return Err(format!(
                "`{text}` must use https (http is allowed only in an operator's base URL override)"
            ));
        }
        other => {
            return Err(format!(
                "`{text}` uses the scheme `{other}`; only https is allowed"
            ));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("`{text}` must not carry a user name or password"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("`{text}` must not have a query or fragment"));
    }
    let host_part = host_of_template(text);
    for p in &placeholders {
        let whole_label = host_part
            .split('.')
            .any(|label| label == format!("{{{p}}}"));
        if !whole_label {
            return Err(format!(
                "places `{{{p}}}` outside the host or inside a host label; a placeholder must be a whole label of the host"
            ));
        }
    }
    Ok(BaseUrl {
        template,
        from_field: None,
    })
}

/// The host part of a URL template (between `://` and the next `/`, `:` port excluded).
fn host_of_template(text: &str) -> &str {
    let rest = text.split_once("://").map(|(_, r)| r).unwrap_or(text);
    let host_port = rest.split('/').next().unwrap_or("");
    host_port
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(host_port)
}

fn host_placeholders(text: &str) -> impl Iterator<Item = &str> {
    host_of_template(text)
        .split('.')
        .filter_map(|label| label.strip_prefix('{').and_then(|l| l.strip_suffix('}')))
}

fn parse_period(text: &str) -> Option<Duration> {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = number.parse().ok().filter(|n| *n > 0)?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return None,
    };
    Some(Duration::from_secs(n * secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods() {
        assert_eq!(parse_period("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_period("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_period("m"), None);
        assert_eq!(parse_period("0s"), None);
        assert_eq!(parse_period("5x"), None);
    }

    #[test]
    fn host_of_templates() {
        assert_eq!(host_of_template("https://{a}.{b}.x.com/p"), "{a}.{b}.x.com");
        assert_eq!(host_of_template("http://127.0.0.1:9003"), "127.0.0.1");
    }
}
