//! Token validation against a small IAM of our own (real sockets): keys we sign with and rotate,
//! a revocation list we fill, roles we define, and counters of what the validator fetched.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use accelbyte::bloom::BloomFilter;
use accelbyte::client::Config as AbConfig;
use accelbyte::models::iam::{
    Jwk, Jwks, JwtBan, JwtClaims, NamespaceRole, PermissionPascal, PermissionV3, RevocationList,
    RevokedUser, RoleResponseV3, TokenResponseV3,
};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use matchmaker::ags::Ags;
use matchmaker::auth::{Auth, AuthConfig, AuthError};
use matchmaker::metrics::Metrics;
use parking_lot::RwLock;
use rsa::RsaPrivateKey;
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::traits::PublicKeyParts as _;

pub(crate) const NS: &str = "game";

/// An RSA key we sign tokens with.
pub(crate) struct Key {
    pub(crate) kid: String,
    encoding: EncodingKey,
    jwk: Jwk,
}

impl Key {
    fn generate(kid: &str) -> Key {
        let private = RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("rsa key");
        let pem = private
            .to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)
            .expect("pem");
        Key {
            kid: kid.to_owned(),
            encoding: EncodingKey::from_rsa_pem(pem.as_bytes()).expect("encoding key"),
            jwk: Jwk {
                kty: "RSA".into(),
                alg: "RS256".into(),
                use_: "sig".into(),
                kid: kid.to_owned(),
                n: URL_SAFE_NO_PAD.encode(private.n().to_bytes_be()),
                e: URL_SAFE_NO_PAD.encode(private.e().to_bytes_be()),
            },
        }
    }

    pub(crate) fn sign(&self, claims: &JwtClaims) -> String {
        self.sign_as(&self.kid, claims)
    }

    pub(crate) fn sign_as(&self, kid: &str, claims: &JwtClaims) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("sign")
    }
}

/// Keys are slow to generate in debug builds: made once per test binary.
pub(crate) fn keys() -> &'static [Key; 3] {
    static KEYS: std::sync::OnceLock<[Key; 3]> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        [
            Key::generate("k1"),
            Key::generate("k2"),
            Key::generate("k3"),
        ]
    })
}

#[derive(Default)]
pub(crate) struct Iam {
    jwks: RwLock<Jwks>,
    pub(crate) revocations: RwLock<Option<RevocationList>>,
    roles: RwLock<HashMap<String, RoleResponseV3>>,
    jwks_hits: AtomicUsize,
    role_hits: AtomicUsize,
}

async fn serve_iam(iam: Arc<Iam>) -> String {
    let app = Router::new()
        .route(
            "/iam/v3/oauth/token",
            post(|| async {
                Json(TokenResponseV3 {
                    access_token: "client-token".into(),
                    expires_in: 3600,
                    token_type: "Bearer".into(),
                    ..TokenResponseV3::default()
                })
            }),
        )
        .route(
            "/iam/v3/oauth/jwks",
            get(|State(iam): State<Arc<Iam>>| async move {
                iam.jwks_hits.fetch_add(1, Ordering::SeqCst);
                Json(iam.jwks.read().clone())
            }),
        )
        .route(
            "/iam/v3/oauth/revocationlist",
            get(|State(iam): State<Arc<Iam>>| async move {
                Json(iam.revocations.read().clone().expect("a list"))
            }),
        )
        .route(
            "/iam/v3/admin/roles/{id}",
            get(
                |State(iam): State<Arc<Iam>>, Path(id): Path<String>| async move {
                    iam.role_hits.fetch_add(1, Ordering::SeqCst);
                    match iam.roles.read().get(&id) {
                        Some(role) => Ok(Json(role.clone())),
                        None => Err(StatusCode::NOT_FOUND),
                    }
                },
            ),
        )
        .with_state(iam);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

pub(crate) fn empty_list() -> RevocationList {
    RevocationList {
        revoked_tokens: BloomFilter::with_capacity(100, 0.01),
        revoked_users: vec![RevokedUser {
            id: "nobody".into(),
            revoked_at: "2020-01-01T00:00:00.000Z".into(),
        }],
    }
}

pub(crate) async fn setup(config: AuthConfig) -> (Arc<Iam>, Auth) {
    let iam = Arc::new(Iam::default());
    iam.jwks.write().keys = vec![keys()[0].jwk.clone()];
    *iam.revocations.write() = Some(empty_list());
    let base = serve_iam(iam.clone()).await;
    let metrics = Arc::new(Metrics::new(["1v1"], "memory"));
    let ags = Ags::new(
        AbConfig::new(base.parse().expect("url"), "mm", Some("s".into()), NS),
        Duration::from_secs(5),
        metrics.clone(),
    )
    .expect("client");
    let auth = Auth::new(ags, config, metrics);
    auth.refresh_keys().await.expect("keys");
    auth.refresh_revocations().await.expect("revocations");
    (iam, auth)
}

pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A user token of `NS` granting matchmaking directly.
fn claims(user: &str) -> JwtClaims {
    JwtClaims {
        sub: Some(user.into()),
        iat: now() - 5,
        exp: now() + 3600,
        namespace: NS.into(),
        permissions: vec![PermissionPascal {
            resource: format!("NAMESPACE:{NS}:MATCHMAKING"),
            action: 1,
            sched_action: None,
            sched_cron: None,
            sched_range: None,
        }],
        ..JwtClaims::default()
    }
}

#[tokio::test]
async fn a_valid_token_is_accepted_without_asking_iam() {
    let (iam, auth) = setup(AuthConfig::default()).await;
    let hits = iam.jwks_hits.load(Ordering::SeqCst);
    let principal = auth
        .authenticate(&keys()[0].sign(&claims("u1")))
        .await
        .expect("valid");
    assert_eq!(principal.user_id.as_str(), "u1");
    assert_eq!(principal.namespace, NS);
    assert_eq!(
        iam.jwks_hits.load(Ordering::SeqCst),
        hits,
        "no fetch per request"
    );
}

#[tokio::test]
async fn expiry_and_not_before_allow_a_bounded_skew() {
    let config = AuthConfig {
        clock_skew: Duration::from_secs(30),
        ..AuthConfig::default()
    };
    let (_iam, auth) = setup(config).await;
    let key = &keys()[0];
    let just_expired = JwtClaims {
        exp: now() - 10,
        ..claims("u")
    };
    assert!(
        auth.authenticate(&key.sign(&just_expired)).await.is_ok(),
        "within skew"
    );
    let expired = JwtClaims {
        exp: now() - 120,
        ..claims("u")
    };
    assert_eq!(
        auth.authenticate(&key.sign(&expired)).await,
        Err(AuthError::Expired)
    );
    let early = JwtClaims {
        nbf: Some(now() + 120),
        ..claims("u")
    };
    assert_eq!(
        auth.authenticate(&key.sign(&early)).await,
        Err(AuthError::NotYetValid)
    );
    let no_exp = serde_json::json!({"sub": "u", "namespace": NS, "iat": now()});
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid.clone());
    let token = jsonwebtoken::encode(&header, &no_exp, &key.encoding).expect("sign");
    assert_eq!(auth.authenticate(&token).await, Err(AuthError::Malformed));
}

#[tokio::test]
async fn only_rs256_signed_by_a_known_key_is_accepted() {
    let (_iam, auth) = setup(AuthConfig::default()).await;
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some("k1".into());
    let hmac = jsonwebtoken::encode(
        &hs,
        &claims("u"),
        &EncodingKey::from_secret(keys()[0].jwk.n.as_bytes()),
    )
    .expect("sign");
    assert!(matches!(
        auth.authenticate(&hmac).await,
        Err(AuthError::Algorithm(_))
    ));
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims("u")).expect("json"))
    );
    assert_eq!(auth.authenticate(&none).await, Err(AuthError::Malformed));
    let forged = keys()[1].sign_as("k1", &claims("u"));
    assert_eq!(
        auth.authenticate(&forged).await,
        Err(AuthError::BadSignature)
    );
    assert_eq!(auth.authenticate("a.b.c").await, Err(AuthError::Malformed));
}

#[tokio::test]
async fn an_unknown_key_triggers_one_rate_limited_refetch() {
    let config = AuthConfig {
        jwks_refetch_interval: Duration::from_secs(60),
        ..AuthConfig::default()
    };
    let (iam, auth) = setup(config).await;
    let before = iam.jwks_hits.load(Ordering::SeqCst);
    iam.jwks.write().keys.push(keys()[1].jwk.clone());
    let rotated = keys()[1].sign(&claims("u"));
    assert!(
        auth.authenticate(&rotated).await.is_ok(),
        "rotated key found"
    );
    assert_eq!(iam.jwks_hits.load(Ordering::SeqCst), before + 1);

    let unknown = keys()[2].sign(&claims("u"));
    for _ in 0..5 {
        assert_eq!(
            auth.authenticate(&unknown).await,
            Err(AuthError::UnknownKey)
        );
    }
    assert_eq!(
        iam.jwks_hits.load(Ordering::SeqCst),
        before + 1,
        "no refetch within the interval"
    );
    assert!(
        auth.authenticate(&rotated).await.is_ok(),
        "known keys still work"
    );
}

#[tokio::test]
async fn revoked_tokens_and_users_are_refused() {
    let (iam, auth) = setup(AuthConfig::default()).await;
    let key = &keys()[0];
    let revoked = key.sign(&claims("u1"));
    let fine = key.sign(&claims("u2"));
    let old = key.sign(&JwtClaims {
        iat: now() - 600,
        ..claims("u3")
    });
    let fresh = key.sign(&JwtClaims {
        iat: now(),
        ..claims("u3")
    });
    let mut list = empty_list();
    list.revoked_tokens.insert(&revoked);
    let at = chrono::Utc::now() - chrono::Duration::seconds(60);
    list.revoked_users.push(RevokedUser {
        id: "u3".into(),
        revoked_at: at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
    });
    *iam.revocations.write() = Some(list);
    auth.refresh_revocations().await.expect("refresh");

    assert_eq!(auth.authenticate(&revoked).await, Err(AuthError::Revoked));
    assert!(auth.authenticate(&fine).await.is_ok());
    assert_eq!(
        auth.authenticate(&old).await,
        Err(AuthError::Revoked),
        "issued before the user's revocation"
    );
    assert!(auth.authenticate(&fresh).await.is_ok(), "issued after it");
}

#[tokio::test]
async fn namespace_user_and_permission_are_required() {
    let (iam, auth) = setup(AuthConfig::default()).await;
    let key = &keys()[0];
    let elsewhere = JwtClaims {
        namespace: "other".into(),
        ..claims("u")
    };
    assert!(matches!(
        auth.authenticate(&key.sign(&elsewhere)).await,
        Err(AuthError::WrongNamespace { .. })
    ));
    let client = JwtClaims {
        sub: None,
        ..claims("u")
    };
    assert_eq!(
        auth.authenticate(&key.sign(&client)).await,
        Err(AuthError::NotUserToken)
    );

    // No direct permission: granted only through roles, looked up and cached.
    iam.roles.write().insert(
        "player".into(),
        RoleResponseV3 {
            admin_role: false,
            is_wildcard: false,
            permissions: vec![PermissionV3 {
                resource: "NAMESPACE:{namespace}:MATCHMAKING".into(),
                action: 3,
                sched_action: None,
                sched_cron: None,
                sched_range: None,
            }],
            role_id: "player".into(),
            role_name: "Player".into(),
        },
    );
    let bare = JwtClaims {
        permissions: Vec::new(),
        ..claims("u")
    };
    let forbidden = auth.authenticate(&key.sign(&bare)).await;
    assert!(
        matches!(forbidden, Err(AuthError::Forbidden { .. })),
        "{forbidden:?}"
    );

    let by_namespace_role = JwtClaims {
        namespace_roles: vec![NamespaceRole {
            role_id: "player".into(),
            namespace: NS.into(),
        }],
        ..bare.clone()
    };
    let token = key.sign(&by_namespace_role);
    assert!(auth.authenticate(&token).await.is_ok());
    assert!(auth.authenticate(&token).await.is_ok());
    assert_eq!(
        iam.role_hits.load(Ordering::SeqCst),
        1,
        "the role is cached"
    );

    let role_for_another_namespace = JwtClaims {
        namespace_roles: vec![NamespaceRole {
            role_id: "player".into(),
            namespace: "other".into(),
        }],
        ..bare.clone()
    };
    assert!(matches!(
        auth.authenticate(&key.sign(&role_for_another_namespace))
            .await,
        Err(AuthError::Forbidden { .. })
    ));
    let by_role = JwtClaims {
        roles: vec!["missing".into(), "player".into()],
        ..bare
    };
    assert!(
        auth.authenticate(&key.sign(&by_role)).await.is_ok(),
        "a 404 role grants nothing"
    );
}

#[tokio::test]
async fn nothing_is_accepted_before_keys_are_loaded() {
    let iam = Arc::new(Iam::default());
    let base = serve_iam(iam).await;
    let metrics = Arc::new(Metrics::new(["1v1"], "memory"));
    let ags = Ags::new(
        AbConfig::new(base.parse().expect("url"), "mm", Some("s".into()), NS),
        Duration::from_secs(5),
        metrics.clone(),
    )
    .expect("client");
    let auth = Auth::new(ags, AuthConfig::default(), metrics);
    assert!(!auth.is_ready());
    assert!(matches!(
        auth.authenticate(&keys()[0].sign(&claims("u"))).await,
        Err(AuthError::NotReady(_))
    ));
}

fn ban(kind: &str, end_date: &str, enabled: bool, namespace: &str) -> JwtBan {
    JwtBan {
        ban: kind.into(),
        end_date: end_date.into(),
        enabled,
        targeted_namespace: namespace.into(),
    }
}

/// A `MATCHMAKING` or `LOGIN` ban in force is refused (403); bans that ended, are disabled,
/// target another namespace or are of another kind are not.
#[tokio::test]
async fn bans_in_force_are_refused() {
    let (_iam, auth) = setup(AuthConfig::default()).await;
    let ahead = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let past = (chrono::Utc::now() - chrono::Duration::days(1)).to_rfc3339();
    let with = |bans: Vec<JwtBan>| {
        keys()[0].sign(&JwtClaims {
            bans: Some(bans),
            ..claims("u")
        })
    };
    for bans in [
        vec![ban("MATCHMAKING", &ahead, true, "")],
        vec![ban("LOGIN", &ahead, true, NS)],
        vec![
            ban("CHAT_SEND", &ahead, true, ""),
            ban("MATCHMAKING", &ahead, true, ""),
        ],
        vec![ban("MATCHMAKING", "not a date", true, "")],
    ] {
        let error = auth
            .authenticate(&with(bans.clone()))
            .await
            .expect_err("banned");
        assert!(
            matches!(error, AuthError::Banned { .. }),
            "{bans:?}: {error:?}"
        );
        assert_eq!(error.status(), 403);
    }
    for bans in [
        vec![],
        vec![ban("MATCHMAKING", &past, true, "")],
        vec![ban("MATCHMAKING", &ahead, false, "")],
        vec![ban("LOGIN", &ahead, true, "another-game")],
        vec![ban("CHAT_SEND", &ahead, true, "")],
    ] {
        auth.authenticate(&with(bans.clone()))
            .await
            .unwrap_or_else(|e| panic!("{bans:?} does not keep the player out: {e:?}"));
    }
}

/// `is_comply` is read only when the service asks for it (`require_comply`).
#[tokio::test]
async fn is_comply_is_required_only_when_configured() {
    let not_comply = keys()[0].sign(&JwtClaims {
        is_comply: false,
        ..claims("u")
    });
    let comply = keys()[0].sign(&JwtClaims {
        is_comply: true,
        ..claims("u")
    });
    let (_iam, lenient) = setup(AuthConfig::default()).await;
    lenient
        .authenticate(&not_comply)
        .await
        .expect("not enforced by default");
    let (_iam, strict) = setup(AuthConfig {
        require_comply: true,
        ..AuthConfig::default()
    })
    .await;
    assert_eq!(
        strict.authenticate(&not_comply).await,
        Err(AuthError::NotComply)
    );
    strict.authenticate(&comply).await.expect("comply");
}

#[tokio::test]
async fn a_remembered_token_is_refused_once_revoked_or_its_key_is_withdrawn() {
    let (iam, auth) = setup(AuthConfig::default()).await;
    let key = &keys()[0];
    let token = key.sign(&claims("u1"));
    let other = key.sign(&claims("u2"));
    for _ in 0..2 {
        assert!(
            auth.authenticate(&token).await.is_ok(),
            "valid, then remembered"
        );
        assert!(auth.authenticate(&other).await.is_ok());
    }

    let mut list = empty_list();
    list.revoked_tokens.insert(&token);
    *iam.revocations.write() = Some(list);
    auth.refresh_revocations().await.expect("refresh");
    assert_eq!(auth.authenticate(&token).await, Err(AuthError::Revoked));
    assert!(auth.authenticate(&other).await.is_ok(), "others unaffected");

    iam.jwks.write().keys = vec![keys()[1].jwk.clone()];
    auth.refresh_keys().await.expect("keys");
    assert_eq!(
        auth.authenticate(&other).await,
        Err(AuthError::UnknownKey),
        "its key left the JWKS"
    );
}
