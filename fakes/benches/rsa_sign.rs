//! RS256 signing backends for the access tokens fakes issues: what one signature (and one whole
//! token) costs with each well-kept Rust backend, on this machine.
//!
//! Every variant signs the same signing input (`base64url(header).base64url(claims)` of a
//! token shaped like a real user grant) with the same 2048-bit key:
//!
//! - `jsonwebtoken::encode`: the path fakes used until the key pair was cached: jsonwebtoken 9
//!   (ring) parses the DER key again on every call, then signs;
//! - `ring, parse per call`: the same split in two, to show what the parse costs;
//! - `ring, cached key pair`: `ring::signature::RsaKeyPair` parsed once;
//! - `aws-lc-rs, parse per call` / `cached key pair`: the same with aws-lc-rs (the first is what
//!   jsonwebtoken 10's `aws_lc_rs` backend does for every token; the second is fakes' path);
//! - `rsa crate, CRT precomputed`: RustCrypto's `rsa` (what jsonwebtoken 10's `rust_crypto`
//!   backend uses), with the CRT values precomputed;
//! - `KeyRing::sign`: what fakes does for every token grant, header and claims included.
//!
//! Variants run interleaved in rounds, so noise from other work on the machine spreads over all
//! of them; the table shows the median and the best round. Run with:
//!
//! ```sh
//! cargo bench -p fakes --bench rsa_sign
//! ```
//!
//! Knobs (environment): `BENCH_ROUNDS` (default 15), `BENCH_ITERS` (signatures per variant per
//! round, default 200), `BENCH_ONLY` (run only the variants whose name contains it, e.g. to count
//! one variant's cycles with `perf stat -e cycles,instructions`).

use std::hint::black_box;
use std::time::Instant;

use accelbyte::models::iam::{JwtClaims, NamespaceRole, PermissionPascal};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fakes::keys::{KeyRing, SigningKey};
use fakes::seed::builtin::{NAMESPACE, PLAYER_CLIENT_ID, USER_ROLE_ID};
use rsa::RsaPrivateKey;
use rsa::pkcs1::EncodeRsaPrivateKey;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Claims shaped like a user grant's.
fn claims() -> JwtClaims {
    JwtClaims {
        sub: Some("0f8d2c6a9b3e4f5a8c7d6e5f4a3b2c1d".into()),
        jti: Some("5b1c9e2f7a4d4c3b8e6f1a2b3c4d5e6f".into()),
        iat: 1_790_000_000,
        exp: 1_790_003_600,
        namespace: NAMESPACE.into(),
        display_name: "player-000123".into(),
        roles: vec![USER_ROLE_ID.into()],
        namespace_roles: vec![NamespaceRole {
            role_id: USER_ROLE_ID.into(),
            namespace: NAMESPACE.into(),
        }],
        permissions: vec![
            PermissionPascal {
                resource: format!("NAMESPACE:{NAMESPACE}:USER:0f8d2c6a9b3e4f5a8c7d6e5f4a3b2c1d"),
                action: 15,
                sched_action: None,
                sched_cron: None,
                sched_range: None,
            },
            PermissionPascal {
                resource: format!("NAMESPACE:{NAMESPACE}:MATCHMAKING"),
                action: 1,
                sched_action: None,
                sched_cron: None,
                sched_range: None,
            },
        ],
        bans: Some(Vec::new()),
        jflgs: 1,
        scope: "account commerce social publishing analytics".into(),
        country: "US".into(),
        client_id: PLAYER_CLIENT_ID.into(),
        is_comply: true,
        ..JwtClaims::default()
    }
}

struct Variant {
    name: &'static str,
    run: Box<dyn FnMut()>,
    /// Wall time per signature, one entry per round.
    per_op_ns: Vec<f64>,
    /// This thread's CPU time per signature, one entry per round.
    cpu_per_op_ns: Vec<f64>,
}

/// This thread's CPU time so far, from `/proc/thread-self/schedstat` (nanoseconds; unlike wall
/// time it does not grow while other processes have the core). `None` where it is unreadable.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn main() -> anyhow::Result<()> {
    let rounds = env_or("BENCH_ROUNDS", 15);
    let iters = env_or("BENCH_ITERS", 200);

    let private = RsaPrivateKey::new(&mut rand::thread_rng(), 2048)?;
    let pkcs1_der = private.to_pkcs1_der()?.as_bytes().to_vec();
    let pkcs1_pem = private.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)?;
    let claims = claims();

    // The signing input every raw-signature variant signs.
    let header = r#"{"typ":"JWT","alg":"RS256","kid":"0123456789abcdef0123456789abcdef"}"#;
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims)?)
    )
    .into_bytes();

    let mut variants: Vec<Variant> = Vec::new();
    let mut add = |name: &'static str, run: Box<dyn FnMut()>| {
        variants.push(Variant {
            name,
            run,
            per_op_ns: Vec::new(),
            cpu_per_op_ns: Vec::new(),
        });
    };

    {
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(pkcs1_pem.as_bytes())?;
        let mut jwt_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        jwt_header.kid = Some("0123456789abcdef0123456789abcdef".into());
        jwt_header.typ = Some("JWT".into());
        let claims = claims.clone();
        add(
            "jsonwebtoken::encode (ring, parse per call)",
            Box::new(move || {
                black_box(jsonwebtoken::encode(&jwt_header, &claims, &key).expect("sign"));
            }),
        );
    }
    {
        let der = pkcs1_der.clone();
        let message = message.clone();
        let rng = ring::rand::SystemRandom::new();
        add(
            "ring, parse per call",
            Box::new(move || {
                let pair = ring::signature::RsaKeyPair::from_der(&der).expect("key");
                let mut sig = vec![0; pair.public().modulus_len()];
                pair.sign(&ring::signature::RSA_PKCS1_SHA256, &rng, &message, &mut sig)
                    .expect("sign");
                black_box(sig);
            }),
        );
    }
    {
        let pair = ring::signature::RsaKeyPair::from_der(&pkcs1_der).expect("key");
        let message = message.clone();
        let rng = ring::rand::SystemRandom::new();
        add(
            "ring, cached key pair",
            Box::new(move || {
                let mut sig = vec![0; pair.public().modulus_len()];
                pair.sign(&ring::signature::RSA_PKCS1_SHA256, &rng, &message, &mut sig)
                    .expect("sign");
                black_box(sig);
            }),
        );
    }
    {
        use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
        {
            let der = pkcs1_der.clone();
            let message = message.clone();
            let rng = aws_lc_rs::rand::SystemRandom::new();
            add(
                "aws-lc-rs, parse per call",
                Box::new(move || {
                    let pair = RsaKeyPair::from_der(&der).expect("key");
                    let mut sig = vec![0; pair.public_modulus_len()];
                    pair.sign(&RSA_PKCS1_SHA256, &rng, &message, &mut sig)
                        .expect("sign");
                    black_box(sig);
                }),
            );
        }
        {
            let pair = RsaKeyPair::from_der(&pkcs1_der).expect("key");
            black_box(pair.public_key());
            let message = message.clone();
            let rng = aws_lc_rs::rand::SystemRandom::new();
            add(
                "aws-lc-rs, cached key pair",
                Box::new(move || {
                    let mut sig = vec![0; pair.public_modulus_len()];
                    pair.sign(&RSA_PKCS1_SHA256, &rng, &message, &mut sig)
                        .expect("sign");
                    black_box(sig);
                }),
            );
        }
    }
    {
        use sha2::Digest;
        let mut key = private.clone();
        key.precompute()?;
        // PKCS#1 v1.5 with SHA-256's DigestInfo prefix (what `Pkcs1v15Sign::new::<Sha256>()`
        // builds; spelled out so the bench needs no extra sha2 feature).
        let prefix: Box<[u8]> = Box::new([
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ]);
        let message = message.clone();
        add(
            "rsa crate, CRT precomputed",
            Box::new(move || {
                let hashed = sha2::Sha256::digest(&message);
                let padding = rsa::Pkcs1v15Sign {
                    hash_len: Some(32),
                    prefix: prefix.clone(),
                };
                let sig = key
                    .sign_with_rng(&mut rand::thread_rng(), padding, &hashed)
                    .expect("sign");
                black_box(sig);
            }),
        );
    }
    {
        let ring = KeyRing::new(SigningKey::from_pem(&pkcs1_pem)?);
        let claims = claims.clone();
        add(
            "KeyRing::sign (fakes, whole token)",
            Box::new(move || {
                black_box(ring.sign(&claims).expect("sign"));
            }),
        );
    }

    if let Ok(only) = std::env::var("BENCH_ONLY") {
        variants.retain(|v| v.name.contains(only.as_str()));
    }
    // Warm up every variant (page faults, lazy CPU feature detection).
    for v in &mut variants {
        for _ in 0..10 {
            (v.run)();
        }
    }
    for _ in 0..rounds {
        for v in &mut variants {
            let cpu = thread_cpu_ns();
            let start = Instant::now();
            for _ in 0..iters {
                (v.run)();
            }
            v.per_op_ns
                .push(start.elapsed().as_nanos() as f64 / iters as f64);
            if let (Some(before), Some(after)) = (cpu, thread_cpu_ns()) {
                v.cpu_per_op_ns
                    .push(after.saturating_sub(before) as f64 / iters as f64);
            }
        }
    }

    println!(
        "RS256, 2048-bit key, {} B signing input; {rounds} rounds x {iters} signatures per variant",
        message.len()
    );
    println!();
    println!(
        "| variant | CPU µs/signature (median) | wall µs (median) | wall µs (best round) | signatures/s per core (CPU) |"
    );
    println!("|---|---|---|---|---|");
    for v in &mut variants {
        v.per_op_ns.sort_by(f64::total_cmp);
        v.cpu_per_op_ns.sort_by(f64::total_cmp);
        let median = v.per_op_ns[v.per_op_ns.len() / 2];
        let best = v.per_op_ns[0];
        let cpu = v
            .cpu_per_op_ns
            .get(v.cpu_per_op_ns.len() / 2)
            .copied()
            .unwrap_or(median);
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.0} |",
            v.name,
            cpu / 1e3,
            median / 1e3,
            best / 1e3,
            1e9 / cpu
        );
    }
    Ok(())
}
