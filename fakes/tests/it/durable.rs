//! `--state-dir`: what fakes acknowledged survives the loss of the process. Each test serves a
//! state over a real socket, drops it without any shutdown step (what is on disk is all that
//! is left, as after kill -9), then opens the same directory with a different signing key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use accelbyte::client::{AbClient, Config, LobbyOptions};
use accelbyte::models::dsmc::CreateSessionRequest;
use fakes::keys::SigningKey;
use fakes::{AppState, FakesConfig};
use url::Url;

use crate::common::{GAME_CLIENT, NAMESPACE, PLAYER_CLIENT, PLAYER1, PLAYER2};

/// A served state; dropping it aborts the server task (no final flush).
struct Running {
    addr: SocketAddr,
    state: AppState,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    fn url(&self) -> Url {
        Url::parse(&format!("http://{}", self.addr)).unwrap()
    }

    fn client(&self, (id, secret): (&str, Option<&str>)) -> AbClient {
        AbClient::new(Config::new(
            self.url(),
            id,
            secret.map(str::to_owned),
            NAMESPACE,
        ))
        .unwrap()
    }

    /// The crash: the server stops mid-flight and the in-memory state goes away.
    fn crash(self) {
        self.task.abort();
    }
}

async fn open(dir: &Path, key: SigningKey) -> Running {
    let config = FakesConfig {
        state_dir: Some(dir.to_path_buf()),
        ..FakesConfig::default()
    };
    let state = AppState::open(config, key).expect("state opens");
    let listener = fakes::server::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(fakes::server::serve(
        listener,
        state.clone(),
        std::future::pending(),
    ));
    Running { addr, state, task }
}

fn temp_dir() -> PathBuf {
    std::env::temp_dir().join(format!("fakes-durable-{}", uuid::Uuid::new_v4().simple()))
}

#[tokio::test]
async fn acknowledged_state_survives_a_crash_and_a_restart_with_another_key() {
    let dir = temp_dir();
    let first = open(&dir, SigningKey::process_default().unwrap()).await;
    let first_kid = first.state.iam.keys().jwks().keys[0].kid.clone();

    // IAM: a user's tokens; DSMC: a claimed server; lobby: a notification for an offline user.
    let players = first.client((PLAYER_CLIENT, None));
    let token = players.login_password(PLAYER1.0, PLAYER1.1).await.unwrap();
    let player2 = players.login_password(PLAYER2.0, PLAYER2.1).await.unwrap();
    let game = first.client((GAME_CLIENT.0, Some(GAME_CLIENT.1)));
    let game_token = game.login_client().await.unwrap().access_token;
    let session = game
        .dsmc()
        .register_session(
            &game_token,
            NAMESPACE,
            &CreateSessionRequest {
                client_version: String::new(),
                configuration: String::new(),
                deployment: String::new(),
                game_mode: "1v1".into(),
                matching_allies: Vec::new(),
                namespace: NAMESPACE.into(),
                notification_payload: None,
                pod_name: String::new(),
                region: String::new(),
                session_id: "0123456789abcdef0123456789abcdef".into(),
            },
        )
        .await
        .unwrap();
    game.dsmc()
        .claim_server(&game_token, NAMESPACE, &session.session.id)
        .await
        .unwrap();
    game.notify_user(
        &game_token,
        NAMESPACE,
        &player2.user_id,
        "found",
        "found 1.2.3.4 7777",
    )
    .await
    .unwrap();
    first.crash();

    let second = open(&dir, SigningKey::generate().unwrap()).await;
    let kids: Vec<String> = second
        .state
        .iam
        .keys()
        .jwks()
        .keys
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(kids, vec![first_kid], "the saved key signs again");
    let caller = second.state.iam.authenticate(&token.access_token);
    assert!(caller.is_ok(), "a token issued before the crash validates");
    let players = second.client((PLAYER_CLIENT, None));
    let refreshed = players.refresh(&token.refresh_token).await.unwrap();
    assert_eq!(refreshed.user_id, token.user_id);

    let claimed = second
        .state
        .dsmc
        .session(NAMESPACE, &session.session.id)
        .expect("the session survives");
    assert_eq!(claimed.status, fakes::dsmc::fleet::ServerStatus::Busy);
    assert_eq!(claimed.pod_name, session.session.server.pod_name);
    assert_eq!(second.state.dsmc.stats().claims_succeeded, 1);

    let mut lobby = players
        .connect_lobby(&player2.access_token, &LobbyOptions::default())
        .await
        .unwrap();
    let frame = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let frame = lobby.next_frame().await.unwrap().expect("socket open");
            if frame.message_type() == "messageNotif" {
                return frame;
            }
        }
    })
    .await
    .expect("the queued notification arrives on reconnect");
    assert_eq!(frame.get("payload"), Some("found 1.2.3.4 7777"));
    second.crash();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_refresh_token_used_before_the_crash_stays_used() {
    let dir = temp_dir();
    let first = open(&dir, SigningKey::process_default().unwrap()).await;
    let players = first.client((PLAYER_CLIENT, None));
    let token = players.login_password(PLAYER1.0, PLAYER1.1).await.unwrap();
    players.refresh(&token.refresh_token).await.unwrap();
    first.crash();

    let second = open(&dir, SigningKey::process_default().unwrap()).await;
    let players = second.client((PLAYER_CLIENT, None));
    assert!(
        players.refresh(&token.refresh_token).await.is_err(),
        "single use survives the restart"
    );
    second.crash();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn an_unreadable_state_file_is_an_error_naming_the_file() {
    let dir = temp_dir();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(fakes::durable::file::STATE_FILE),
        b"{\"format\":1,",
    )
    .unwrap();
    let config = FakesConfig {
        state_dir: Some(dir.clone()),
        ..FakesConfig::default()
    };
    let error = AppState::open(config, SigningKey::process_default().unwrap())
        .expect_err("a torn file is refused")
        .to_string();
    assert!(error.contains("fakes-state.json"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}
