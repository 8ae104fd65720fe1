//! Rendering a credential into an outbound request: target URL from the catalog's template and
//! the auth the provider expects. Pure: no I/O.

use crate::{Auth, Provider};
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeMap;
use url::Url;
use zeroize::Zeroizing;

/// Where rendering finds a credential's values (settings and secrets alike).
pub trait FieldValues {
    fn value(&self, key: &str) -> Option<&str>;
}

impl FieldValues for BTreeMap<String, String> {
    fn value(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }
}

/// Why a request could not be rendered. Never holds a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("the credential has no value for `{0}`")]
    MissingValue(String),
    #[error("the value of `{0}` is not a single DNS label, so it cannot be part of the host name")]
    InvalidHostValue(String),
    #[error("the base URL is not usable: {0}")]
    InvalidBaseUrl(String),
    #[error("the path {0}")]
    InvalidPath(&'static str),
    #[error("the request would leave the provider's host")]
    HostChanged,
}

/// A request ready to send: the target and the auth headers. Header values (and the URL, when
/// the provider takes its secret in the query) are secret; `Debug` shows neither.
pub struct OutboundRequest {
    pub method: String,
    url: Url,
    query_secret: Option<String>,
    pub headers: Vec<(String, SecretString)>,
    /// The host comes from the operator's configuration (a base URL override), so the address
    /// guard may let it resolve to a private or loopback address.
    pub trusted_host: bool,
}

impl OutboundRequest {
    /// The full URL, including a query-parameter secret where the provider uses one.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The URL with any query-parameter secret replaced, for logs and messages.
    pub fn redacted_url(&self) -> String {
        let mut url = self.url.clone();
        if let Some(param) = &self.query_secret {
            let pairs: Vec<(String, String)> = self
                .url
                .query_pairs()
                .map(|(k, v)| {
                    let v = if k == param.as_str() {
                        "[redacted]".to_owned()
                    } else {
                        v.into_owned()
                    };
                    (k.into_owned(), v)
                })
                .collect();
            url.query_pairs_mut().clear().extend_pairs(pairs);
        }
        url.to_string()
    }

    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or_default()
    }
}

impl std::fmt::Debug for OutboundRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundRequest")
            .field("method", &self.method)
            .field("url", &self.redacted_url())
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("trusted_host", &self.trusted_host)
            .finish()
    }
}

impl Provider {
    /// The provider's base URL for this credential. Values placed in the host must be DNS labels.
    pub fn base_url(&self, values: &dyn FieldValues) -> Result<Url, RenderError> {
        if let Some(field) = &self.base_url.from_field {
            let text = values
                .value(field)
                .ok_or_else(|| RenderError::MissingValue(field.clone()))?;
            let url = Url::parse(text).map_err(|e| RenderError::InvalidBaseUrl(e.to_string()))?;
            if url.scheme() != "https"
                || url.host_str().is_none()
                || !url.username().is_empty()
                || url.password().is_some()
            {
                return Err(RenderError::InvalidBaseUrl(
                    "it must be an https URL without a user name or password".to_owned(),
                ));
            }
            return Ok(url);
        }
        for key in self.base_url.template.placeholders() {
            let value = values
                .value(key)
                .ok_or_else(|| RenderError::MissingValue(key.to_owned()))?;
            if !crate::is_dns_label(value) {
                return Err(RenderError::InvalidHostValue(key.to_owned()));
            }
        }
        let text = self.base_url.template.render(values)?;
        Url::parse(&text).map_err(|e| RenderError::InvalidBaseUrl(e.to_string()))
    }

    /// The request that verifies a credential (the catalog's verification request).
    pub fn verification_request(
        &self,
        values: &dyn FieldValues,
    ) -> Result<OutboundRequest, RenderError> {
        let path = self.verify.path.render(values)?;
        self.render_request(values, &self.verify.method, &path)
    }

    /// Render any request to this provider: base URL + path and query, with the provider's auth.
    /// The target host is always the template's; path tricks are refused.
    pub fn render_request(
        &self,
        values: &dyn FieldValues,
        method: &str,
        path_and_query: &str,
    ) -> Result<OutboundRequest, RenderError> {
        self.prepare(values)?.request(method, path_and_query)
    }

    /// What every request with this credential shares, rendered once: the base URL and the
    /// provider's auth. Each request then only adds its method, path and query.
    pub fn prepare(&self, values: &dyn FieldValues) -> Result<PreparedAuth, RenderError> {
        let base = self.base_url(values)?;
        let mut headers: Vec<(String, SecretString)> = Vec::new();
        let mut query = None;
        let need = |key: &str| {
            values
                .value(key)
                .ok_or_else(|| RenderError::MissingValue(key.to_owned()))
        };
        match &self.auth {
            Auth::Header(list) => {
                for (name, template) in list {
                    headers.push((name.clone(), SecretString::from(template.render(values)?)));
                }
            }
            Auth::Basic { username, password } => {
                let user = Zeroizing::new(username.render(values)?);
                let pass = Zeroizing::new(password.render(values)?);
                headers.push(("Authorization".to_owned(), basic(&user, &pass)));
            }
            Auth::Bearer { token } => {
                let token = Zeroizing::new(token.render(values)?);
                headers.push((
                    "Authorization".to_owned(),
                    SecretString::from(format!("Bearer {}", token.as_str())),
                ));
            }
            Auth::Query { param, value } => {
                query = Some((param.clone(), SecretString::from(value.render(values)?)));
            }
            Auth::Custom => {
                let secret = need("secret")?;
                match need("auth_type")? {
                    "header" => {
                        let name = need("header_name")?;
                        let template = values.value("value_template").unwrap_or("{secret}");
                        headers.push((
                            name.to_owned(),
                            SecretString::from(template.replace("{secret}", secret)),
                        ));
                    }
                    "basic" => {
                        headers.push(("Authorization".to_owned(), basic(need("username")?, secret)))
                    }
                    "bearer" => headers.push((
                        "Authorization".to_owned(),
                        SecretString::from(format!("Bearer {secret}")),
                    )),
                    "query" => {
                        let param = need("query_param")?;
                        query = Some((param.to_owned(), SecretString::from(secret.to_owned())));
                    }
                    _ => return Err(RenderError::MissingValue("auth_type".to_owned())),
                }
            }
        }
        let account = match self.rate_limit.as_ref().and_then(|r| r.account.as_ref()) {
            Some(template) => template.render(values).ok(),
            None => base.host_str().map(str::to_owned),
        };
        let query_pair = query.as_ref().map(|(param, value)| {
            let value = value.expose_secret();
            // Room for the longest encoding (three bytes for one), so that no copy is left behind.
            let room = 3 * (param.len() + value.len()) + 1;
            let mut pair = url::form_urlencoded::Serializer::new(String::with_capacity(room));
            pair.append_pair(param, value);
            SecretString::from(pair.finish())
        });
        Ok(PreparedAuth {
            base,
            headers,
            query,
            query_pair,
            account,
            trusted_host: self.base_overridden,
        })
    }

    /// Which provider account a credential draws on, for shared rate limits (e.g. an Aircall
    /// company's API ID). Falls back to the whole base URL's host.
    pub fn account_key(&self, values: &dyn FieldValues) -> Option<String> {
        match self.rate_limit.as_ref().and_then(|r| r.account.as_ref()) {
            Some(template) => template.render(values).ok(),
            None => self
                .base_url(values)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned)),
        }
    }
}

/// A credential's base URL and auth, rendered (see [`Provider::prepare`]). Holds secrets: never
/// printed, zeroized when dropped.
pub struct PreparedAuth {
    base: Url,
    headers: Vec<(String, SecretString)>,
    /// A query-parameter secret: the parameter and its value.
    query: Option<(String, SecretString)>,
    /// The same, form-encoded as `param=value` (as [`PreparedAuth::request`] appends it).
    query_pair: Option<SecretString>,
    account: Option<String>,
    trusted_host: bool,
}

impl std::fmt::Debug for PreparedAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PreparedAuth([redacted])")
    }
}

impl PreparedAuth {
    /// One request: the method, the path and query joined to the base URL (path tricks refused),
    /// the auth.
    pub fn request(
        &self,
        method: &str,
        path_and_query: &str,
    ) -> Result<OutboundRequest, RenderError> {
        let mut url = join_path(&self.base, path_and_query)?;
        if let Some((param, value)) = &self.query {
            url.query_pairs_mut()
                .append_pair(param, value.expose_secret());
        }
        Ok(OutboundRequest {
            method: method.to_ascii_uppercase(),
            url,
            query_secret: self.query.as_ref().map(|(param, _)| param.clone()),
            headers: self.headers.clone(),
            trusted_host: self.trusted_host,
        })
    }

    /// Which provider account the credential draws on (as [`Provider::account_key`]).
    pub fn account_key(&self) -> Option<&str> {
        self.account.as_deref()
    }

    /// The base URL: its scheme and authority are every request's (see
    /// [`PreparedAuth::path_and_query`]).
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// The auth headers, as [`PreparedAuth::request`] gives them.
    pub fn headers(&self) -> &[(String, SecretString)] {
        &self.headers
    }

    /// Whether the provider takes the secret in the query, so that paths and queries from
    /// [`PreparedAuth::path_and_query`] hold it.
    pub fn has_query_secret(&self) -> bool {
        self.query.is_some()
    }

    /// Whether the host is the operator's (as [`OutboundRequest::trusted_host`]).
    pub fn trusted_host(&self) -> bool {
        self.trusted_host
    }

    /// The path and query of the URL [`PreparedAuth::request`] builds for the same input, the
    /// query-parameter secret included — the same text (a test and the `proxy_path` fuzz target
    /// compare them), built without parsing a URL: what the proxy sends for each request, after
    /// the base URL's scheme and authority. The same paths are refused.
    pub fn path_and_query(&self, path_and_query: &str) -> Result<Zeroizing<String>, RenderError> {
        if !matches!(self.base.scheme(), "http" | "https") {
            // Other schemes encode differently; the proxy refuses them before sending anyway.
            let request = self.request("GET", path_and_query)?;
            return Ok(Zeroizing::new(
                request.url[url::Position::BeforePath..].to_owned(),
            ));
        }
        check_path(path_and_query)?;
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q).filter(|q| !q.is_empty())),
            None => (path_and_query, None),
        };
        let under = self.base.path().trim_end_matches('/');
        let secret = self.query_pair.as_ref().map(ExposeSecret::expose_secret);
        let mut out = String::with_capacity(
            under.len()
                + path.len()
                + query.map_or(0, |q| q.len() + 1)
                + secret.map_or(0, |s| s.len() + 1),
        );
        out.push_str(under);
        out.extend(percent_encoding::utf8_percent_encode(path, URL_PATH));
        if let Some(query) = query {
            out.push('?');
            out.extend(percent_encoding::utf8_percent_encode(query, URL_QUERY));
        }
        if let Some(secret) = secret {
            out.push(if query.is_some() { '&' } else { '?' });
            out.push_str(secret);
        }
        Ok(Zeroizing::new(out))
    }
}

/// What the `url` crate percent-encodes in an http(s) URL's path and query (its `PATH` and
/// `SPECIAL_QUERY` sets, from the WHATWG URL standard), for [`PreparedAuth::path_and_query`].
const URL_PATH: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'#')
    .add(b'?')
    .add(b'{')
    .add(b'}');
const URL_QUERY: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'\'');

fn basic(user: &str, pass: &str) -> SecretString {
    let joined = Zeroizing::new(format!("{user}:{pass}"));
    let encoded =
        Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(joined.as_bytes()));
    SecretString::from(format!("Basic {}", encoded.as_str()))
}

/// Refuse paths that could change what is addressed: control characters, spaces, backslashes,
/// fragments, empty segments (`//host`), `.`/`..` segments (also percent-encoded) and encoded slashes.
pub(crate) fn check_path(path_and_query: &str) -> Result<(), RenderError> {
    // ASCII (most paths) byte by byte: its control characters and whitespace are those up to the
    // space, and DEL.
    let has_refused = if path_and_query.is_ascii() {
        path_and_query
            .bytes()
            .any(|b| b <= b' ' || b == 0x7f || b == b'\\' || b == b'#')
    } else {
        path_and_query
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\' || c == '#')
    };
    if has_refused {
        return Err(RenderError::InvalidPath(
            "has a control character, space, backslash or #",
        ));
    }
    let path = path_and_query
        .split_once('?')
        .map_or(path_and_query, |(path, _)| path);
    if !path.starts_with('/') {
        return Err(RenderError::InvalidPath("must start with /"));
    }
    // One pass over the segments. An empty one before the end (`//`) is refused first, wherever
    // it is; otherwise the first segment refused gives the error.
    let bytes = path.as_bytes();
    let mut refused_segment = None;
    let mut start = 1;
    for end in 1..=bytes.len() {
        if end < bytes.len() && bytes[end] != b'/' {
            continue;
        }
        if start == end && end < bytes.len() {
            return Err(RenderError::InvalidPath("has an empty segment (//)"));
        }
        if refused_segment.is_none() {
            refused_segment = check_segment(&path[start..end]).err();
        }
        start = end + 1;
    }
    refused_segment.map_or(Ok(()), Err)
}

/// A path segment is not `.` or `..`, also percent-encoded, and hides no slash or control
/// character behind a percent sign.
fn check_segment(segment: &str) -> Result<(), RenderError> {
    if segment == "." || segment == ".." {
        return Err(RenderError::InvalidPath("has a . or .. segment"));
    }
    // What the first check let through can hide only behind a percent sign.
    if !segment.as_bytes().contains(&b'%') {
        return Ok(());
    }
    let decoded = percent_decode(segment);
    if decoded == "." || decoded == ".." {
        return Err(RenderError::InvalidPath("has a . or .. segment"));
    }
    if decoded.contains(['/', '\\']) || decoded.chars().any(char::is_control) {
        return Err(RenderError::InvalidPath(
            "has an encoded slash or control character",
        ));
    }
    Ok(())
}

/// Append a path (and query) to a base URL so that the result stays on the base's scheme, host
/// and port, whatever the path holds.
pub fn join_path(base: &Url, path_and_query: &str) -> Result<Url, RenderError> {
    check_path(path_and_query)?;
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    };
    let mut url = base.clone();
    let under = base.path().trim_end_matches('/');
    let mut joined = String::with_capacity(under.len() + path.len());
    joined.push_str(under);
    joined.push_str(path);
    url.set_path(&joined);
    url.set_query(query.filter(|q| !q.is_empty()));
    url.set_fragment(None);
    if url.scheme() != base.scheme()
        || url.host_str() != base.host_str()
        || url.port_or_known_default() != base.port_or_known_default()
        || url.username() != base.username()
    {
        return Err(RenderError::HostChanged);
    }
    Ok(url)
}

fn percent_decode(segment: &str) -> std::borrow::Cow<'_, str> {
    if !segment.contains('%') {
        return std::borrow::Cow::Borrowed(segment);
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    std::borrow::Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `check_path`'s rules read plainly, one after another (how it was first written): the
    /// reference its one pass is held to.
    fn check_path_plainly(path_and_query: &str) -> Result<(), RenderError> {
        if path_and_query
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\' || c == '#')
        {
            return Err(RenderError::InvalidPath(
                "has a control character, space, backslash or #",
            ));
        }
        let path = path_and_query
            .split_once('?')
            .map_or(path_and_query, |(path, _)| path);
        if !path.starts_with('/') {
            return Err(RenderError::InvalidPath("must start with /"));
        }
        if path.contains("//") {
            return Err(RenderError::InvalidPath("has an empty segment (//)"));
        }
        for segment in path.split('/').skip(1) {
            let decoded = percent_decode(segment);
            if decoded == "." || decoded == ".." {
                return Err(RenderError::InvalidPath("has a . or .. segment"));
            }
            if decoded.contains(['/', '\\']) || decoded.chars().any(char::is_control) {
                return Err(RenderError::InvalidPath(
                    "has an encoded slash or control character",
                ));
            }
        }
        Ok(())
    }

    #[test]
    fn check_path_gives_what_its_rules_read_plainly_give() {
        // Every path of up to five characters after the first slash, from characters that make
        // the rules' cases: separators, dots, percent escapes (of `.`, `/` and a control
        // character), the query mark, refused characters and one beyond ASCII.
        let alphabet = [
            '/', '.', '%', '2', 'e', 'F', '0', '?', 'a', ' ', '\u{1}', 'é',
        ];
        let mut paths = vec![String::from("/")];
        let mut checked = 0;
        for _ in 0..5 {
            let mut longer = Vec::with_capacity(paths.len() * alphabet.len());
            for path in &paths {
                for c in alphabet {
                    let mut next = path.clone();
                    next.push(c);
                    let ours = check_path(&next).map_err(|e| e.to_string());
                    let plain = check_path_plainly(&next).map_err(|e| e.to_string());
                    assert_eq!(ours, plain, "{next:?}");
                    checked += 1;
                    longer.push(next);
                }
            }
            paths = longer;
        }
        for path in [
            "",
            "a",
            "?/",
            "/v3/calls?x=/../",
            "/a%2F",
            "/%2e%2E/x",
            "/%00",
            "/\u{85}",
        ] {
            let ours = check_path(path).map_err(|e| e.to_string());
            assert_eq!(
                ours,
                check_path_plainly(path).map_err(|e| e.to_string()),
                "{path:?}"
            );
        }
        assert!(checked > 200_000, "{checked}");
    }
}
