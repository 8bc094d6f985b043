//! The tutorial's pipeline (contract section 0.3, steps 12–23) driven through the `accelbyte`
//! client against a spawned fakes: two players log in with PKCE, open lobby sockets, and receive
//! "searching" and then "found <ip> <port>" for the same server.

use std::time::Duration;

use accelbyte::client::lobby::LobbyOptions;
use accelbyte::client::{AbClient, Config};
use accelbyte::models::dsmc::{self, MatchPartyMember, MatchingAlly, MatchingParty};
use accelbyte::models::sessionbrowser::{CreateSessionRequest, GameSessionSetting};

use crate::common::{self, GAME_CLIENT, NAMESPACE, PLAYER_CLIENT, PLAYER1, PLAYER2};

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn tutorial_pipeline_steps_12_to_23_through_the_client() {
    let fakes = common::start().await;
    let base: url::Url = fakes.base_url().parse().unwrap();
    let players = AbClient::new(Config::new(base.clone(), PLAYER_CLIENT, None, NAMESPACE)).unwrap();
    let game = AbClient::new(Config::new(
        base.clone(),
        GAME_CLIENT.0,
        Some(GAME_CLIENT.1.into()),
        NAMESPACE,
    ))
    .unwrap();

    // The test client: PKCE login and a lobby socket per player.
    let t1 = players
        .login_user(PLAYER1.0, PLAYER1.1)
        .await
        .expect("player1 logs in with PKCE");
    let t2 = players
        .login_user(PLAYER2.0, PLAYER2.1)
        .await
        .expect("player2 logs in with PKCE");
    let mut ws1 = players
        .connect_lobby(&t1.access_token, &LobbyOptions::default())
        .await
        .expect("lobby 1");
    let mut ws2 = players
        .connect_lobby(&t2.access_token, &LobbyOptions::default())
        .await
        .expect("lobby 2");
    assert_eq!(ws1.connect_notif().lobby_session_id.len(), 32);

    // 12. game token (client credentials).
    let game_token = game
        .login_client()
        .await
        .expect("client credentials")
        .access_token;

    // 14. "searching" with the player's own token.
    for (t, ws) in [(&t1, &mut ws1), (&t2, &mut ws2)] {
        players
            .notify_user(
                &t.access_token,
                &t.namespace,
                &t.user_id,
                "NOTIF",
                "searching",
            )
            .await
            .expect("searching");
        let msg = tokio::time::timeout(WAIT, ws.wait_message(|m| m.topic == "NOTIF"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(msg.payload, "searching");
        assert_eq!(msg.to, t.user_id);
        assert_eq!(msg.from, "system");
    }

    // 16. session browser session, created with the caller's (user) token, the tutorial's body.
    let sb = players
        .session_browser()
        .create_session(
            &t1.access_token,
            NAMESPACE,
            &CreateSessionRequest {
                game_session_setting: GameSessionSetting {
                    allow_join_in_progress: true,
                    current_internal_player: 0,
                    current_player: 0,
                    map_name: "map".into(),
                    max_internal_player: 2,
                    max_player: 0,
                    mode: "1v1".into(),
                    num_bot: 0,
                    password: String::new(),
                    settings: serde_json::Map::new(),
                },
                game_version: "1.0.0".into(),
                namespace: NAMESPACE.into(),
                session_type: "dedicated".into(),
                username: "matchmaker".into(),
            },
        )
        .await
        .expect("sb create");
    let session_id = sb.session_id.clone();
    assert_eq!(session_id.len(), 32);

    // 17. DSMC register (the SB id is reused), 18. claim, 19. read the server.
    let members = vec![
        MatchPartyMember {
            user_id: t1.user_id.clone(),
            ..Default::default()
        },
        MatchPartyMember {
            user_id: t2.user_id.clone(),
            ..Default::default()
        },
    ];
    game.dsmc()
        .register_session(
            &game_token,
            NAMESPACE,
            &dsmc::CreateSessionRequest {
                client_version: String::new(),
                configuration: String::new(),
                deployment: "default".into(),
                game_mode: "1v1".into(),
                matching_allies: vec![MatchingAlly {
                    matching_parties: vec![MatchingParty {
                        party_id: "p".into(),
                        party_members: members,
                        ..Default::default()
                    }],
                }],
                namespace: NAMESPACE.into(),
                notification_payload: None,
                pod_name: String::new(),
                region: String::new(),
                session_id: session_id.clone(),
            },
        )
        .await
        .expect("dsmc register");
    game.dsmc()
        .claim_server(&game_token, NAMESPACE, &session_id)
        .await
        .expect("claim (ready delay defaults to 0)");
    let ds = game
        .dsmc()
        .get_session(&game_token, NAMESPACE, &session_id)
        .await
        .expect("dsmc get");
    let (ip, port) = (ds.session.server.ip.clone(), ds.session.server.port);
    assert!(ip.parse::<std::net::IpAddr>().is_ok(), "{ip}");
    assert!(port > 0);
    assert_eq!(ds.session.server.status, dsmc::status::BUSY);

    // 20. add players (user token), 21. read back with the game token, 22. joinable.
    for uid in [&t1.user_id, &t2.user_id] {
        let added = players
            .session_browser()
            .add_player(&t1.access_token, NAMESPACE, &session_id, uid, false)
            .await
            .expect("add player");
        assert!(added.status);
    }
    let sb = game
        .session_browser()
        .get_session(&game_token, NAMESPACE, &session_id)
        .await
        .expect("sb get");
    assert!(
        sb.joinable,
        "the tutorial's parameters must give a joinable session"
    );
    assert_eq!(sb.players.len(), 2);
    assert_eq!((sb.server.ip.as_str(), sb.server.port), (ip.as_str(), port));

    // 23. "found <ip> <port>" to every player, sent with the caller's token.
    let found = format!("found {ip} {port}");
    for t in [&t1, &t2] {
        players
            .notify_user(&t1.access_token, NAMESPACE, &t.user_id, "NOTIF", &found)
            .await
            .expect("found");
    }
    for ws in [&mut ws1, &mut ws2] {
        let msg = tokio::time::timeout(WAIT, ws.wait_message(|m| m.payload.starts_with("found")))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(msg.payload, found);
    }
}
