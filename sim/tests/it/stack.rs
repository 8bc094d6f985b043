//! The multi-process embedded stack over real sockets and processes: fakes here with its lobby
//! sockets in two shard processes, two matchmaker replica processes on a private Redis, and two
//! players who log in, connect, and send their requests to different replicas.

use std::time::Duration;

use accelbyte::client::{AbClient, Config, LobbyOptions};
use fakes::seed::builtin;
use sim::scenario::ClientCredentials;
use sim::stack::{MultiStack, StackLayout};
use sim::target::EmbeddedMatchmakerConfig;
use url::Url;

const WAIT: Duration = Duration::from_secs(20);

fn matchmaker_template() -> EmbeddedMatchmakerConfig {
    EmbeddedMatchmakerConfig {
        fakes_base_url: Url::parse("http://127.0.0.1:1").expect("placeholder"),
        namespace: builtin::NAMESPACE.to_owned(),
        iam_client: ClientCredentials {
            id: builtin::IAM_CLIENT.0.to_owned(),
            secret: Some(builtin::IAM_CLIENT.1.to_owned()),
        },
        game_client: ClientCredentials {
            id: builtin::GAME_CLIENT.0.to_owned(),
            secret: Some(builtin::GAME_CLIENT.1.to_owned()),
        },
        settings: toml::Table::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_and_replicas_pair_two_players_across_processes() {
    let layout = StackLayout {
        lobby_shards: 2,
        replicas: 2,
        chaos: false,
        fakes_process: false,
    };
    let stack = MultiStack::start(
        layout,
        fakes::FakesConfig::default(),
        matchmaker_template(),
        std::path::Path::new(env!("CARGO_BIN_EXE_sim")),
        None,
    )
    .await
    .expect("the stack starts");
    let urls = stack.matchmaker_urls();
    assert_eq!(urls.len(), 2);
    let roles: Vec<String> = stack.processes().into_iter().map(|p| p.role).collect();
    assert_eq!(
        roles,
        [
            "lobby-shard-0",
            "lobby-shard-1",
            "matchmaker-0",
            "matchmaker-1",
            "redis"
        ]
    );

    let base = Url::parse(&stack.fakes.base_url()).expect("base url");
    let client = AbClient::new(Config::new(
        base,
        builtin::PLAYER_CLIENT_ID,
        None,
        builtin::NAMESPACE,
    ))
    .expect("client");
    let mut players = Vec::new();
    for (user, password) in [builtin::PLAYER1, builtin::PLAYER2] {
        let token = client.login_user(user, password).await.expect("PKCE login");
        let lobby = client
            .connect_lobby(&token.access_token, &LobbyOptions::default())
            .await
            .expect("lobby connects");
        players.push((token.access_token, lobby));
    }
    // Counted once the hand-off completed, which may be just after the client's handshake.
    let deadline = tokio::time::Instant::now() + WAIT;
    let fakes_state = stack.fakes.state().expect("fakes in this process");
    while fakes_state.accept.handed_off() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "both lobby sockets live in shards"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let http = reqwest::Client::new();
    let requests: Vec<_> = players
        .iter()
        .zip(&urls)
        .map(|((token, _), url)| {
            let request = http.post(url.clone()).bearer_auth(token).send();
            tokio::spawn(async move {
                let response = request.await.expect("the replica answers");
                let status = response.status();
                let body: serde_json::Value = response.json().await.expect("json");
                (status, body)
            })
        })
        .collect();
    let mut servers = Vec::new();
    for request in requests {
        let (status, body) = tokio::time::timeout(WAIT, request)
            .await
            .expect("answered in time")
            .expect("request task");
        assert_eq!(status, 200, "{body}");
        servers.push(body["server"].clone());
    }
    assert_eq!(servers[0], servers[1], "one match across two replicas");

    for (_, lobby) in &mut players {
        let found = tokio::time::timeout(
            WAIT,
            lobby.wait_message(|m| m.payload.starts_with("found ")),
        )
        .await
        .expect("found in time")
        .expect("found over the shard's socket");
        assert!(
            found
                .payload
                .contains(servers[0]["ip"].as_str().expect("ip"))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fakes_as_a_process_comes_back_from_kill_9_at_its_url_with_its_tokens() {
    use sim::stack::control::ProcessName;
    let layout = StackLayout {
        lobby_shards: 0,
        replicas: 0,
        chaos: false,
        fakes_process: true,
    };
    let stack = MultiStack::start(
        layout,
        fakes::FakesConfig::default(),
        matchmaker_template(),
        std::path::Path::new(env!("CARGO_BIN_EXE_sim")),
        None,
    )
    .await
    .expect("the stack starts");
    let roles: Vec<String> = stack.processes().into_iter().map(|p| p.role).collect();
    assert_eq!(roles, ["fakes"]);
    let base = stack.fakes.base_url();
    let client = AbClient::new(Config::new(
        Url::parse(&base).expect("base url"),
        builtin::PLAYER_CLIENT_ID,
        None,
        builtin::NAMESPACE,
    ))
    .expect("client");
    let token = client
        .login_user("player1", "Player1Pass!")
        .await
        .expect("PKCE login");

    stack.control.kill(ProcessName::Fakes).await.expect("kill");
    assert_eq!(stack.control.pid_of(ProcessName::Fakes), None);
    assert!(
        client.login_user("player2", "Player2Pass!").await.is_err(),
        "nothing answers while fakes is down"
    );
    stack
        .control
        .start(ProcessName::Fakes)
        .await
        .expect("start");
    assert_eq!(stack.fakes.base_url(), base, "the same URL");

    let lobby = tokio::time::timeout(
        WAIT,
        client.connect_lobby(&token.access_token, &LobbyOptions::default()),
    )
    .await
    .expect("in time");
    assert!(
        lobby.is_ok(),
        "a token issued before the crash still opens the lobby"
    );
    let refreshed = client.refresh(&token.refresh_token).await.expect("refresh");
    assert_eq!(refreshed.user_id, token.user_id);
}
