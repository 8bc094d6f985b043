//! The match function's callers' tokens over a real gRPC socket: the server on 127.0.0.1 behind
//! `RequireToken`, the validator fed by a small IAM of our own (see `auth.rs`), so every
//! refusal — missing, not bearer, malformed, bad signature, expired, revoked, another
//! namespace, no permission — can be made on purpose. The health service needs no token; with
//! the check off, calls need none either.

use accelbyte::models::iam::{JwtClaims, PermissionPascal};
use futures_util::stream;
use matchmaker::auth::AuthConfig;
use matchmaker::extend::proto::match_function_client::MatchFunctionClient;
use matchmaker::extend::proto::{
    GetStatCodesRequest, MakeMatchesRequest, Rules, make_matches_request,
};
use matchmaker::extend::{
    CallerCheck, GrpcHandle, MatchFunctionService, RequireToken, spawn_grpc_with,
};
use tonic::Code;
use tonic::transport::Channel;

use crate::auth::{NS, empty_list, keys, now, setup};

const RULES: &str = r#"{"alliance": {"min_number": 2, "max_number": 2, "player_min_number": 1, "player_max_number": 1}}"#;

/// A client token of `NS` (no `sub`) holding the match function permission.
fn caller_claims() -> JwtClaims {
    JwtClaims {
        iat: now() - 5,
        exp: now() + 3600,
        namespace: NS.into(),
        client_id: "ags-matchmaking".into(),
        permissions: vec![PermissionPascal {
            resource: format!("NAMESPACE:{NS}:MATCHMAKING:FUNCTIONS"),
            action: 2,
            sched_action: None,
            sched_cron: None,
            sched_range: None,
        }],
        ..JwtClaims::default()
    }
}

async fn client(server: &GrpcHandle) -> MatchFunctionClient<Channel> {
    MatchFunctionClient::connect(server.url())
        .await
        .expect("connect")
}

/// `GetStatCodes` with `authorization` set to `header` (none when `None`).
async fn stat_codes(
    server: &GrpcHandle,
    header: Option<&str>,
) -> Result<Vec<String>, tonic::Status> {
    let mut request = tonic::Request::new(GetStatCodesRequest {
        rules: Some(Rules {
            json: RULES.to_owned(),
        }),
    });
    if let Some(header) = header {
        request
            .metadata_mut()
            .insert("authorization", header.parse().expect("ascii"));
    }
    client(server)
        .await
        .get_stat_codes(request)
        .await
        .map(|r| r.into_inner().codes)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn callers_tokens_are_checked_over_grpc() {
    let (iam, auth) = setup(AuthConfig::default()).await;
    let key = &keys()[0];
    let good = key.sign(&caller_claims());
    let revoked = key.sign(&JwtClaims {
        jti: Some("revoked".into()),
        ..caller_claims()
    });
    let mut list = empty_list();
    list.revoked_tokens.insert(&revoked);
    *iam.revocations.write() = Some(list);
    auth.refresh_revocations().await.expect("revocations");
    let server = spawn_grpc_with(
        MatchFunctionService::default(),
        RequireToken::new(CallerCheck::new(auth)),
    )
    .await
    .expect("serve");

    let codes = stat_codes(&server, Some(&bearer(&good)))
        .await
        .expect("a good caller token is accepted");
    assert_eq!(codes, vec!["mmr".to_owned()]);
    // A user token with the permission is a caller too (AccelByte's validators accept both).
    let user = key.sign(&JwtClaims {
        sub: Some("u1".into()),
        ..caller_claims()
    });
    assert!(stat_codes(&server, Some(&bearer(&user))).await.is_ok());

    let expired = key.sign(&JwtClaims {
        iat: now() - 7200,
        exp: now() - 3600,
        ..caller_claims()
    });
    // Signed by a key the JWKS does not hold, under the name of one it does.
    let forged = keys()[1].sign_as(&keys()[0].kid, &caller_claims());
    let unauthenticated = [
        ("missing", None),
        ("not bearer", Some("Basic bWY6c2VjcmV0".to_owned())),
        ("malformed", Some(bearer("not-a-jwt"))),
        ("bad signature", Some(bearer(&forged))),
        ("expired", Some(bearer(&expired))),
        ("revoked", Some(bearer(&revoked))),
    ];
    for (case, header) in unauthenticated {
        let status = stat_codes(&server, header.as_deref())
            .await
            .expect_err(case);
        assert_eq!(status.code(), Code::Unauthenticated, "{case}: {status:?}");
    }

    let other_namespace = key.sign(&JwtClaims {
        namespace: "other".into(),
        ..caller_claims()
    });
    let no_permission = key.sign(&JwtClaims {
        permissions: vec![PermissionPascal {
            resource: format!("NAMESPACE:{NS}:MATCHMAKING:TICKET"),
            action: 2,
            sched_action: None,
            sched_cron: None,
            sched_range: None,
        }],
        ..caller_claims()
    });
    for (case, token) in [
        ("another namespace", &other_namespace),
        ("no permission", &no_permission),
    ] {
        let status = stat_codes(&server, Some(&bearer(token)))
            .await
            .expect_err(case);
        assert_eq!(status.code(), Code::PermissionDenied, "{case}: {status:?}");
    }
    let status = stat_codes(&server, Some(&bearer(&no_permission)))
        .await
        .expect_err("no permission");
    assert!(
        status
            .message()
            .contains("NAMESPACE:game:MATCHMAKING:FUNCTIONS"),
        "names the permission: {status:?}"
    );

    // The streams are behind the same check.
    let parameters = MakeMatchesRequest {
        request_type: Some(make_matches_request::RequestType::Parameters(
            make_matches_request::MakeMatchesParameters {
                scope: None,
                rules: Some(Rules {
                    json: RULES.to_owned(),
                }),
                tick_id: 1,
            },
        )),
    };
    let status = client(&server)
        .await
        .make_matches(stream::iter(vec![parameters.clone()]))
        .await
        .expect_err("a stream without a token");
    assert_eq!(status.code(), Code::Unauthenticated);
    let mut request = tonic::Request::new(stream::iter(vec![parameters]));
    request
        .metadata_mut()
        .insert("authorization", bearer(&good).parse().expect("ascii"));
    assert!(client(&server).await.make_matches(request).await.is_ok());

    // A load balancer's probe carries no token.
    let channel = Channel::from_shared(server.url())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let answer = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health needs no token")
        .into_inner();
    assert_eq!(
        answer.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    server.shutdown().await.expect("stops");
}

#[tokio::test]
async fn with_the_check_off_calls_need_no_token() {
    let server = spawn_grpc_with(MatchFunctionService::default(), RequireToken::off())
        .await
        .expect("serve");
    assert_eq!(
        stat_codes(&server, None).await.expect("no token needed"),
        vec!["mmr".to_owned()]
    );
    server.shutdown().await.expect("stops");
}
