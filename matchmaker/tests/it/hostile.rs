//! Hostile input over real sockets: each case gets its AGS-shaped refusal, and nothing reaches
//! anyone (no lobby notification leaves, no ticket is made).

use std::time::Duration;

use pretty_assertions::assert_eq;
use reqwest::StatusCode;
use reqwest::header::AUTHORIZATION;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::stack::{self, Api, PLAYER1, PLAYER2, SOON, login, metric};

/// Notifications fakes' lobby delivered, queued or dropped: everything the matchmaker sent.
fn notifications(fakes: &fakes::Handle) -> u64 {
    let lobby = fakes.state.lobby.stats();
    lobby.notifications_delivered + lobby.notifications_queued + lobby.notifications_dropped
}

async fn tickets_created(api: &Api) -> f64 {
    let text = api.metrics().await;
    text.lines()
        .filter(|l| l.starts_with("matchmaker_tickets_created_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn send(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.expect("answers");
    let status = response.status();
    (status, response.json().await.expect("a json body"))
}

fn assert_ags(name: &str, (status, body): &(StatusCode, Value), want: StatusCode, code: i64) {
    assert_eq!(*status, want, "{name}: {body}");
    assert_eq!(body["errorCode"], code, "{name}: {body}");
    assert!(body["errorMessage"].is_string(), "{name}: {body}");
}

/// A JSON array (or a member given as an array) is not read by position: 400, 20019.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_must_be_json_objects() {
    let fakes = stack::fakes().await;
    let mm = matchmaker::spawn(stack::config(&fakes))
        .await
        .expect("matchmaker starts");
    let api = Api::new(mm.base_url());
    let player = stack::Player::connect(&fakes, login(&fakes, PLAYER1.0, PLAYER1.1).await).await;
    let before = notifications(&fakes);
    for body in [
        "[]",
        r#"["1v1"]"#,
        r#"  ["1v1", [], {}]"#,
        r#"{"party_members": [["x"]]}"#,
        r#"{"party_members": [{"user_id": "x", "extra": 1}]}"#,
        "7",
        r#""1v1""#,
    ] {
        for route in ["/matchmaking", "/v1/tickets"] {
            let answer = send(
                api.http
                    .post(format!("{}{route}", api.base))
                    .bearer_auth(&player.account.token)
                    .header("content-type", "application/json")
                    .body(body),
            )
            .await;
            assert_ags(
                &format!("{route} {body}"),
                &answer,
                StatusCode::BAD_REQUEST,
                20019,
            );
        }
    }
    assert_eq!(notifications(&fakes), before, "nothing was sent");
    assert_eq!(tickets_created(&api).await, 0.0);
}

/// A second `Authorization` header is refused, whatever the first: 401, 20001.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_authorization_header_is_refused() {
    let fakes = stack::fakes().await;
    let mm = matchmaker::spawn(stack::config(&fakes))
        .await
        .expect("matchmaker starts");
    let api = Api::new(mm.base_url());
    let p1 = stack::Player::connect(&fakes, login(&fakes, PLAYER1.0, PLAYER1.1).await).await;
    let p2 = login(&fakes, PLAYER2.0, PLAYER2.1).await;
    let before = notifications(&fakes);
    let good = format!("Bearer {}", p1.account.token);
    for (name, second) in [
        ("valid then garbage", "Bearer garbage".to_owned()),
        ("valid twice", good.clone()),
        ("two players", format!("Bearer {}", p2.token)),
    ] {
        for route in ["/matchmaking", "/v1/tickets"] {
            let answer = send(
                api.http
                    .post(format!("{}{route}", api.base))
                    .header(AUTHORIZATION, &good)
                    .header(AUTHORIZATION, &second),
            )
            .await;
            assert_ags(
                &format!("{route} {name}"),
                &answer,
                StatusCode::UNAUTHORIZED,
                20001,
            );
        }
    }
    assert_eq!(notifications(&fakes), before, "nothing was sent");
    assert_eq!(tickets_created(&api).await, 0.0);
    let text = api.metrics().await;
    assert_eq!(
        metric(
            &text,
            "matchmaker_auth_rejections_total{reason=\"duplicate_header\"}"
        ),
        6.0
    );
}

/// Writes `head`, then reads the answer's head and body (`Connection: close` asked for).
async fn raw(addr: std::net::SocketAddr, head: &str) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    stream.write_all(head.as_bytes()).await.expect("write head");
    let mut answer = Vec::new();
    let mut buf = [0_u8; 4096];
    let read = async {
        loop {
            let n = stream.read(&mut buf).await.expect("read");
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&answer);
            if text.contains("\r\n\r\n") && text.trim_end().ends_with('}') {
                break;
            }
        }
    };
    tokio::time::timeout(SOON, read)
        .await
        .expect("answered without the body being sent");
    let text = String::from_utf8_lossy(&answer).into_owned();
    (stream, text)
}

/// The token is checked before the body is read: a request announcing 1 MiB and sending none
/// is answered 401 at once; an authenticated one whose body never comes gets 408 (510408).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_checked_before_the_body_is_read() {
    let fakes = stack::fakes().await;
    let mut config = stack::config(&fakes);
    config.http.body_timeout = Duration::from_millis(300);
    let mm = matchmaker::spawn(config).await.expect("matchmaker starts");
    let api = Api::new(mm.base_url());
    let player = stack::Player::connect(&fakes, login(&fakes, PLAYER1.0, PLAYER1.1).await).await;
    let before = notifications(&fakes);
    for (route, auth) in [
        ("/matchmaking", String::new()),
        ("/v1/tickets", String::new()),
        (
            "/matchmaking",
            "Authorization: Bearer not.a.jwt\r\n".to_owned(),
        ),
    ] {
        let head = format!(
            "POST {route} HTTP/1.1\r\nHost: mm\r\n{auth}Content-Type: application/json\r\nContent-Length: 1048576\r\n\r\n"
        );
        let (_stream, answer) = raw(mm.addr, &head).await;
        assert!(answer.starts_with("HTTP/1.1 401 "), "{route}: {answer}");
        assert!(answer.contains(r#""errorCode":20001"#), "{route}: {answer}");
    }
    let head = format!(
        "POST /matchmaking HTTP/1.1\r\nHost: mm\r\nAuthorization: Bearer {}\r\nContent-Length: 100\r\n\r\n{{",
        player.account.token
    );
    let (_stream, answer) = raw(mm.addr, &head).await;
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(answer.contains(r#""errorCode":510408"#), "{answer}");
    assert_eq!(notifications(&fakes), before, "nothing was sent");
    assert_eq!(tickets_created(&api).await, 0.0);
}

/// Slow request heads and idle keep-alive connections are closed; a request held for a match
/// outlives both timeouts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_heads_and_idle_connections_are_closed() {
    let fakes = stack::fakes().await;
    let mut config = stack::config(&fakes);
    config.http.header_timeout = Duration::from_millis(200);
    config.http.idle_timeout = Duration::from_millis(300);
    let mut mode = matchmaker::config::GameMode::one_v_one("1v1");
    mode.timeout = Duration::from_secs(1);
    config.default_mode = mode.name.clone();
    config.modes = matchmaker::config::Modes::new(vec![mode]).expect("modes");
    let mm = matchmaker::spawn(config).await.expect("matchmaker starts");
    let api = Api::new(mm.base_url());
    let player = login(&fakes, PLAYER1.0, PLAYER1.1).await;

    let closed = |mut stream: TcpStream| async move {
        let mut buf = [0_u8; 64];
        let read = tokio::time::timeout(SOON, stream.read(&mut buf)).await;
        matches!(read, Ok(Ok(0) | Err(_)))
    };
    let mut trickle = TcpStream::connect(mm.addr).await.expect("connects");
    trickle
        .write_all(b"POST /matchmaking HTTP/1.1\r\nHost: mm\r\n")
        .await
        .expect("write");
    assert!(closed(trickle).await, "a slow head is cut off");
    let silent = TcpStream::connect(mm.addr).await.expect("connects");
    assert!(closed(silent).await, "a silent connection is cut off");

    // Held past both timeouts: the tutorial's 408, not a closed connection.
    let (status, body) = api.matchmaking(&player.token, None).await;
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT, "{body}");
    assert_eq!(body["message"], "Timed out! Not enough players.");

    let mut idle = TcpStream::connect(mm.addr).await.expect("connects");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: mm\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0_u8; 1024];
    let n = idle.read(&mut buf).await.expect("answer");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200 "));
    assert!(
        closed(idle).await,
        "an idle keep-alive connection is closed"
    );
    assert!(mm.state.accept_stats().timed_out() >= 3);
}

/// Players banned in fakes' seed (AGS's ban model) get tokens carrying their bans; a
/// `MATCHMAKING` or `LOGIN` ban in force is refused with 403 (20003), one that ended is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn banned_players_are_refused() {
    let mut seed = fakes::seed::Seed::builtin();
    let template = seed.users[0].clone();
    for (name, kind, end_date) in [
        ("banned-mm", "MATCHMAKING", "2999-01-01T00:00:00Z"),
        ("banned-login", "LOGIN", "2999-01-01T00:00:00Z"),
        ("ban-over", "MATCHMAKING", "2001-01-01T00:00:00Z"),
        ("banned-chat", "CHAT_SEND", "2999-01-01T00:00:00Z"),
    ] {
        let mut user = template.clone();
        user.username = name.into();
        user.password = "BannedPass1!".into();
        user.user_id = None;
        user.email = None;
        user.display_name = None;
        user.bans = vec![fakes::seed::SeedBan {
            ban: kind.into(),
            end_date: end_date.into(),
            enabled: true,
            targeted_namespace: String::new(),
        }];
        seed.users.push(user);
    }
    let config = fakes::FakesConfig {
        seed,
        ..fakes::FakesConfig::default()
    };
    let fakes = fakes::spawn(config).await.expect("fakes starts");
    let mm = matchmaker::spawn(stack::config(&fakes))
        .await
        .expect("matchmaker starts");
    let api = Api::new(mm.base_url());
    let mut refused = Vec::new();
    for name in ["banned-mm", "banned-login"] {
        refused
            .push(stack::Player::connect(&fakes, login(&fakes, name, "BannedPass1!").await).await);
    }
    let before = notifications(&fakes);
    for player in &refused {
        for route in ["/matchmaking", "/v1/tickets"] {
            let answer = send(
                api.http
                    .post(format!("{}{route}", api.base))
                    .bearer_auth(&player.account.token),
            )
            .await;
            assert_ags(route, &answer, StatusCode::FORBIDDEN, 20003);
            let message = answer.1["errorMessage"].as_str().unwrap_or_default();
            assert!(message.contains("banned"), "{message}");
        }
    }
    assert_eq!(notifications(&fakes), before, "nothing was sent");
    assert_eq!(tickets_created(&api).await, 0.0);

    for name in ["ban-over", "banned-chat"] {
        let account = login(&fakes, name, "BannedPass1!").await;
        let (status, body) = api.create_ticket(&account.token, None).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{name}: {body}");
    }
}

/// A matchmaker with a 2v2 mode (parties of up to two) and a 100-player free-for-all.
async fn party_stack(fakes: &fakes::Handle) -> (matchmaker::Handle, Api) {
    let mut config = stack::config(fakes);
    let modes = vec![
        matchmaker::config::GameMode::teams("2v2", 2, 2),
        matchmaker::config::GameMode::free_for_all("ffa", 2, 100),
    ];
    config.default_mode = "2v2".to_owned();
    config.modes = matchmaker::config::Modes::new(modes).expect("modes");
    let mm = matchmaker::spawn(config).await.expect("matchmaker starts");
    let api = Api::new(mm.base_url());
    (mm, api)
}

/// Both routes refuse `body` from `token` with `want` + `code`, and nothing is sent or queued.
async fn refused_quietly(
    name: &str,
    fakes: &fakes::Handle,
    api: &Api,
    token: &str,
    body: &Value,
    want: StatusCode,
    code: i64,
) {
    let before = notifications(fakes);
    let tickets = tickets_created(api).await;
    for route in ["/matchmaking", "/v1/tickets"] {
        let answer = send(
            api.http
                .post(format!("{}{route}", api.base))
                .bearer_auth(token)
                .json(body),
        )
        .await;
        assert_ags(&format!("{name} {route}"), &answer, want, code);
    }
    assert_eq!(notifications(fakes), before, "{name}: nothing was sent");
    assert_eq!(
        tickets_created(api).await,
        tickets,
        "{name}: nothing queued"
    );
}

/// Made-up member ids are refused with 403 (510403), even 99 of them in a free-for-all that
/// fits them: no ticket, no notification to anyone, no DS claimed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_party_members_are_refused_and_nobody_hears_of_it() {
    let fakes = stack::fakes().await;
    let (_mm, api) = party_stack(&fakes).await;
    let leader = stack::Player::connect(&fakes, login(&fakes, PLAYER1.0, PLAYER1.1).await).await;
    let token = leader.account.token.clone();
    refused_quietly(
        "one made-up member",
        &fakes,
        &api,
        &token,
        &serde_json::json!({"party_members": ["made-up-1"]}),
        StatusCode::FORBIDDEN,
        510403,
    )
    .await;
    let ninety_nine: Vec<String> = (0..99).map(|i| format!("ghost-{i}")).collect();
    refused_quietly(
        "99 made-up members in a free-for-all",
        &fakes,
        &api,
        &token,
        &serde_json::json!({"game_mode": "ffa", "party_members": ninety_nine}),
        StatusCode::FORBIDDEN,
        510403,
    )
    .await;
    // Tokens that are not tokens do not make consent either.
    refused_quietly(
        "a forged member token",
        &fakes,
        &api,
        &token,
        &serde_json::json!({"party_members": ["made-up-1"], "party_tokens": ["not.a.jwt"]}),
        StatusCode::FORBIDDEN,
        510403,
    )
    .await;
    // The leader's own token is not another member's consent.
    refused_quietly(
        "the leader's token for a member",
        &fakes,
        &api,
        &token,
        &serde_json::json!({"party_members": ["made-up-1"], "party_tokens": [token.clone()]}),
        StatusCode::BAD_REQUEST,
        20002,
    )
    .await;
    assert_eq!(
        fakes.state.dsmc.stats().claims_attempted,
        0,
        "no DS was claimed"
    );
}

/// Listing a real player without their token is refused: they hear no `searching`, and their
/// own request still goes through. With their token, the party is accepted and both hear it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_player_is_not_queued_without_consent() {
    let fakes = stack::fakes().await;
    let (mm, api) = party_stack(&fakes).await;
    let mut leader =
        stack::Player::connect(&fakes, login(&fakes, PLAYER1.0, PLAYER1.1).await).await;
    let mut victim =
        stack::Player::connect(&fakes, login(&fakes, PLAYER2.0, PLAYER2.1).await).await;
    let victim_id = victim.id().to_owned();
    refused_quietly(
        "a real player without consent",
        &fakes,
        &api,
        &leader.account.token,
        &serde_json::json!({"party_members": [victim_id]}),
        StatusCode::FORBIDDEN,
        510403,
    )
    .await;
    // A token of someone else does not stand in for the listed member.
    let other = stack::accounts(&fakes, 1).await.remove(0);
    refused_quietly(
        "another player's token",
        &fakes,
        &api,
        &leader.account.token,
        &serde_json::json!({"party_members": [victim_id], "party_tokens": [other.token]}),
        StatusCode::BAD_REQUEST,
        20002,
    )
    .await;

    // The victim's own request is not blocked by a 409, and its `searching` is the first
    // notification the victim gets: the refused requests sent none.
    let before = notifications(&fakes);
    let (status, body) = api.create_ticket(&victim.account.token, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        notifications(&fakes),
        before + 1,
        "one searching, to the victim"
    );
    let first = victim
        .lobby
        .wait_message(|m| m.topic == "NOTIF")
        .await
        .expect("lobby open");
    assert_eq!(first.payload, "searching");
    let id = body["ticket_id"].as_str().expect("ticket id").to_owned();
    let cancel = api
        .http
        .delete(format!("{}/v1/tickets/{id}", api.base))
        .bearer_auth(&victim.account.token)
        .send()
        .await
        .expect("answers");
    assert_eq!(cancel.status(), StatusCode::NO_CONTENT);

    // With the victim's consent the party is queued, and both hear `searching`.
    let body = serde_json::json!({"party_members": [victim_id],
                                  "party_tokens": [victim.account.token]});
    let (status, ticket) = api.create_ticket(&leader.account.token, Some(body)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{ticket}");
    assert_eq!(ticket["party_members"].as_array().map(Vec::len), Some(2));
    assert!(leader.next("searching", SOON).await.is_some());
    assert!(victim.next("searching", SOON).await.is_some());
    stack::wait_queued(&mm, &victim_id).await;
}

/// A party larger than the mode allows is refused before any member token is checked; a
/// request refused for a live ticket (409) sends nothing either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_parties_and_live_tickets_are_refused_without_a_word() {
    let fakes = stack::fakes().await;
    let (mm, api) = party_stack(&fakes).await;
    let accounts = stack::accounts(&fakes, 3).await;
    let mut players = Vec::new();
    for account in accounts {
        players.push(stack::Player::connect(&fakes, account).await);
    }
    let ids: Vec<String> = players[1..].iter().map(|p| p.id().to_owned()).collect();
    let tokens: Vec<String> = players[1..]
        .iter()
        .map(|p| p.account.token.clone())
        .collect();
    refused_quietly(
        "a party of three in 2v2",
        &fakes,
        &api,
        &players[0].account.token,
        &serde_json::json!({"party_members": ids, "party_tokens": tokens}),
        StatusCode::BAD_REQUEST,
        20002,
    )
    .await;

    // players[1] queues alone; a party listing them (with consent) is then refused with 409.
    let (status, body) = api.create_ticket(&players[1].account.token, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(players[1].next("searching", SOON).await.is_some());
    stack::wait_queued(&mm, players[1].id()).await;
    refused_quietly(
        "a member with a live ticket",
        &fakes,
        &api,
        &players[0].account.token,
        &serde_json::json!({"party_members": [players[1].id()],
                            "party_tokens": [players[1].account.token]}),
        StatusCode::CONFLICT,
        510409,
    )
    .await;
    refused_quietly(
        "a second request of the same player",
        &fakes,
        &api,
        &players[1].account.token,
        &serde_json::json!({}),
        StatusCode::CONFLICT,
        510409,
    )
    .await;
}
