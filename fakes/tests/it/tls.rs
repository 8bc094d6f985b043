//! `fakes serve --tls` (and `SpawnOptions::tls_cert_dir`, the same lifecycle): HTTPS and WSS with the generated self-signed certificate, trusted by a
//! client that loads the written PEM (as the tutorial's client does through SSL_CERT_FILE).

use std::sync::Arc;

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common;

#[tokio::test]
async fn https_and_wss_work_with_the_written_certificate() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let handle = fakes::server::spawn_with_options(
        fakes::FakesConfig::default(),
        fakes::server::SpawnOptions {
            tls_cert_dir: Some(std::env::temp_dir()),
            ..Default::default()
        },
    )
    .await
    .expect("fakes starts with TLS");
    let port = handle.addr.port();
    assert_eq!(handle.base_url(), format!("https://127.0.0.1:{port}"));
    let cert_path = handle.cert_path.clone().expect("a certificate was written");
    let written = std::fs::read_to_string(&cert_path).expect("PEM file written");
    assert!(written.contains("BEGIN CERTIFICATE"));
    let state = handle.state.clone();

    let root = reqwest::Certificate::from_pem(written.as_bytes()).unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(root)
        .build()
        .unwrap();
    let base = format!("https://localhost:{port}");
    // The listener is bound before `spawn_with_options` returns: no retry needed.
    let health = http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("https request");
    assert_eq!(health.status(), 200);

    // A plain-HTTP client must not get an answer from the TLS port.
    let plain_ok = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .is_ok_and(|r| r.status().is_success());
    assert!(!plain_ok, "the TLS port must not answer plain HTTP");

    // WSS to the lobby with a player token.
    let client = state.iam.client(common::PLAYER_CLIENT).unwrap();
    let token = state
        .iam
        .grant_password(&client, common::PLAYER1.0, common::PLAYER1.1)
        .unwrap()
        .access_token;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile_certs(&written) {
        roots.add(c).unwrap();
    }
    let tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut req = format!("wss://localhost:{port}/lobby/")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async_tls_with_config(
        req,
        None,
        false,
        Some(tokio_tungstenite::Connector::Rustls(Arc::new(tls))),
    )
    .await
    .expect("wss connects");
    let first = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(first.to_text().unwrap().starts_with("type: connectNotif"));

    handle.shutdown().await.expect("clean stop");
}

/// DER certificates from a PEM string.
fn rustls_pemfile_certs(pem: &str) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .filter_map(Result::ok)
        .collect()
}
