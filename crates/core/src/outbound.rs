//! The hardened outbound HTTP clients: one for verification (reqwest, the whole answer read), one
//! for the proxy (hyper's client connections, kept per thread by `pool`; the answer streamed),
//! with the same guard:
//!
//! - connect and total (verification) or first-byte and idle (proxy) timeouts, a fixed User-Agent;
//! - `HTTP(S)_PROXY` from the environment is ignored;
//! - redirects are never followed (so credentials never ride one);
//! - only `https`, or `http` to a host the operator configured;
//! - every address a name resolves to is checked, and the connection goes to the checked
//!   address: loopback, private, link-local, metadata and other non-global addresses are refused
//!   unless the request goes to a base URL the operator configured (an override).

mod pool;

pub use pool::close_idle_connections;

use bytes::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use latchkey_catalog::OutboundRequest;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::ExposeSecret;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

pub const USER_AGENT: &str = concat!("latchkey/", env!("CARGO_PKG_VERSION"));

/// The largest answer body verification reads.
const MAX_BODY: usize = 1 << 20;

#[derive(Debug, Clone)]
pub struct OutboundConfig {
    pub connect_timeout: Duration,
    /// Verification: the whole exchange.
    pub timeout: Duration,
    /// Proxy: until the provider's answer starts.
    pub first_byte_timeout: Duration,
    /// Proxy: the longest pause while a body streams.
    pub idle_timeout: Duration,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(15),
            first_byte_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30),
        }
    }
}

/// Why a request was not answered. Never holds a URL (it may carry a query secret) or a header.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OutboundError {
    #[error("refused by the address guard: {0}")]
    Refused(String),
    #[error("no answer within {0} s")]
    Timeout(u64),
    #[error("could not connect: {0}")]
    Connect(String),
    #[error("the exchange failed: {0}")]
    Other(String),
}

/// A provider's answer, read in full (up to 1 MiB).
#[derive(Debug)]
pub struct OutboundResponse {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl OutboundResponse {
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A proxied request's body, as the caller sends it (a buffered one is sent as one chunk).
pub type ProxyRequestBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// A provider's answer to a proxied request: the status and headers, and the body as it streams
/// in, each pause bounded by the idle timeout.
pub type ProxyResponse = hyper::Response<pool::PooledBody>;

/// A credential's provider as the proxy sends to it, rendered once for each prepared credential
/// rather than for each request: the base URL's scheme and authority, and the auth headers as
/// header values (secret: their bytes are zeroized once the last request holding them is done).
pub struct ProxyBase {
    base: url::Url,
    trusted: bool,
    /// The base URL's scheme, authority and `Host` header, or why it is no request target.
    origin: Result<Origin, OutboundError>,
    headers: Result<Vec<(HeaderName, HeaderValue)>, OutboundError>,
    /// Whether paths carry a secret (a query parameter) to zeroize too.
    secret_in_query: bool,
}

/// Where a credential's provider is: its scheme and authority, and the `Host` header requests to
/// it carry (the host, with the port unless it is the scheme's default, never a user).
#[derive(Clone)]
struct Origin {
    scheme: hyper::http::uri::Scheme,
    authority: hyper::http::uri::Authority,
    host: HeaderValue,
}

impl Origin {
    fn of(base: &url::Url) -> Option<Origin> {
        let parts = base.as_str().parse::<hyper::Uri>().ok()?.into_parts();
        let (scheme, authority) = (parts.scheme?, parts.authority?);
        let text = authority.as_str();
        let default_port = match scheme.as_str() {
            "https" => Some(443),
            "http" => Some(80),
            _ => None,
        };
        let host = match authority.port_u16() {
            Some(port) if Some(port) != default_port => text
                .rsplit_once('@')
                .map_or(text, |(_, host_and_port)| host_and_port),
            _ => authority.host(),
        };
        let host = HeaderValue::from_str(host).ok()?;
        Some(Origin {
            scheme,
            authority,
            host,
        })
    }
}

/// One proxied request's method and target (see [`ProxyBase::target`]).
pub struct ProxyTarget<'a> {
    base: &'a ProxyBase,
    method: hyper::Method,
    origin: Origin,
    path_and_query: hyper::http::uri::PathAndQuery,
}

#[cfg(test)]
impl ProxyTarget<'_> {
    /// The full target: the base's scheme and authority, then the path and query.
    fn uri(&self) -> hyper::Uri {
        let mut parts = hyper::http::uri::Parts::default();
        parts.scheme = Some(self.origin.scheme.clone());
        parts.authority = Some(self.origin.authority.clone());
        parts.path_and_query = Some(self.path_and_query.clone());
        hyper::Uri::from_parts(parts).expect("a scheme, an authority and a path make a URI")
    }
}

/// Bytes zeroized when the last [`Bytes`] sharing them is dropped.
struct Zeroed(zeroize::Zeroizing<Vec<u8>>);

impl AsRef<[u8]> for Zeroed {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

fn zeroed(bytes: Vec<u8>) -> Bytes {
    Bytes::from_owner(Zeroed(zeroize::Zeroizing::new(bytes)))
}

impl ProxyBase {
    pub fn new(auth: &latchkey_catalog::PreparedAuth) -> ProxyBase {
        let origin = Origin::of(auth.base()).ok_or_else(invalid_target);
        let headers = auth
            .headers()
            .iter()
            .map(|(name, value)| {
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| OutboundError::Other("invalid header name".to_owned()))?;
                let bytes = zeroed(value.expose_secret().as_bytes().to_vec());
                let mut value = HeaderValue::from_maybe_shared(bytes).map_err(|_| {
                    OutboundError::Other(format!(
                        "the value for header {name} is not a valid header value"
                    ))
                })?;
                value.set_sensitive(true);
                Ok((name, value))
            })
            .collect();
        ProxyBase {
            base: auth.base().clone(),
            trusted: auth.trusted_host(),
            origin,
            headers,
            secret_in_query: auth.has_query_secret(),
        }
    }

    /// The target of one request: `method`, and a path and query from
    /// [`latchkey_catalog::PreparedAuth::path_and_query`] after the base URL's scheme and
    /// authority. Refused as the address guard and the catalog's checks would refuse it.
    pub fn target(
        &self,
        method: &hyper::Method,
        mut path_and_query: zeroize::Zeroizing<String>,
    ) -> Result<ProxyTarget<'_>, OutboundError> {
        check_base(&self.base, self.trusted)?;
        if let Err(e) = &self.headers {
            return Err(e.clone());
        }
        let method = if method.as_str().bytes().any(|b| b.is_ascii_lowercase()) {
            hyper::Method::from_bytes(method.as_str().to_ascii_uppercase().as_bytes())
                .map_err(|_| OutboundError::Other("invalid method".to_owned()))?
        } else {
            method.clone()
        };
        let origin = self.origin.clone()?;
        let bytes = if self.secret_in_query {
            zeroed(std::mem::take(&mut *path_and_query).into_bytes())
        } else {
            Bytes::from(std::mem::take(&mut *path_and_query))
        };
        let path_and_query = hyper::http::uri::PathAndQuery::from_maybe_shared(bytes)
            .map_err(|_| invalid_target())?;
        if !path_and_query.as_str().starts_with('/') {
            return Err(invalid_target());
        }
        Ok(ProxyTarget {
            base: self,
            method,
            origin,
            path_and_query,
        })
    }
}

fn invalid_target() -> OutboundError {
    OutboundError::Other("the rendered address is not a valid request target".to_owned())
}

/// The scheme and, for an address literal, the address a request may go to: https, or http to a
/// host the operator configured; a literal address only when it is public, or the operator's.
fn check_base(url: &url::Url, trusted: bool) -> Result<(), OutboundError> {
    match url.scheme() {
        "https" => {}
        "http" if trusted => {}
        "http" => {
            return Err(OutboundError::Refused(
                "plain http is allowed only to a host the operator configured".to_owned(),
            ));
        }
        other => {
            return Err(OutboundError::Refused(format!(
                "the scheme {other} is never used"
            )));
        }
    }
    if let Some(ip) = literal_address(url)
        && !trusted
        && !is_global(ip)
    {
        return Err(OutboundError::Refused(format!(
            "{ip} is not a public address"
        )));
    }
    Ok(())
}

type ProxyConnector = hyper_rustls::HttpsConnector<HttpConnector<GuardedDns>>;

/// Tells apart the proxy connections of different `Outbound`s on one thread.
static NEXT_OUTBOUND: AtomicU64 = AtomicU64::new(0);

/// Two clients with the same hardening: `strict` refuses non-global addresses; `operator` is used
/// only for requests whose base URL the operator configured (an override), and may reach them.
/// The proxy's pair is built on each thread from the two connectors.
#[derive(Clone)]
pub struct Outbound {
    strict: reqwest::Client,
    operator: reqwest::Client,
    id: u64,
    proxy_strict: ProxyConnector,
    proxy_operator: ProxyConnector,
    config: OutboundConfig,
}

impl Outbound {
    pub fn new(config: OutboundConfig) -> Result<Outbound, OutboundError> {
        Outbound::with_lookup(config, Arc::new(SystemLookup))
    }

    /// The same clients, resolving names through `lookup` (the system resolver in `new`).
    fn with_lookup(
        config: OutboundConfig,
        lookup: Arc<dyn Lookup>,
    ) -> Result<Outbound, OutboundError> {
        let build = |allow_private: bool| {
            reqwest::Client::builder()
                .user_agent(USER_AGENT)
                .connect_timeout(config.connect_timeout)
                .timeout(config.timeout)
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .dns_resolver(Arc::new(GuardedResolver {
                    allow_private,
                    lookup: lookup.clone(),
                }))
                .build()
                .map_err(|e| OutboundError::Other(e.without_url().to_string()))
        };
        let tls = proxy_tls_config()?;
        let connector = |allow_private: bool| {
            let mut http = HttpConnector::new_with_resolver(GuardedDns {
                allow_private,
                lookup: lookup.clone(),
            });
            http.enforce_http(false);
            http.set_connect_timeout(Some(config.connect_timeout));
            http.set_nodelay(true);
            hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls.clone())
                .https_or_http()
                .enable_http1()
                .wrap_connector(http)
        };
        Ok(Outbound {
            strict: build(false)?,
            operator: build(true)?,
            id: NEXT_OUTBOUND.fetch_add(1, Ordering::Relaxed),
            proxy_strict: connector(false),
            proxy_operator: connector(true),
            config,
        })
    }

    pub fn config(&self) -> &OutboundConfig {
        &self.config
    }

    /// The guard's checks that need no resolution: the scheme, and an address literal's address.
    fn check_target(request: &OutboundRequest) -> Result<(), OutboundError> {
        check_base(request.url(), request.trusted_host)
    }

    /// Proxy a request to `target`: those of the caller's headers `forward` allows, its body,
    /// then the provider's auth headers on top. Answers as soon as the provider's status and
    /// headers arrive; the body streams, each pause bounded by the idle timeout. Waiting for the
    /// head is bounded by the first-byte timeout (and by the idle timeout, whichever is shorter).
    pub async fn send_proxied(
        &self,
        target: &ProxyTarget<'_>,
        caller_headers: &HeaderMap,
        forward: &(dyn Fn(&HeaderName) -> bool + Sync),
        body: ProxyRequestBody,
    ) -> Result<ProxyResponse, OutboundError> {
        let auth = target.base.headers.as_deref().unwrap_or_default();
        // Made with room for all, so that it never grows (a clone of the caller's would, at once).
        let mut headers = HeaderMap::with_capacity(caller_headers.len() + auth.len() + 2);
        let (mut user_agent, mut host) = (false, false);
        for (name, value) in caller_headers {
            if forward(name) {
                user_agent |= *name == reqwest::header::USER_AGENT;
                host |= *name == reqwest::header::HOST;
                headers.append(name.clone(), value.clone());
            }
        }
        for (name, value) in auth {
            user_agent |= *name == reqwest::header::USER_AGENT;
            host |= *name == reqwest::header::HOST;
            headers.insert(name.clone(), value.clone());
        }
        if !user_agent {
            headers.insert(
                reqwest::header::USER_AGENT,
                HeaderValue::from_static(USER_AGENT),
            );
        }
        if !host {
            headers.insert(reqwest::header::HOST, target.origin.host.clone());
        }
        let mut outgoing = hyper::Request::new(body);
        *outgoing.method_mut() = target.method.clone();
        // On the wire, the request target is the path and query alone.
        *outgoing.uri_mut() = target.path_and_query.clone().into();
        *outgoing.headers_mut() = headers;
        let head_limit = self.config.first_byte_timeout.min(self.config.idle_timeout);
        let trusted = target.base.trusted;
        let key = pool::PoolKey::new(
            self.id,
            trusted,
            target.origin.scheme.clone(),
            target.origin.authority.clone(),
        );
        let connector = if trusted {
            &self.proxy_operator
        } else {
            &self.proxy_strict
        };
        let sending = pool::send(connector, key, outgoing, self.config.idle_timeout);
        match tokio::time::timeout(head_limit, sending).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(self.classify_proxy(&e)),
            Err(_) => Err(OutboundError::Timeout(head_limit.as_secs().max(1))),
        }
    }

    /// The proxy client's failure, named the same way as verification's.
    fn classify_proxy(&self, e: &pool::SendError) -> OutboundError {
        let (e, is_connect): (&(dyn std::error::Error + 'static), bool) = match e {
            pool::SendError::Connect(e) => (e.as_ref(), true),
            pool::SendError::Exchange(e) => (e, false),
        };
        let mut innermost: &dyn std::error::Error = e;
        let mut source: Option<&dyn std::error::Error> = Some(e);
        while let Some(err) = source {
            if let Some(refused) = err.downcast_ref::<GuardRefusal>() {
                return OutboundError::Refused(refused.0.clone());
            }
            if is_connect
                && err
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
            {
                return OutboundError::Timeout(self.config.connect_timeout.as_secs().max(1));
            }
            innermost = err;
            source = err.source();
        }
        if is_connect {
            return OutboundError::Connect(innermost.to_string());
        }
        OutboundError::Other(innermost.to_string())
    }

    /// Send a rendered request after checking its scheme and, for an address literal, the address.
    pub async fn send(&self, request: &OutboundRequest) -> Result<OutboundResponse, OutboundError> {
        Self::check_target(request)?;
        let url = request.url();
        let trusted = request.trusted_host;
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| OutboundError::Other("invalid method".to_owned()))?;
        let client = if trusted {
            &self.operator
        } else {
            &self.strict
        };
        let mut builder = client.request(method, url.clone());
        for (name, value) in &request.headers {
            let mut value =
                reqwest::header::HeaderValue::from_str(value.expose_secret()).map_err(|_| {
                    OutboundError::Other(format!(
                        "the value for header {name} is not a valid header value"
                    ))
                })?;
            value.set_sensitive(true);
            builder = builder.header(name.as_str(), value);
        }
        let response = builder
            .send()
            .await
            .map_err(|e| self.classify(e, self.config.timeout))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let mut body = Vec::new();
        let mut response = response;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.classify(e, self.config.timeout))?
        {
            let room = MAX_BODY.saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if room <= chunk.len() {
                break;
            }
        }
        Ok(OutboundResponse {
            status,
            headers,
            body,
        })
    }

    /// `timeout` is the limit that a timeout other than connecting's ran into (the whole exchange
    /// for verification, the idle pause for the proxy), so the message names the real one.
    fn classify(&self, e: reqwest::Error, timeout: Duration) -> OutboundError {
        let e = e.without_url();
        if e.is_timeout() {
            let limit = if e.is_connect() {
                self.config.connect_timeout
            } else {
                timeout
            };
            return OutboundError::Timeout(limit.as_secs().max(1));
        }
        // The guard's refusal arrives as a connect error whose source is our message.
        let mut source: Option<&dyn std::error::Error> = Some(&e);
        while let Some(err) = source {
            if let Some(refused) = err.downcast_ref::<GuardRefusal>() {
                return OutboundError::Refused(refused.0.clone());
            }
            source = err.source();
        }
        if e.is_connect() {
            let detail = std::error::Error::source(&e)
                .map(|s| s.to_string())
                .unwrap_or_else(|| "connection failed".to_owned());
            return OutboundError::Connect(detail);
        }
        OutboundError::Other(e.to_string())
    }
}

fn literal_address(url: &url::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

#[derive(Debug)]
struct GuardRefusal(String);

impl std::fmt::Display for GuardRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GuardRefusal {}

type LookupFuture = Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send>>;

/// Where the guard gets a name's addresses: the system resolver, or a scripted one in tests.
trait Lookup: Send + Sync {
    fn lookup(&self, host: String) -> LookupFuture;
}

struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, host: String) -> LookupFuture {
        Box::pin(async move { Ok(tokio::net::lookup_host((host.as_str(), 0)).await?.collect()) })
    }
}

/// Resolves a name once per connection and checks every address of that answer; the client
/// connects to exactly the addresses handed over here, so a second DNS answer (rebinding)
/// cannot slip past the check. An answer holding any address that is not public is refused
/// whole, even if it also holds a public one.
struct GuardedResolver {
    allow_private: bool,
    lookup: Arc<dyn Lookup>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let checked = checked_addresses(
            self.allow_private,
            self.lookup.as_ref(),
            name.as_str().to_owned(),
        );
        Box::pin(async move {
            let addrs: Addrs = Box::new(checked.await?.into_iter());
            Ok(addrs)
        })
    }
}

/// The same guard as the proxy client's resolver.
#[derive(Clone)]
struct GuardedDns {
    allow_private: bool,
    lookup: Arc<dyn Lookup>,
}

impl tower_service::Service<hyper_util::client::legacy::connect::dns::Name> for GuardedDns {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: hyper_util::client::legacy::connect::dns::Name) -> Self::Future {
        let checked = checked_addresses(
            self.allow_private,
            self.lookup.as_ref(),
            name.as_str().to_owned(),
        );
        Box::pin(async move { Ok(checked.await?.into_iter()) })
    }
}

/// One lookup of `host`, every address of its answer checked: the addresses to connect to, or the
/// guard's refusal.
fn checked_addresses(
    allow_private: bool,
    lookup: &dyn Lookup,
    host: String,
) -> impl Future<Output = Result<Vec<SocketAddr>, BoxError>> + Send + 'static {
    let found = lookup.lookup(host.clone());
    async move {
        let found: Vec<SocketAddr> = found.await?;
        let refused = |why: &str| -> Result<Vec<SocketAddr>, BoxError> {
            Err(Box::new(GuardRefusal(format!("{host} {why}"))))
        };
        if found.is_empty() {
            return refused("resolves to no address");
        }
        if !allow_private && found.iter().any(|a| !is_global(a.ip())) {
            return refused(
                "resolves to an address that is not public (loopback, private, link-local or reserved)",
            );
        }
        Ok(found)
    }
}

/// TLS for the proxy client as for verification's: rustls, the platform's certificate verifier.
fn proxy_tls_config() -> Result<rustls::ClientConfig, OutboundError> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| OutboundError::Other(format!("TLS set-up: {e}")))?
        .with_platform_verifier()
        .map_err(|e| OutboundError::Other(format!("TLS set-up: {e}")))
        .map(|builder| builder.with_no_client_auth())
}

/// Whether an address is publicly routable: not loopback, private, link-local (cloud metadata),
/// shared (100.64/10), unspecified, documentation, benchmarking, multicast or reserved.
pub fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_global_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_global_v4(v4);
            }
            is_global_v6(v6)
        }
    }
}

fn is_global_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (b & 0b1100_0000) == 64)
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b & 0xfe) == 18)
        || a >= 240)
}

fn is_global_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] & 0xffc0) == 0xfec0
        || (s[0] == 0x2001 && s[1] == 0x0db8)
        || (s[0] == 0x0064 && s[1] == 0xff9b)
        || (s[0] == 0x2002)
        || (s[0] == 0x2001 && s[1] == 0)
        || ip
            .to_ipv4()
            .is_some_and(|v4| s[0..6] == [0, 0, 0, 0, 0, 0] && !is_global_v4(v4)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::str::FromStr;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A resolver that gives each lookup the next scripted answer, and counts the lookups.
    struct Scripted {
        answers: Mutex<VecDeque<Vec<&'static str>>>,
        lookups: AtomicUsize,
    }

    impl Scripted {
        fn new(answers: &[&[&'static str]]) -> Arc<Scripted> {
            Arc::new(Scripted {
                answers: Mutex::new(answers.iter().map(|a| a.to_vec()).collect()),
                lookups: AtomicUsize::new(0),
            })
        }
    }

    impl Lookup for Scripted {
        fn lookup(&self, _host: String) -> LookupFuture {
            self.lookups.fetch_add(1, Ordering::SeqCst);
            let answer = self.answers.lock().unwrap().pop_front().unwrap_or_default();
            let addrs = answer
                .iter()
                .map(|ip| SocketAddr::new(ip.parse().unwrap(), 0))
                .collect();
            Box::pin(async move { Ok(addrs) })
        }
    }

    /// What the resolver hands the connector for one connection, or the guard's refusal.
    async fn handed(resolver: &GuardedResolver, host: &str) -> Result<Vec<IpAddr>, String> {
        match resolver.resolve(Name::from_str(host).unwrap()).await {
            Ok(addrs) => Ok(addrs.map(|a| a.ip()).collect()),
            Err(e) => Err(e.to_string()),
        }
    }

    #[tokio::test]
    async fn the_connector_gets_the_checked_answer_and_a_rebound_one_is_refused() {
        // The first answer is public, the second (a rebinding attack) is loopback.
        let script = Scripted::new(&[&["93.184.216.34"], &["127.0.0.1"]]);
        let resolver = GuardedResolver {
            allow_private: false,
            lookup: script.clone(),
        };
        let first = handed(&resolver, "api.example.com").await.unwrap();
        assert_eq!(first, ["93.184.216.34".parse::<IpAddr>().unwrap()]);
        assert_eq!(
            script.lookups.load(Ordering::SeqCst),
            1,
            "the check and the connection share one lookup"
        );
        // The next connection resolves again, and the rebound answer is refused, not handed on.
        let second = handed(&resolver, "api.example.com").await.unwrap_err();
        assert!(second.contains("not public"), "{second}");
        assert_eq!(script.lookups.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_answer_mixing_public_and_private_addresses_is_refused_whole() {
        for mixed in [
            &["93.184.216.34", "127.0.0.1"][..],
            &["10.0.0.1", "93.184.216.34"],
            &["2606:4700::1111", "::ffff:127.0.0.1"],
            &["93.184.216.34", "169.254.169.254"],
            &["2606:4700::1111", "fe80::1"],
        ] {
            let resolver = GuardedResolver {
                allow_private: false,
                lookup: Scripted::new(&[mixed]),
            };
            let err = handed(&resolver, "api.example.com").await.unwrap_err();
            assert!(err.contains("not public"), "{mixed:?}: {err}");
        }
        let empty = GuardedResolver {
            allow_private: false,
            lookup: Scripted::new(&[&[]]),
        };
        assert!(handed(&empty, "api.example.com").await.is_err());
        // A host the operator configured may resolve to private addresses: handed on as they are.
        let trusted = GuardedResolver {
            allow_private: true,
            lookup: Scripted::new(&[&["127.0.0.1", "10.0.0.1"]]),
        };
        assert_eq!(handed(&trusted, "gateway.internal").await.unwrap().len(), 2);
    }

    /// The catalog's Chorus verification request, to `base` (an operator's override) if given.
    pub(super) fn chorus_request(base: Option<&str>) -> OutboundRequest {
        let mut catalog = latchkey_catalog::Catalog::builtin().unwrap();
        if let Some(base) = base {
            catalog.override_base_url("chorus", base).unwrap();
        }
        let values: std::collections::BTreeMap<String, String> =
            [("api_token".to_owned(), "tok".to_owned())].into();
        catalog
            .get("chorus")
            .unwrap()
            .verification_request(&values)
            .unwrap()
    }

    /// The catalog's Chorus auth for the token `tok`, with its base URL overridden.
    pub(super) fn chorus_auth(base: &str) -> latchkey_catalog::PreparedAuth {
        let mut catalog = latchkey_catalog::Catalog::builtin().unwrap();
        catalog.override_base_url("chorus", base).unwrap();
        let values: std::collections::BTreeMap<String, String> =
            [("api_token".to_owned(), "tok".to_owned())].into();
        catalog.get("chorus").unwrap().prepare(&values).unwrap()
    }

    /// A one-request-per-connection HTTP server that answers 200 and counts its requests.
    async fn upstream(listener: tokio::net::TcpListener) -> Arc<AtomicUsize> {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = socket
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    )
                    .await;
            }
        });
        hits
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_client_connects_to_the_address_its_one_lookup_answered() {
        // Two loopback listeners on one port: the first answer's and the second answer's.
        let first = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = first.local_addr().unwrap().port();
        let second = tokio::net::TcpListener::bind(("127.0.0.2", port))
            .await
            .unwrap();
        let (first_hits, second_hits) = (upstream(first).await, upstream(second).await);
        let script = Scripted::new(&[&["127.0.0.1"], &["127.0.0.2"]]);
        let outbound = Outbound::with_lookup(OutboundConfig::default(), script.clone()).unwrap();

        let request = chorus_request(Some(&format!("http://rebind.test:{port}")));
        let answer = outbound.send(&request).await.unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(script.lookups.load(Ordering::SeqCst), 1, "one lookup");
        assert_eq!(first_hits.load(Ordering::SeqCst), 1, "to its answer");
        assert_eq!(
            second_hits.load(Ordering::SeqCst),
            0,
            "never to a second one"
        );
    }

    #[test]
    fn proxy_targets_are_checked_as_rendered_requests_are() {
        let file = latchkey_catalog::ProviderFile {
            path: "acme.toml".to_owned(),
            text: "id = \"acme\"\nname = \"Acme\"\nbase_url = \"https://10.1.2.3/api\"\n\
                   [[fields]]\nkey = \"token\"\nlabel = \"Token\"\nhelp = \"Settings\"\n\
                   secret = true\n[auth]\ntype = \"bearer\"\ntoken = \"{token}\"\n\
                   [verify]\npath = \"/me\"\nvalid = [200]\nrejected = [401]\n"
                .to_owned(),
        };
        let catalog = latchkey_catalog::Catalog::from_files(&[file]).unwrap();
        let values: std::collections::BTreeMap<String, String> =
            [("token".to_owned(), "t".to_owned())].into();
        let auth = catalog.get("acme").unwrap().prepare(&values).unwrap();
        let rendered = Outbound::check_target(&auth.request("GET", "/x").unwrap());
        let base = ProxyBase::new(&auth);
        let target = base.target(&hyper::Method::GET, auth.path_and_query("/x").unwrap());
        for outcome in [rendered.map(|_| ()), target.map(|_| ())] {
            match outcome {
                Err(OutboundError::Refused(why)) => {
                    assert!(why.contains("10.1.2.3 is not a public address"), "{why}")
                }
                other => panic!("expected a refusal, got {other:?}"),
            }
        }

        // The operator's base: its scheme and authority, the joined path, the method in capitals.
        let auth = chorus_auth("http://127.0.0.1:9/base/");
        let base = ProxyBase::new(&auth);
        let target = base
            .target(
                &hyper::Method::from_bytes(b"get").unwrap(),
                auth.path_and_query("/v3/engagements?x=1").unwrap(),
            )
            .unwrap();
        assert_eq!(target.uri(), "http://127.0.0.1:9/base/v3/engagements?x=1");
        assert_eq!(target.origin.host, "127.0.0.1:9");
        assert_eq!(target.method, hyper::Method::GET);
        let headers = base.headers.as_ref().unwrap();
        assert_eq!(headers.len(), 1);
        assert_eq!(headers[0].0, "authorization");
        assert!(headers[0].1.is_sensitive());
    }

    #[tokio::test]
    async fn the_strict_client_refuses_before_connecting() {
        let request = chorus_request(None);
        assert!(!request.trusted_host);
        for answer in [&["127.0.0.1"][..], &["93.184.216.34", "10.1.2.3"]] {
            let script = Scripted::new(&[answer]);
            let outbound =
                Outbound::with_lookup(OutboundConfig::default(), script.clone()).unwrap();
            match outbound.send(&request).await {
                Err(OutboundError::Refused(why)) => assert!(why.contains("not public"), "{why}"),
                other => panic!("{answer:?}: expected a refusal, got {other:?}"),
            }
            assert_eq!(script.lookups.load(Ordering::SeqCst), 1);
        }
    }

    #[test]
    fn non_global_addresses_are_refused() {
        for bad in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "2001:db8::1",
            "ff02::1",
        ] {
            assert!(!is_global(bad.parse().unwrap()), "{bad}");
        }
        for good in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_global(good.parse().unwrap()), "{good}");
        }
    }
}
