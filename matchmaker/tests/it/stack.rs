//! Test support for the whole service: a fakes instance and matchmakers on real sockets,
//! players who log in with the public game client and hold lobby WebSockets, and bounded waits
//! for their notifications.

use std::time::Duration;

use accelbyte::client::{AbClient, Config as AbConfig, LobbyConnection, LobbyOptions};
use accelbyte::models::lobby::MessageNotif;
use fakes::FakesConfig;
use matchmaker::Config;
use reqwest::StatusCode;
use serde_json::Value;
use url::Url;

pub use fakes::seed::builtin::{
    GAME_CLIENT, NAMESPACE, PLAYER_CLIENT_ID as PLAYER_CLIENT, PLAYER1, PLAYER2,
};

/// How long a test waits for anything that should happen "soon".
pub const SOON: Duration = Duration::from_secs(20);

/// fakes with `servers` DSMC servers in its one region.
pub async fn fakes_with(servers: usize, ready_delay: Duration) -> fakes::Handle {
    let mut config = FakesConfig::default();
    config.fleet.regions[0].servers = servers;
    config.fleet.ready_delay = ready_delay;
    fakes::spawn(config).await.expect("fakes starts")
}

pub async fn fakes() -> fakes::Handle {
    fakes_with(100, Duration::ZERO).await
}

fn base(fakes: &fakes::Handle) -> Url {
    Url::parse(&fakes.base_url()).expect("fakes url")
}

/// A matchmaker config for `fakes` (in-memory store), with quick ticks for tests.
pub fn config(fakes: &fakes::Handle) -> Config {
    let ags = AbConfig::new(
        base(fakes),
        GAME_CLIENT.0,
        Some(GAME_CLIENT.1.to_owned()),
        NAMESPACE,
    );
    let mut config = Config::new(ags);
    config.engine.tick = Duration::from_millis(100);
    config.engine.reap_every = Duration::from_millis(100);
    config.http.wait_poll = Duration::from_millis(500);
    config.shutdown_grace = Duration::from_secs(5);
    config
}

/// The public game client players log in with.
pub fn player_client(fakes: &fakes::Handle) -> AbClient {
    AbClient::new(AbConfig::new(base(fakes), PLAYER_CLIENT, None, NAMESPACE)).expect("client")
}

/// The game client (for admin test users).
pub fn game_client(fakes: &fakes::Handle) -> AbClient {
    AbClient::new(AbConfig::new(
        base(fakes),
        GAME_CLIENT.0,
        Some(GAME_CLIENT.1.to_owned()),
        NAMESPACE,
    ))
    .expect("client")
}

/// A logged-in player.
#[derive(Clone, Debug)]
pub struct Account {
    pub user_id: String,
    pub token: String,
}

/// Logs in a seeded user with the password grant.
pub async fn login(fakes: &fakes::Handle, username: &str, password: &str) -> Account {
    let token = player_client(fakes)
        .login_password(username, password)
        .await
        .expect("login");
    Account {
        user_id: token.user_id,
        token: token.access_token,
    }
}

/// `n` fresh players made through the admin test-user API and logged in.
pub async fn accounts(fakes: &fakes::Handle, n: u32) -> Vec<Account> {
    let game = game_client(fakes);
    let admin = game.login_client().await.expect("game token").access_token;
    let users = game
        .create_test_users(&admin, NAMESPACE, n)
        .await
        .expect("test users");
    let players = player_client(fakes);
    let logins = users.iter().map(|u| {
        let players = players.clone();
        async move {
            let token = players
                .login_password(&u.username, &u.password)
                .await
                .expect("login");
            Account {
                user_id: token.user_id,
                token: token.access_token,
            }
        }
    });
    futures_util::future::join_all(logins).await
}

/// A player with an open lobby socket.
pub struct Player {
    pub account: Account,
    pub lobby: LobbyConnection,
}

impl Player {
    pub async fn connect(fakes: &fakes::Handle, account: Account) -> Player {
        let lobby = player_client(fakes)
            .connect_lobby(&account.token, &LobbyOptions::default())
            .await
            .expect("lobby connects");
        Player { account, lobby }
    }

    pub fn id(&self) -> &str {
        &self.account.user_id
    }

    /// The next `NOTIF` notification whose payload starts with `prefix`, within `within`.
    pub async fn next(&mut self, prefix: &str, within: Duration) -> Option<MessageNotif> {
        let wanted = |m: &MessageNotif| m.topic == "NOTIF" && m.payload.starts_with(prefix);
        tokio::time::timeout(within, self.lobby.wait_message(wanted))
            .await
            .ok()
            .map(|m| m.expect("lobby stays open"))
    }

    /// The `found <ip> <port>` notification, as `(ip, port)`.
    pub async fn found(&mut self) -> (String, u16) {
        let id = self.id().to_owned();
        let message = self
            .next("found ", SOON)
            .await
            .unwrap_or_else(|| panic!("{id} hears found"));
        parse_found(&message.payload)
    }

    /// Checks no further `found` arrives for a while (the only wait that must run out).
    pub async fn no_more_found(&mut self, quiet: Duration) {
        if let Some(extra) = self.next("found ", quiet).await {
            panic!("{} heard a second found: {}", self.id(), extra.payload);
        }
    }
}

pub fn parse_found(payload: &str) -> (String, u16) {
    let mut parts = payload.split(' ');
    assert_eq!(parts.next(), Some("found"), "{payload}");
    let ip = parts.next().expect("ip").to_owned();
    let port = parts.next().expect("port").parse().expect("numeric port");
    (ip, port)
}

/// A matchmaker's HTTP API, as a player sees it.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

impl Api {
    pub fn new(base: String) -> Self {
        Api {
            base,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("http client"),
        }
    }

    /// `POST /matchmaking` with `body` (none when `None`), returning status and JSON body.
    pub async fn matchmaking(&self, token: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self
            .http
            .post(format!("{}/matchmaking", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("matchmaking answers");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn create_ticket(&self, token: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self
            .http
            .post(format!("{}/v1/tickets", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("answers");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn ticket(&self, token: &str, id: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(format!("{}/v1/tickets/{id}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("answers");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn cancel(&self, token: &str, id: &str) -> StatusCode {
        self.http
            .delete(format!("{}/v1/tickets/{id}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("answers")
            .status()
    }

    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("answers")
            .text()
            .await
            .expect("text")
    }

    /// Waits until the ticket's state is `state`, returning the ticket.
    pub async fn wait_state(&self, token: &str, id: &str, state: &str, within: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let (status, ticket) = self.ticket(token, id).await;
            assert_eq!(status, StatusCode::OK, "{ticket}");
            if ticket["state"] == state {
                return ticket;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "ticket {id} never became {state}: {ticket}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Waits until `player` has a live ticket on `mm`'s store.
pub async fn wait_queued(mm: &matchmaker::Handle, player: &str) {
    use matchmaker::store::Store as _;
    let deadline = tokio::time::Instant::now() + SOON;
    let player = matchmaker::PlayerId::new(player);
    while mm
        .state
        .store()
        .live_ticket(&player)
        .await
        .expect("read")
        .is_none()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{player} never queued"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The value of one sample line of a Prometheus text (`name{labels}`), or 0.
pub fn metric(text: &str, sample: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            (key == sample).then(|| value.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}
