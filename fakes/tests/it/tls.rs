//! `fakes serve --tls`: HTTPS and WSS with the generated self-signed certificate, trusted by a
//! client that loads the written PEM (as the tutorial's client does through SSL_CERT_FILE).

use std::sync::Arc;

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_util::sync::CancellationToken;

use crate::common;

#[tokio::test]
async fn https_and_wss_work_with_the_written_certificate() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = std::env::temp_dir();
    let key = fakes::keys::SigningKey::process_default().expect("key");
    let state = fakes::AppState::new(fakes::FakesConfig::default(), key);
    let listener = fakes::server::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = listener.local_addr().unwrap().port();
    let cert = fakes::tls::self_signed(&dir, port).expect("certificate");
    let written = std::fs::read_to_string(&cert.cert_path).expect("PEM file written");
    assert!(written.contains("BEGIN CERTIFICATE"));

    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    let server_state = state.clone();
    let server = tokio::spawn(async move {
        fakes::tls::serve_tls(listener, server_state, &cert, async move {
            stop.cancelled().await
        })
        .await
    });

    let root = reqwest::Certificate::from_pem(written.as_bytes()).unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(root)
        .build()
        .unwrap();
    let base = format!("https://localhost:{port}");
    // The server task binds synchronously before spawning; retry only connection-refused races.
    let mut health = None;
    for _ in 0..100 {
        match http.get(format!("{base}/healthz")).send().await {
            Ok(resp) => {
                health = Some(resp);
                break;
            }
            Err(e) if e.is_connect() => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await
            }
            Err(e) => panic!("https request failed: {e}"),
        }
    }
    assert_eq!(health.expect("server answered").status(), 200);

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

    cancel.cancel();
    server.await.unwrap().unwrap();
}

/// DER certificates from a PEM string.
fn rustls_pemfile_certs(pem: &str) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .filter_map(Result::ok)
        .collect()
}
