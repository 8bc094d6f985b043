//! Reading the head of a fresh connection's first request without consuming it, to decide
//! whether it is a lobby WebSocket upgrade (handed to a shard) or anything else (served here).
//!
//! The bytes stay in the socket (`MSG_PEEK`), so whichever process serves the connection reads
//! the request from its first byte. Clients write a request head in one segment, so one peek
//! nearly always sees it whole; a head split over segments is re-peeked after a short pause
//! (a peek returns at once while any byte is unread, so waiting on readiness would spin).

use std::time::Duration;

use tokio::net::TcpStream;

/// Longest request head we look at; a lobby upgrade is well under 2 KiB.
pub const MAX_HEAD: usize = 8 * 1024;
/// How long a client may take to send its request head before it is left to the HTTP server
/// (which applies its own limits).
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// What the head of the first request says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    /// `GET /lobby` or `/lobby/` (any query), with the bearer token if one was sent.
    LobbyUpgrade { bearer: Option<String> },
    /// Anything else, or a head we could not read in time: the HTTP server's business.
    Other,
}

/// Peeks at `stream` until the request head is complete (or clearly not a lobby upgrade).
pub async fn peek_head(stream: &TcpStream) -> Head {
    let mut buf = vec![0u8; MAX_HEAD];
    let deadline = tokio::time::Instant::now() + HEAD_TIMEOUT;
    let mut pause = Duration::from_millis(1);
    let mut last_len = 0;
    loop {
        let peeked = tokio::time::timeout_at(deadline, stream.peek(&mut buf)).await;
        let n = match peeked {
            Ok(Ok(n)) if n > 0 => n,
            _ => return Head::Other,
        };
        match parse(&buf[..n]) {
            Parsed::Done(head) => return head,
            Parsed::Partial if n == buf.len() => return Head::Other,
            Parsed::Partial => {}
        }
        if tokio::time::Instant::now() + pause > deadline {
            return Head::Other;
        }
        // No new bytes since the last look: wait longer before looking again.
        pause = if n == last_len {
            (pause * 2).min(Duration::from_millis(100))
        } else {
            Duration::from_millis(1)
        };
        last_len = n;
        tokio::time::sleep(pause).await;
    }
}

enum Parsed {
    Done(Head),
    Partial,
}

fn parse(bytes: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(bytes) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            // Decide early when the request line alone rules the lobby out.
            return match (request.method, request.path) {
                (Some(method), _) if method != "GET" => Parsed::Done(Head::Other),
                (_, Some(path)) if !is_lobby_path(path) => Parsed::Done(Head::Other),
                _ => Parsed::Partial,
            };
        }
        // Too many headers or not HTTP: not ours to judge.
        Err(_) => return Parsed::Done(Head::Other),
    }
    let lobby = request.method == Some("GET") && request.path.is_some_and(is_lobby_path);
    if !lobby {
        return Parsed::Done(Head::Other);
    }
    let mut authorizations = request
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("authorization"));
    let first = authorizations.next();
    // Two Authorization headers: ambiguous; let the HTTP server refuse it.
    if authorizations.next().is_some() {
        return Parsed::Done(Head::Other);
    }
    let bearer = first
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        })
        .filter(|t| !t.is_empty());
    Parsed::Done(Head::LobbyUpgrade { bearer })
}

/// `/lobby` or `/lobby/`, with or without a query string.
fn is_lobby_path(path: &str) -> bool {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    path == "/lobby" || path == "/lobby/"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Option<Head> {
        match parse(text.as_bytes()) {
            Parsed::Done(head) => Some(head),
            Parsed::Partial => None,
        }
    }

    #[test]
    fn a_lobby_upgrade_with_its_token() {
        let text = "GET /lobby/ HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nauthorization: Bearer abc.def\r\n\r\n";
        assert_eq!(
            head(text),
            Some(Head::LobbyUpgrade {
                bearer: Some("abc.def".to_owned())
            })
        );
        let text = "GET /lobby?x=1 HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(head(text), Some(Head::LobbyUpgrade { bearer: None }));
    }

    #[test]
    fn everything_else_is_served_here() {
        for text in [
            "POST /lobby/ HTTP/1.1\r\n\r\n",
            "GET /lobbyx HTTP/1.1\r\n\r\n",
            "GET /iam/v3/oauth/jwks HTTP/1.1\r\nHost: x\r\n\r\n",
            "\x16\x03\x01 tls hello",
            "GET /lobby/ HTTP/1.1\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\n\r\n",
        ] {
            assert_eq!(head(text), Some(Head::Other), "{text:?}");
        }
    }

    #[test]
    fn an_unfinished_head_waits_unless_the_request_line_decides() {
        assert_eq!(head("GET /lobby/ HTTP/1.1\r\nHost: x\r\n"), None);
        assert_eq!(head("POST /matchmaking HTTP/1.1\r\nHo"), Some(Head::Other));
        assert_eq!(
            head("GET /iam/v3/oauth/authorize?a=b HTTP/1.1\r\n"),
            Some(Head::Other)
        );
    }
}
