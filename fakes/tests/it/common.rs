//! Shared test helpers: start a fakes instance and obtain tokens.

#![allow(dead_code)]

use fakes::{FakesConfig, Handle};

pub use fakes::seed::builtin::{
    GAME_CLIENT, IAM_CLIENT, NAMESPACE, PLAYER_CLIENT_ID as PLAYER_CLIENT, PLAYER1, PLAYER2,
};

/// A fakes instance on an ephemeral port with the built-in seed.
pub async fn start() -> Handle {
    start_with(FakesConfig::default()).await
}

pub async fn start_with(config: FakesConfig) -> Handle {
    fakes::spawn(config).await.expect("fakes starts")
}

/// A user access token for a seeded user, issued by the store directly (no HTTP).
pub fn user_token(
    handle: &Handle,
    (username, password): (&str, &str),
) -> accelbyte::models::iam::TokenResponseV3 {
    let client = handle
        .state
        .iam
        .client(PLAYER_CLIENT)
        .expect("seeded player client");
    handle
        .state
        .iam
        .grant_password(&client, username, password)
        .expect("seeded user logs in")
}

/// A client-credentials token for the game client, issued by the store directly (no HTTP).
pub fn game_token(handle: &Handle) -> String {
    let client = handle
        .state
        .iam
        .client(GAME_CLIENT.0)
        .expect("seeded game client");
    handle
        .state
        .iam
        .grant_client_credentials(&client)
        .expect("client token")
        .access_token
}

/// A reqwest client that never follows redirects (the login flow reads 302 `Location`s).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

/// Polls `check` until it returns true or `timeout` passes; for state that changes in another
/// task (the bounded replacement for a sleep).
pub async fn eventually<F: FnMut() -> bool>(timeout: std::time::Duration, mut check: F) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
