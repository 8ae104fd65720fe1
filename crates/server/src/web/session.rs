//! The web page's session: a cookie sealed with the master key ring (AES-256-GCM envelope, bound
//! to its purpose) that carries a random session id, the workspace, the API credential token the
//! person signed in with, a cross-site request forgery token and an expiry. The server keeps only
//! the ids of sessions signed out (in the store, until they would have expired), so several
//! instances behind one database share sessions and all refuse a signed-out one; every request
//! authenticates the token again through core, so disabling, regenerating or deleting the API
//! credential ends the session within the authentication cache's few seconds (at once on the
//! instance that made the change).

use crate::AppState;
use crate::extract::RequestInfo;
use axum::http::{HeaderMap, HeaderValue, header, request::Parts};
use base64::Engine as _;
use latchkey_core::{Actor, AuthFailure, Principal};
use latchkey_vault::{Binding, KeyRing, Secret};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The cookie's name.
pub const COOKIE: &str = "latchkey_session";
/// How long a session lasts from sign-in.
pub const LIFETIME: Duration = Duration::from_secs(8 * 60 * 60);

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// What the sealed cookie carries. The token never leaves the server unsealed.
pub struct Session {
    /// Random, fixed for the session's life (kept when the token is regenerated): what signing
    /// out records as ended.
    pub id: String,
    pub workspace: String,
    pub token: Secret,
    /// The cross-site request forgery token every form of this session carries.
    pub csrf: String,
    /// Seconds since the epoch.
    pub expires: u64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("workspace", &self.workspace)
            .field("token", &"[redacted]")
            .field("csrf", &"[redacted]")
            .field("expires", &self.expires)
            .finish()
    }
}

fn binding() -> Binding {
    Binding::new("latchkey-web", "session-cookie", 1)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Fresh random bytes, base64url: CSRF tokens and form nonces.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random number generator works");
    B64.encode(bytes)
}

/// Constant-time equality of two strings.
pub fn same(a: &str, b: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

impl Session {
    pub fn new(workspace: String, token: Secret) -> Session {
        Session {
            id: random_token(),
            workspace,
            token,
            csrf: random_token(),
            expires: now_secs() + LIFETIME.as_secs(),
        }
    }

    /// The cookie value: the sealed fields, base64url.
    pub fn seal(&self, ring: &KeyRing) -> Option<String> {
        let plain = zeroize::Zeroizing::new(format!(
            "v2\n{}\n{}\n{}\n{}\n{}",
            self.expires,
            self.id,
            self.workspace,
            self.csrf,
            self.token.expose()
        ));
        match ring.seal(&binding(), plain.as_bytes()) {
            Ok(sealed) => Some(B64.encode(sealed)),
            Err(e) => {
                tracing::error!(error = %e, "could not seal a session cookie");
                None
            }
        }
    }

    /// Open a cookie value; `None` when it was not sealed by this key ring, is malformed, has
    /// expired, or is of the first version (which had no id, so could not be signed out).
    pub fn open(ring: &KeyRing, value: &str) -> Option<Session> {
        let sealed = B64.decode(value).ok()?;
        let plain = ring.open(&binding(), &sealed).ok()?;
        let text = std::str::from_utf8(plain.expose()).ok()?;
        let mut parts = text.splitn(6, '\n');
        if parts.next()? != "v2" {
            return None;
        }
        let expires: u64 = parts.next()?.parse().ok()?;
        let id = parts.next()?.to_owned();
        let workspace = parts.next()?.to_owned();
        let csrf = parts.next()?.to_owned();
        let token = Secret::new(parts.next()?);
        if expires <= now_secs() {
            return None;
        }
        Some(Session {
            id,
            workspace,
            token,
            csrf,
            expires,
        })
    }

    /// `Set-Cookie` for this session: HttpOnly, SameSite=Strict, Path=/, expiring with the
    /// session, and Secure when the page was reached over https.
    pub fn set_cookie(&self, value: &str, secure: bool) -> HeaderValue {
        let max_age = self.expires.saturating_sub(now_secs());
        let secure = if secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
        ))
        .expect("base64url is a valid header value")
    }
}

/// `Set-Cookie` that removes the session.
pub fn clear_cookie(secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{secure}"
    ))
    .expect("a valid header value")
}

/// The session cookie's value in a request, if any.
pub fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty())
}

/// Whether the page was reached over https (directly or through a TLS-terminating proxy that
/// says so). Only ever adds `Secure`, which a plain-http attacker cannot turn to their profit.
pub fn is_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
        || headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("https://"))
}

/// End `session` on every instance: record its id as revoked until it would have expired.
pub async fn revoke(state: &AppState, session: &Session) -> latchkey_core::Result<()> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    let expires_ms = i64::try_from(session.expires)
        .unwrap_or(i64::MAX / 1000)
        .saturating_mul(1000);
    state
        .lk
        .repository()
        .revoke_session(&session.id, expires_ms, now_ms)
        .await?;
    Ok(())
}

/// A signed-in person: who they are (authenticated again on this request) and their session.
#[derive(Debug)]
pub struct WebUser {
    pub principal: std::sync::Arc<Principal>,
    pub actor: Actor,
    pub session: Session,
}

impl WebUser {
    pub fn workspace(&self) -> &str {
        &self.principal.workspace
    }
}

/// Why there is no signed-in person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoSession {
    /// No cookie: never signed in (or signed out).
    Absent,
    /// A cookie that no longer works: expired, not ours, signed out, or its API credential was
    /// disabled, regenerated or deleted.
    Ended,
    /// The database could not be asked.
    Unavailable,
}

/// Authenticate the request's session through core.
pub async fn current(parts: &Parts, state: &AppState) -> Result<WebUser, NoSession> {
    let value = cookie_value(&parts.headers).ok_or(NoSession::Absent)?;
    let session = Session::open(&state.lk.key_ring(), value).ok_or(NoSession::Ended)?;
    match state.lk.repository().session_revoked(&session.id).await {
        Ok(false) => {}
        Ok(true) => return Err(NoSession::Ended),
        Err(e) => {
            tracing::warn!(error = %e, "could not check whether a web session was signed out");
            return Err(NoSession::Unavailable);
        }
    }
    match state
        .lk
        .authenticate(Some(&session.workspace), session.token.expose())
        .await
    {
        Ok(principal) => {
            let info = RequestInfo::from_parts(parts);
            let actor = principal.actor().with_request(info.request_id, info.client);
            Ok(WebUser {
                principal,
                actor,
                session,
            })
        }
        Err(AuthFailure::Unavailable) => Err(NoSession::Unavailable),
        Err(failure) => {
            tracing::info!(reason = failure.as_str(), "a web session ended");
            Err(NoSession::Ended)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_vault::MasterKey;

    #[test]
    fn a_sealed_session_opens_only_with_its_ring_and_hides_the_token() {
        let ring = KeyRing::new(MasterKey::generate());
        let token = "lkt_exampleexampleexampleexample0000000";
        let s = Session::new("default".into(), Secret::new(token));
        let value = s.seal(&ring).unwrap();
        assert!(!value.contains(token));
        let opened = Session::open(&ring, &value).unwrap();
        assert_eq!(opened.id, s.id);
        assert_ne!(
            opened.id,
            Session::new("default".into(), Secret::new(token)).id
        );
        assert_eq!(opened.workspace, "default");
        assert_eq!(opened.token.expose(), token);
        assert_eq!(opened.csrf, s.csrf);
        let other = KeyRing::new(MasterKey::generate());
        assert!(Session::open(&other, &value).is_none());
        let mut tampered = value.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(Session::open(&ring, std::str::from_utf8(&tampered).unwrap()).is_none());
        assert!(!format!("{s:?}").contains(token));
    }

    #[test]
    fn a_first_version_cookie_without_an_id_does_not_open() {
        let ring = KeyRing::new(MasterKey::generate());
        let expires = now_secs() + 60;
        let plain = format!("v1\n{expires}\ndefault\ncsrf\nlkt_x");
        let sealed = ring.seal(&binding(), plain.as_bytes()).unwrap();
        assert!(Session::open(&ring, &B64.encode(sealed)).is_none());
    }

    #[test]
    fn an_expired_session_does_not_open() {
        let ring = KeyRing::new(MasterKey::generate());
        let mut s = Session::new("default".into(), Secret::new("lkt_x"));
        s.expires = now_secs() - 1;
        let value = s.seal(&ring).unwrap();
        assert!(Session::open(&ring, &value).is_none());
    }

    #[test]
    fn cookie_attributes() {
        let s = Session::new("default".into(), Secret::new("lkt_x"));
        let c = s.set_cookie("abc", false);
        let c = c.to_str().unwrap();
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Max-Age="));
        assert!(!c.contains("Secure"));
        assert!(
            s.set_cookie("abc", true)
                .to_str()
                .unwrap()
                .ends_with("; Secure")
        );
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; latchkey_session=xyz; c=d"),
        );
        assert_eq!(cookie_value(&h), Some("xyz"));
    }
}
