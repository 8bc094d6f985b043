//! The tutorial's test client (`client.py`), ported to Rust so the two-player flow needs no
//! Python: log in with the SDK's PKCE flow, open the lobby WebSocket, send the client's odd
//! `messageNotif` frame, `POST` the matchmaking request with no body, and print every frame —
//! until `found` arrived and the request answered.
//!
//! ```sh
//! AB_BASE_URL=http://127.0.0.1:8080 AB_CLIENT_ID=matchbench-player AB_NAMESPACE=matchbench \
//! CREATE_TITLE_MATCHMAKING_URL=http://127.0.0.1:8090 \
//!   cargo run -p matchmaker --example tutorial_client -- player1 'Player1Pass!'
//! ```
//!
//! Same environment as `client.py`: `AB_BASE_URL`, `AB_CLIENT_ID`, `AB_CLIENT_SECRET`
//! (optional: public client), `AB_NAMESPACE`, `CREATE_TITLE_MATCHMAKING_URL` (default
//! `http://127.0.0.1:3000`, as in the tutorial).

use std::time::Duration;

use accelbyte::client::{AbClient, Config, LobbyOptions};
use anyhow::Context as _;

fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("set {name}"))
}

fn print_block(tag: &str, text: &str) {
    println!("[{tag}]:");
    for line in text.lines() {
        println!("| {line}");
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(username), Some(password)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: tutorial_client <username> <password>");
    };
    let matchmaking = std::env::var("CREATE_TITLE_MATCHMAKING_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:3000".to_owned());
    let config = Config::new(
        env("AB_BASE_URL")?.parse()?,
        env("AB_CLIENT_ID")?,
        std::env::var("AB_CLIENT_SECRET")
            .ok()
            .filter(|s| !s.is_empty()),
        env("AB_NAMESPACE")?,
    );
    let client = AbClient::new(config)?;
    println!("[done]: initialize SDK");
    let token = client.login_user(&username, &password).await?;
    println!("[done]: logged in user ({username})");
    let mut lobby = client
        .connect_lobby(&token.access_token, &LobbyOptions::default())
        .await?;
    println!("[done]: connect to websocket");

    // client.py strips the `id: ` prefix from its messageNotif, leaving a bare id line.
    let odd = "type: messageNotif\nid: 5f0c6a1b2c3d4e5f60718293";
    lobby.send_text(&odd.replace("id: ", "")).await?;
    print_block("sent", odd);

    let request = reqwest::Client::new()
        .post(&matchmaking)
        .bearer_auth(&token.access_token)
        .timeout(Duration::from_secs(200))
        .send();
    let answer = tokio::spawn(async move {
        match request.await {
            Ok(response) => {
                let status = response.status();
                (status, response.text().await.unwrap_or_default())
            }
            Err(e) => (reqwest::StatusCode::BAD_GATEWAY, e.to_string()),
        }
    });
    tokio::pin!(answer);

    let mut answered = false;
    let mut found = false;
    while !(answered && found) {
        tokio::select! {
            done = &mut answer, if !answered => {
                let (status, body) = done?;
                println!("[done]: sent matchmaking request ({status}) {body}");
                answered = true;
                if !status.is_success() {
                    break;
                }
            }
            frame = lobby.next_frame() => match frame {
                Ok(Some(frame)) => {
                    print_block("recv", &frame.encode());
                    if frame.get("payload").is_some_and(|p| p.starts_with("found ")) {
                        found = true;
                    }
                }
                Ok(None) => anyhow::bail!("the lobby closed the connection"),
                Err(e) => println!("[warn]: {e}"),
            },
        }
    }
    lobby.close().await?;
    Ok(())
}
