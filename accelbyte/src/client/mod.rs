//! The async AGS client: one pooled HTTP client plus lobby WebSocket connections.
//!
//! This module owns how matchbench *speaks* to AGS (or to the emulator): URLs, auth headers,
//! status discipline and error decoding. It reuses the wire types from [`crate::models`] and
//! knows nothing about matchmaking, metrics or the emulator's internals.
//!
//! - [`AbClient`]: a cheap-to-clone handle (an `Arc` inside) around one `reqwest::Client`, so
//!   thousands of virtual players share one connection pool. IAM and lobby-notification calls
//!   are methods on it ([`iam`], [`lobby`]); Session Browser and DSMC calls hang off
//!   [`AbClient::session_browser`] and [`AbClient::dsmc`] because both services have a
//!   `get_session`.
//! - [`LobbyConnection`]: one player's lobby WebSocket ([`lobby`]).
//! - [`ClientError`] / [`ErrorBody`]: every failure, with AGS error bodies read in any of their
//!   shapes ([`error`]).
//!
//! Status discipline follows the Python SDK: each operation accepts exactly the success code the
//! contract documents (200, 201, 202, 204 or 302); any other 2xx is an
//! [`ClientError::UnexpectedStatus`], so a drifting emulator fails loudly instead of passing.

pub mod dsmc;
pub mod error;
pub mod events;
pub mod iam;
pub mod lobby;
pub mod match2;
pub mod session;
pub mod sessionbrowser;
mod upgrade;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use http::{Method, StatusCode};
use serde::de::DeserializeOwned;
use url::Url;

pub use self::dsmc::{AdminSessionQuery, Dsmc};
pub use self::error::{ClientError, ErrorBody};
pub use self::events::{EventError, V2Event};
pub use self::lobby::{CloseInfo, LobbyConnection, LobbyOptions, LobbyTls};
pub use self::match2::Match2;
pub use self::session::Session;
pub use self::sessionbrowser::{SessionBrowser, SessionQuery};

/// Result of every client call.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Default TCP connect timeout of [`AbClient::http_builder`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default whole-request timeout of [`AbClient::http_builder`].
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Where AGS lives and which IAM client this process speaks as.
#[derive(Clone)]
pub struct Config {
    /// Host root such as `https://demo.accelbyte.io` (no `/iam`; paths are appended). A path
    /// prefix is kept, so a base behind a reverse-proxy prefix works too.
    pub base_url: Url,
    /// IAM client id, sent in the Basic header of OAuth calls.
    pub client_id: String,
    /// `None` for a public client: the Basic header then carries `client_id:` with an empty
    /// secret, as the SDKs send it.
    pub client_secret: Option<String>,
    /// The game namespace (convenience for callers; every namespaced call takes it explicitly,
    /// because the sample mixes the token's namespace and the game namespace).
    pub namespace: String,
}

impl Config {
    pub fn new(
        base_url: Url,
        client_id: impl Into<String>,
        client_secret: Option<String>,
        namespace: impl Into<String>,
    ) -> Self {
        Self {
            base_url,
            client_id: client_id.into(),
            client_secret,
            namespace: namespace.into(),
        }
    }
}

// Hand-written so the secret never reaches a log line.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("base_url", &self.base_url.as_str())
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("namespace", &self.namespace)
            .finish()
    }
}

/// The AGS REST client. Clone it freely: clones share the connection pool.
#[derive(Clone)]
pub struct AbClient {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    http: reqwest::Client,
    /// `Basic base64(id:secret)`, computed once.
    basic: HeaderValue,
}

impl fmt::Debug for AbClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AbClient")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// How one request authenticates.
#[derive(Clone, Copy)]
pub(crate) enum Auth<'a> {
    /// `Basic` with the configured client (OAuth endpoints).
    Basic,
    /// `Bearer <token>`.
    Bearer(&'a str),
}

impl AbClient {
    /// A client with its own pool built by [`http_builder`](Self::http_builder).
    pub fn new(config: Config) -> Result<Self> {
        let http = Self::http_builder().build()?;
        Self::with_http(config, http)
    }

    /// A client on a caller-built `reqwest::Client` (extra root CA, local address, other
    /// timeouts). Start from [`http_builder`](Self::http_builder): the client **must not follow
    /// redirects**, since the login flow reads the `Location` of each 302 itself.
    pub fn with_http(config: Config, http: reqwest::Client) -> Result<Self> {
        validate_base_url(&config.base_url)?;
        let credentials = format!(
            "{}:{}",
            config.client_id,
            config.client_secret.as_deref().unwrap_or_default()
        );
        let mut basic = HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(credentials)))
            .map_err(|_| {
            ClientError::InvalidInput("client credentials are not a valid header value".into())
        })?;
        basic.set_sensitive(true);
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                http,
                basic,
            }),
        })
    }

    /// How long an idle pooled connection is kept for reuse.
    pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

    /// The builder [`new`](Self::new) uses: redirects disabled, pooled keep-alive connections,
    /// `TCP_NODELAY`, a connect timeout of [`DEFAULT_CONNECT_TIMEOUT`] and a request timeout of
    /// [`DEFAULT_REQUEST_TIMEOUT`].
    pub fn http_builder() -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!(
                env!("CARGO_PKG_NAME"),
                "/",
                env!("CARGO_PKG_VERSION")
            ))
            .tcp_nodelay(true)
            .connect_timeout(DEFAULT_CONNECT_TIMEOUT)
            .timeout(DEFAULT_REQUEST_TIMEOUT)
            // Well under the servers' idle limit (matchbench's close keep-alive connections
            // quiet for 60 s): a pooled connection the server is closing at the moment it is
            // reused fails the request that picked it.
            .pool_idle_timeout(Self::POOL_IDLE_TIMEOUT)
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn base_url(&self) -> &Url {
        &self.inner.config.base_url
    }

    /// The configured game namespace.
    pub fn namespace(&self) -> &str {
        &self.inner.config.namespace
    }

    /// The underlying HTTP client (shared pool).
    pub fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// `base_url` plus path segments, each percent-encoded, so an id containing `/` or `?`
    /// stays one segment instead of rewriting the route.
    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        endpoint(&self.inner.config.base_url, segments)
    }

    /// A request to `segments` with auth and `Accept: application/json`.
    pub(crate) fn request(
        &self,
        method: Method,
        segments: &[&str],
        auth: Auth<'_>,
    ) -> Result<reqwest::RequestBuilder> {
        let authorization = match auth {
            Auth::Basic => self.inner.basic.clone(),
            Auth::Bearer(token) => bearer(token)?,
        };
        Ok(self
            .inner
            .http
            .request(method, self.url(segments))
            .header(ACCEPT, "application/json")
            .header(AUTHORIZATION, authorization))
    }
}

/// `Bearer <token>` as a sensitive header value.
pub(crate) fn bearer(token: &str) -> Result<HeaderValue> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
        ClientError::InvalidInput("access token is not a valid header value".into())
    })?;
    value.set_sensitive(true);
    Ok(value)
}

fn validate_base_url(url: &Url) -> Result<()> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ClientError::InvalidInput(format!(
            "base url scheme must be http or https, got {}",
            url.scheme()
        )));
    }
    if url.cannot_be_a_base() || url.host().is_none() {
        return Err(ClientError::InvalidInput(format!(
            "base url {url} has no host"
        )));
    }
    Ok(())
}

/// See [`AbClient::url`]. The base's query and fragment are dropped.
pub(crate) fn endpoint(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    // `path_segments_mut` only fails for cannot-be-a-base URLs, which `validate_base_url`
    // rejects; the fallback keeps this path panic-free regardless.
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

/// A response whose status was checked against the contract.
async fn checked(response: reqwest::Response, expected: StatusCode) -> Result<reqwest::Response> {
    let status = response.status();
    if status == expected {
        return Ok(response);
    }
    if status.is_success() || (expected.is_redirection() && status.is_redirection()) {
        return Err(ClientError::UnexpectedStatus {
            expected: expected.as_u16(),
            status: status.as_u16(),
        });
    }
    let raw = response.bytes().await?;
    Err(ClientError::from_status(status.as_u16(), &raw))
}

/// Sends `request` and decodes the `expected` status's JSON body.
pub(crate) async fn send_json<T: DeserializeOwned>(
    request: reqwest::RequestBuilder,
    expected: StatusCode,
) -> Result<T> {
    let response = checked(request.send().await?, expected).await?;
    decode_json(response).await
}

/// Sends `request`, requires the `expected` status and ignores the body (204s, and 200s whose
/// body nobody reads).
pub(crate) async fn send_empty(
    request: reqwest::RequestBuilder,
    expected: StatusCode,
) -> Result<()> {
    let response = checked(request.send().await?, expected).await?;
    // Drain so the connection goes back to the pool in a clean state.
    response.bytes().await?;
    Ok(())
}

/// Sends `request` expecting a 302 and returns its `Location`, resolved against the request URL
/// (AGS may answer with a relative or an absolute location).
pub(crate) async fn send_redirect(request: reqwest::RequestBuilder) -> Result<Url> {
    let response = checked(request.send().await?, StatusCode::FOUND).await?;
    let location = response
        .headers()
        .get(http::header::LOCATION)
        .ok_or_else(|| ClientError::Protocol("302 without a location header".into()))?
        .to_str()
        .map_err(|_| ClientError::Protocol("location header is not ascii".into()))?;
    response
        .url()
        .join(location)
        .map_err(|err| ClientError::Protocol(format!("invalid location {location:?}: {err}")))
}

/// Decodes a JSON body. Accepts `application/json` (with parameters), any `+json` type, a
/// missing content type and JSON served as `text/plain`, which the Python SDK converts too;
/// other types are an error, as in the SDK.
async fn decode_json<T: DeserializeOwned>(response: reqwest::Response) -> Result<T> {
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    if let Some(content_type) = &content_type {
        if !is_json_compatible(content_type) {
            return Err(ClientError::UnexpectedContentType {
                content_type: content_type.clone(),
            });
        }
    }
    let body = response.bytes().await?;
    serde_json::from_slice(&body).map_err(|source| ClientError::Decode {
        source,
        body: error::excerpt(&body),
    })
}

fn is_json_compatible(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence.is_empty()
        || essence == "application/json"
        || essence.ends_with("+json")
        || essence == "text/plain"
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    pub const CLIENT_ID: &str = "0f8b2a6c4d3e4f5a9b7c1d2e3f405162";
    pub const SECRET: &str = "s3cr3t";
    pub const NAMESPACE: &str = "testgame";

    pub fn client(server: &wiremock::MockServer) -> AbClient {
        let base = Url::parse(&server.uri()).expect("mock server uri");
        AbClient::new(Config::new(
            base,
            CLIENT_ID,
            Some(SECRET.to_owned()),
            NAMESPACE,
        ))
        .expect("client")
    }

    pub fn basic_header() -> String {
        format!("Basic {}", STANDARD.encode(format!("{CLIENT_ID}:{SECRET}")))
    }

    /// A JSON response with the given content type.
    pub fn json_with_type(
        status: u16,
        body: &str,
        content_type: &str,
    ) -> wiremock::ResponseTemplate {
        wiremock::ResponseTemplate::new(status).set_body_raw(body.as_bytes().to_vec(), content_type)
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    fn base(url: &str) -> Url {
        Url::parse(url).expect("url")
    }

    #[test]
    fn endpoint_appends_encoded_segments() {
        let url = endpoint(&base("http://127.0.0.1:8080"), &["iam", "v3", "a/b?c"]);
        assert_eq!(url.as_str(), "http://127.0.0.1:8080/iam/v3/a%2Fb%3Fc");
        let url = endpoint(&base("http://h/prefix/?x=1#f"), &["lobby", ""]);
        assert_eq!(url.as_str(), "http://h/prefix/lobby/");
    }

    #[test]
    fn base_url_must_be_http() {
        let config = Config::new(base("ftp://h/"), "id", None, "ns");
        let err = AbClient::new(config).expect_err("ftp base");
        assert!(matches!(err, ClientError::InvalidInput(_)), "{err:?}");
    }

    #[test]
    fn public_client_sends_empty_secret() {
        let client =
            AbClient::new(Config::new(base("http://h"), "pub", None, "ns")).expect("client");
        let expected = format!("Basic {}", STANDARD.encode("pub:"));
        assert_eq!(client.inner.basic.to_str().expect("ascii"), expected);
    }

    #[test]
    fn debug_redacts_the_secret() {
        let config = Config::new(base("http://h"), "id", Some(SECRET.to_owned()), "ns");
        let text = format!("{:?}", AbClient::new(config).expect("client"));
        assert!(!text.contains(SECRET), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }

    #[test]
    fn json_content_types() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/problem+json",
            "text/plain; charset=utf-8",
            "",
        ] {
            assert!(is_json_compatible(ok), "{ok}");
        }
        for bad in ["text/html", "application/xml", "application/octet-stream"] {
            assert!(!is_json_compatible(bad), "{bad}");
        }
    }
}
