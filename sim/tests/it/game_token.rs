//! The game client's token: many releases at once share one token and one grant.

use accelbyte::client::{AbClient, Config};
use fakes::seed::builtin::{GAME_CLIENT_ID, GAME_CLIENT_SECRET, NAMESPACE};
use futures_util::future::join_all;
use sim::player::GameToken;

/// Token grants fakes answered so far.
fn grants(handle: &fakes::server::Handle) -> u64 {
    fakes::stats::report(&handle.state)
        .requests
        .routes
        .iter()
        .filter(|r| r.method == "POST" && r.route == "/iam/v3/oauth/token" && r.status == 200)
        .map(|r| r.count)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_share_one_grant_and_one_token() {
    let fakes = fakes::spawn(fakes::FakesConfig::default())
        .await
        .expect("fakes");
    let game = AbClient::new(Config::new(
        fakes.base_url().parse().expect("url"),
        GAME_CLIENT_ID,
        Some(GAME_CLIENT_SECRET.to_owned()),
        NAMESPACE,
    ))
    .expect("client");
    let token = GameToken::new(game);
    let before = grants(&fakes);

    let first: Vec<String> = join_all((0..64).map(|_| token.get()))
        .await
        .into_iter()
        .map(|t| t.expect("token"))
        .collect();
    let again: Vec<String> = join_all((0..64).map(|_| token.get()))
        .await
        .into_iter()
        .map(|t| t.expect("token"))
        .collect();

    assert!(!first[0].is_empty());
    assert!(
        first.iter().chain(&again).all(|t| *t == first[0]),
        "every caller gets the one token"
    );
    assert_eq!(grants(&fakes) - before, 1, "one grant for 128 callers");
}
