//! The vocabulary of results: how one virtual player's search ended, which call failed and how,
//! and the per-player record the invariant check reads.
//!
//! Owns plain data only, shared by `player` (which produces it), `metrics` (which counts it),
//! `invariants` and `report`. Knows no I/O, no clock and no histogram.

use std::fmt;
use std::sync::Arc;

use accelbyte::models::matchmaking::{FailureClass, notice};
use serde::{Deserialize, Serialize};

/// The one final outcome of a virtual player's search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The socket delivered `found <ip> <port>` for the match the matchmaker answered.
    Matched,
    /// The matchmaker answered 408 (after any retries).
    TimedOut,
    /// The player gave up and dropped its request.
    Cancelled,
    /// The matchmaker answered that the match failed (e.g. no server could be claimed).
    Failed,
    /// Something broke: see the [`ErrorKind`] and [`Endpoint`].
    Error,
}

impl Outcome {
    pub const ALL: [Outcome; 5] = [
        Outcome::Matched,
        Outcome::TimedOut,
        Outcome::Cancelled,
        Outcome::Failed,
        Outcome::Error,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Matched => "matched",
            Outcome::TimedOut => "timed_out",
            Outcome::Cancelled => "cancelled",
            Outcome::Failed => "failed",
            Outcome::Error => "error",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The calls the sim times and counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// Bulk test-user creation (setup and refills).
    CreateUsers,
    /// A whole login (three calls with PKCE, one with the password grant).
    Login,
    /// Lobby WebSocket connect through `connectNotif`.
    LobbyConnect,
    /// The lobby after connecting: closed sockets, a missing `found`.
    Lobby,
    /// The matchmaking request, until its answer.
    Matchmaking,
    /// `GET` of the DSMC session, for sampled server checks.
    DsmcCheck,
    /// Deleting the DSMC session when the match's game ends.
    ReleaseServer,
    /// Matchmaking v2: creating (or deleting) the player's match ticket.
    MatchTicket,
    /// Session v2: joining (and reading) the match's game session.
    GameSession,
    /// Matchmaking v2: `OnMatchFound` until the session's server is `AVAILABLE`.
    DsReady,
    /// Session v2 parties: create, invite, join, and the wait for every member to join.
    Party,
    /// The fakes' fault control API.
    Faults,
    /// The run itself (players still in flight when the drain ended).
    Run,
}

impl Endpoint {
    pub const ALL: [Endpoint; 13] = [
        Endpoint::CreateUsers,
        Endpoint::Login,
        Endpoint::LobbyConnect,
        Endpoint::Lobby,
        Endpoint::Matchmaking,
        Endpoint::DsmcCheck,
        Endpoint::ReleaseServer,
        Endpoint::MatchTicket,
        Endpoint::GameSession,
        Endpoint::DsReady,
        Endpoint::Party,
        Endpoint::Faults,
        Endpoint::Run,
    ];
    pub const COUNT: usize = Self::ALL.len();

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::CreateUsers => "create_users",
            Endpoint::Login => "login",
            Endpoint::LobbyConnect => "lobby_connect",
            Endpoint::Lobby => "lobby",
            Endpoint::Matchmaking => "matchmaking",
            Endpoint::DsmcCheck => "dsmc_check",
            Endpoint::ReleaseServer => "release_server",
            Endpoint::MatchTicket => "match_ticket",
            Endpoint::GameSession => "game_session",
            Endpoint::DsReady => "ds_ready",
            Endpoint::Party => "party",
            Endpoint::Faults => "faults",
            Endpoint::Run => "run",
        }
    }

    pub fn parse(text: &str) -> Option<Endpoint> {
        Self::ALL.into_iter().find(|e| e.as_str() == text)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a call failed. Failures on the load path are data, counted by `(endpoint, kind)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "status")]
pub enum ErrorKind {
    /// No answer: connect refused, reset, TLS.
    Transport,
    /// This process ran out of something to call with (`EMFILE`, `ENFILE`, `EADDRNOTAVAIL`,
    /// `ENOBUFS`): a limit of the load generator, not an answer of the system under test.
    LocalResources,
    /// No answer in time.
    Timeout,
    /// An answer with this unexpected status.
    Status(u16),
    /// An answer whose body was not what the contract says.
    Decode,
    /// The protocol was broken otherwise (no `connectNotif`, a bad redirect).
    Protocol,
    /// The login was refused (bad credentials, banned).
    Refused,
    /// The lobby socket closed under the player.
    Closed,
    /// The matchmaker answered 200 but `found` never came on the socket.
    NoFound,
    /// Still in flight when the run's drain ended.
    Unfinished,
    /// No user account was available.
    NoAccount,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Transport => f.write_str("transport"),
            ErrorKind::LocalResources => f.write_str("local_resources"),
            ErrorKind::Timeout => f.write_str("timeout"),
            ErrorKind::Status(s) => write!(f, "http_{s}"),
            ErrorKind::Decode => f.write_str("decode"),
            ErrorKind::Protocol => f.write_str("protocol"),
            ErrorKind::Refused => f.write_str("refused"),
            ErrorKind::Closed => f.write_str("closed"),
            ErrorKind::NoFound => f.write_str("no_found"),
            ErrorKind::Unfinished => f.write_str("unfinished"),
            ErrorKind::NoAccount => f.write_str("no_account"),
        }
    }
}

impl ErrorKind {
    /// Parses [`Display`](fmt::Display)'s output.
    pub fn parse(text: &str) -> Option<ErrorKind> {
        Some(match text {
            "transport" => ErrorKind::Transport,
            "local_resources" => ErrorKind::LocalResources,
            "timeout" => ErrorKind::Timeout,
            "decode" => ErrorKind::Decode,
            "protocol" => ErrorKind::Protocol,
            "refused" => ErrorKind::Refused,
            "closed" => ErrorKind::Closed,
            "no_found" => ErrorKind::NoFound,
            "unfinished" => ErrorKind::Unfinished,
            "no_account" => ErrorKind::NoAccount,
            other => ErrorKind::Status(other.strip_prefix("http_")?.parse().ok()?),
        })
    }

    /// Classifies a client error.
    pub fn of(err: &accelbyte::client::ClientError) -> ErrorKind {
        use accelbyte::client::ClientError as E;
        if err.is_timeout() {
            return ErrorKind::Timeout;
        }
        if is_local_resource_error(err) {
            return ErrorKind::LocalResources;
        }
        match err {
            E::Transport(_) | E::WebSocket(_) | E::Tls(_) => ErrorKind::Transport,
            E::Status { status, .. } | E::UnexpectedStatus { status, .. } => {
                ErrorKind::Status(*status)
            }
            E::Redirect { .. } => ErrorKind::Refused,
            E::Decode { .. } | E::UnexpectedContentType { .. } | E::Frame(_) => ErrorKind::Decode,
            E::Protocol(_) | E::InvalidInput(_) => ErrorKind::Protocol,
            E::Closed { .. } => ErrorKind::Closed,
            E::Timeout(_) => ErrorKind::Timeout,
        }
    }

    /// Classifies a raw HTTP error.
    /// No answer because the connection broke (refused, reset, closed mid-request): another
    /// server may well answer.
    pub fn is_broken_connection(&self) -> bool {
        matches!(self, ErrorKind::Transport)
    }

    pub fn of_reqwest(err: &reqwest::Error) -> ErrorKind {
        if err.is_timeout() {
            ErrorKind::Timeout
        } else if is_local_resource_error(err) {
            ErrorKind::LocalResources
        } else if err.is_decode() {
            ErrorKind::Decode
        } else if let Some(status) = err.status() {
            ErrorKind::Status(status.as_u16())
        } else {
            ErrorKind::Transport
        }
    }
}

/// Whether `err` (or an error it wraps) is this process running out of descriptors, ports or
/// buffers: an `io::Error` with one of those codes, or, where a library kept only the text, its
/// `(os error N)`.
pub fn is_local_resource_error(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.raw_os_error().is_some_and(is_local_resource_errno) {
                return true;
            }
        }
        let text = e.to_string();
        if LOCAL_RESOURCE_ERRNOS
            .iter()
            .any(|&code| text.contains(&format!("(os error {})", code as i32)))
        {
            return true;
        }
        current = e.source();
    }
    false
}

/// The codes of [`is_local_resource_error`].
const LOCAL_RESOURCE_ERRNOS: [nix::errno::Errno; 4] = [
    nix::errno::Errno::EMFILE,
    nix::errno::Errno::ENFILE,
    nix::errno::Errno::EADDRNOTAVAIL,
    nix::errno::Errno::ENOBUFS,
];

/// `EMFILE`, `ENFILE`, `EADDRNOTAVAIL` or `ENOBUFS`.
pub fn is_local_resource_errno(code: i32) -> bool {
    LOCAL_RESOURCE_ERRNOS.iter().any(|&e| e as i32 == code)
}

/// Why the matchmaker said a match failed: the failure class its error code names
/// (`no_capacity`, `claim_unreachable`, … — the contract's
/// [`FailureClass`](accelbyte::models::matchmaking::FailureClass)), read from the code and never
/// from the message; [`FailReason::UNCLASSIFIED`] when the answer carries no
/// known code (the tutorial's own server, or an unclassified 510502).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FailReason(&'static str);

impl FailReason {
    pub const UNCLASSIFIED: FailReason = FailReason("unclassified");
    /// Matchmaking v2: the game session's server could not be had (`dsInformation`
    /// `FAILED_TO_REQUEST`), a claim failure.
    pub const DS_FAILED_TO_REQUEST: FailReason = FailReason("claim_failed_to_request");

    /// The reason an AGS-shaped error's `errorCode` stands for.
    pub fn from_code(code: Option<i64>) -> Self {
        code.and_then(FailureClass::from_code)
            .map_or(Self::UNCLASSIFIED, |class| FailReason(class.as_str()))
    }

    /// The class name (`no_capacity`), as reports print it.
    pub fn class(self) -> &'static str {
        self.0
    }

    /// No dedicated server could be had: none was free, or claiming one failed.
    pub fn is_claim(self) -> bool {
        self.0 == "no_capacity" || self.0.starts_with("claim_")
    }
}

impl fmt::Display for FailReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// A dedicated server's address as players see it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ServerAddr {
    pub ip: Arc<str>,
    pub port: u16,
}

impl ServerAddr {
    /// Reads the payload `found <ip> <port>` (also `found <ip>:<port>`, the C# sample's form).
    pub fn from_found(payload: &str) -> Option<ServerAddr> {
        let (ip, port) = notice::parse_found(payload)?;
        Some(ServerAddr {
            ip: Arc::from(ip),
            port,
        })
    }
}

impl fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.ip, self.port)
    }
}

/// One virtual player's search, as the invariant check sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlayerRecord {
    /// The search (one party's arrival); a closed model's party has one per search.
    pub arrival: u64,
    /// The player's position in its party.
    pub member: u16,
    pub outcome: Outcome,
    /// The error, when `outcome` is [`Outcome::Error`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<(Endpoint, ErrorKind)>,
    /// The session the matchmaker's 200 named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<Arc<str>>,
    /// The server the matchmaker's 200 named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered: Option<ServerAddr>,
    /// Every server a `found` on this player's socket named during the search (and linger).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub found: Vec<ServerAddr>,
    /// Milliseconds since the run started when the first `found` arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub found_at_ms: Option<u64>,
    /// Milliseconds since the run started when the matchmaker's 200 arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_at_ms: Option<u64>,
    /// When a sampled DSMC check disagreed: the server DSMC reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dsmc_server: Option<ServerAddr>,
}

/// A DSMC session the sim released (deleted) when its game ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub session: Arc<str>,
    /// Milliseconds since the run started when the delete was sent (the earliest moment the
    /// server could be free); 0 when that moment is unknown: another process had already
    /// released it, or the delete failed (it may have been applied all the same, and another
    /// process may release the session).
    pub at_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn found_payloads() {
        let a = ServerAddr::from_found("found 127.0.0.1 7777").expect("space form");
        assert_eq!(a.to_string(), "127.0.0.1:7777");
        let b = ServerAddr::from_found("found 10.0.0.2:8000").expect("colon form");
        assert_eq!(b.port, 8000);
        assert!(ServerAddr::from_found("searching").is_none());
        assert!(ServerAddr::from_found("found x y").is_none());
    }

    #[test]
    fn error_kinds_round_trip_as_text() {
        for kind in [
            ErrorKind::Transport,
            ErrorKind::LocalResources,
            ErrorKind::Status(503),
            ErrorKind::NoFound,
            ErrorKind::Unfinished,
        ] {
            assert_eq!(ErrorKind::parse(&kind.to_string()), Some(kind));
        }
        assert_eq!(Endpoint::parse("dsmc_check"), Some(Endpoint::DsmcCheck));
    }

    /// An error that wraps another, the way client libraries wrap the connect error.
    #[derive(Debug)]
    struct Wrapped(std::io::Error);
    impl fmt::Display for Wrapped {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("client error")
        }
    }
    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn running_out_of_descriptors_or_ports_is_local_not_transport() {
        use nix::errno::Errno;
        for errno in [
            Errno::EMFILE,
            Errno::ENFILE,
            Errno::EADDRNOTAVAIL,
            Errno::ENOBUFS,
        ] {
            let err = Wrapped(std::io::Error::from_raw_os_error(errno as i32));
            assert!(is_local_resource_error(&err), "{errno}");
        }
        for errno in [Errno::ECONNREFUSED, Errno::ECONNRESET, Errno::ETIMEDOUT] {
            let err = Wrapped(std::io::Error::from_raw_os_error(errno as i32));
            assert!(!is_local_resource_error(&err), "{errno}");
        }
    }

    #[tokio::test]
    async fn a_real_connect_refused_stays_transport() {
        // Bound then closed: nothing listens there.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind");
        let err = reqwest::get(format!("http://{addr}/"))
            .await
            .expect_err("nothing listens");
        assert_eq!(ErrorKind::of_reqwest(&err), ErrorKind::Transport);
    }
}
