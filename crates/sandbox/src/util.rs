//! Small helpers shared by the provider modules.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Constant-time equality for secrets: a length check, then an XOR-fold over
/// every byte (no early exit on the first difference).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// What the `Authorization` header of a request holds.
pub(crate) enum Authorization<'a> {
    /// No `Authorization` header at all.
    Missing,
    /// More than one `Authorization` header, or a value that is not visible ASCII.
    Malformed,
    /// Exactly one header with this raw value.
    Value(&'a [u8]),
}

pub(crate) fn authorization(headers: &HeaderMap) -> Authorization<'_> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    match (values.next(), values.next()) {
        (None, _) => Authorization::Missing,
        (Some(v), None) => Authorization::Value(v.as_bytes()),
        (Some(_), Some(_)) => Authorization::Malformed,
    }
}

/// Decode an HTTP Basic `Authorization` value into (username, password).
/// The scheme is case-insensitive; the payload must be standard, padded base64
/// of `username:password`. Anything else is `None`.
pub(crate) fn parse_basic(value: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let value = std::str::from_utf8(value).ok()?;
    let (scheme, payload) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(payload.trim()).ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let password = decoded[colon + 1..].to_vec();
    let mut username = decoded;
    username.truncate(colon);
    Some((username, password))
}

/// A JSON response with the given status and content type.
pub(crate) fn json_response(
    status: StatusCode,
    content_type: &'static str,
    body: &serde_json::Value,
) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// `application/json` response.
pub(crate) fn json(status: StatusCode, body: &serde_json::Value) -> Response {
    json_response(status, "application/json; charset=utf-8", body)
}

/// The status's reason phrase, or a generic one for unregistered codes.
pub(crate) fn reason(status: StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("Error")
}

/// `http://HOST` of the request, from its `Host` header: links in answers
/// point back at the sandbox port the client used.
pub(crate) fn origin(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// An absolute link to `path` on the request's origin with the request's raw
/// query pairs, except that `set` pairs (first, in order) replace any pair of
/// the same name. Pairs are kept exactly as the client encoded them.
pub(crate) fn link(
    headers: &HeaderMap,
    path: &str,
    raw_query: Option<&str>,
    set: &[(&str, String)],
) -> String {
    let mut pairs: Vec<String> = set.iter().map(|(k, v)| format!("{k}={v}")).collect();
    for pair in raw_query.unwrap_or("").split('&') {
        let key = pair.split('=').next().unwrap_or("");
        if !pair.is_empty() && !set.iter().any(|(k, _)| *k == key) {
            pairs.push(pair.to_owned());
        }
    }
    format!("{}{path}?{}", origin(headers), pairs.join("&"))
}

/// A query parameter parsed as a number: `Ok(default)` when absent,
/// `Err(())` when present but not a non-negative integer.
pub(crate) fn number<T: std::str::FromStr>(
    query: &std::collections::HashMap<String, String>,
    key: &str,
    default: T,
) -> Result<T, ()> {
    match query.get(key) {
        None => Ok(default),
        Some(v) if v.bytes().all(|b| b.is_ascii_digit()) && !v.is_empty() => {
            v.parse().map_err(|_| ())
        }
        Some(_) => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_replace_paging_and_keep_the_rest() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:9"));
        assert_eq!(
            link(
                &headers,
                "/v1/calls",
                Some("page=1&from=5&per_page=50&order=desc"),
                &[("page", "2".into()), ("per_page", "50".into())]
            ),
            "http://127.0.0.1:9/v1/calls?page=2&per_page=50&from=5&order=desc"
        );
        assert_eq!(
            link(&HeaderMap::new(), "/x", None, &[("page", "3".into())]),
            "http://localhost/x?page=3"
        );
        let q: std::collections::HashMap<String, String> = [
            ("a".to_owned(), "12".to_owned()),
            ("b".to_owned(), "-1".to_owned()),
        ]
        .into_iter()
        .collect();
        assert_eq!(number(&q, "a", 0usize), Ok(12));
        assert_eq!(number(&q, "b", 0usize), Err(()));
        assert_eq!(number(&q, "c", 7usize), Ok(7));
    }

    #[test]
    fn ct_eq_compares_whole_values() {
        assert!(ct_eq(b"secret", b"secret"));
        assert!(ct_eq(b"", b""));
        assert!(!ct_eq(b"secret", b"secreT"));
        assert!(!ct_eq(b"Secret", b"secret"));
        assert!(!ct_eq(b"secret", b"secret1"));
        assert!(!ct_eq(b"secret", b""));
    }

    #[test]
    fn parse_basic_accepts_only_well_formed_basic() {
        let v = format!("Basic {}", STANDARD.encode("id:to:ken"));
        let (u, p) = parse_basic(v.as_bytes()).unwrap();
        assert_eq!((u.as_slice(), p.as_slice()), (&b"id"[..], &b"to:ken"[..]));
        let lower = format!("basic {}", STANDARD.encode("id:tok"));
        assert!(parse_basic(lower.as_bytes()).is_some());
        let empty = format!("Basic {}", STANDARD.encode(":"));
        assert_eq!(parse_basic(empty.as_bytes()), Some((vec![], vec![])));
        assert!(parse_basic(format!("Bearer {}", STANDARD.encode("id:tok")).as_bytes()).is_none());
        assert!(parse_basic(format!("Basic {}", STANDARD.encode("idtok")).as_bytes()).is_none());
        assert!(parse_basic(b"Basic !!!").is_none());
        assert!(parse_basic(b"Basic").is_none());
    }
}
