//! TLS for `fakes serve --tls`: a self-signed certificate for `localhost` and `127.0.0.1`,
//! generated at start and written to a PEM file, so clients that always use `wss://` (the
//! tutorial's test client) can trust it (`SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`).

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use axum_server::tls_rustls::RustlsConfig;

use crate::state::AppState;

/// A generated certificate and where its PEM was written.
#[derive(Debug)]
pub struct SelfSigned {
    pub cert_path: PathBuf,
    pub cert_pem: String,
    pub key_pem: String,
}

/// Generates a certificate for `localhost`, `127.0.0.1` and `::1` and writes it to `dir`.
pub fn self_signed(dir: &Path, port: u16) -> anyhow::Result<SelfSigned> {
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let certified = rcgen::generate_simple_self_signed(names)?;
    let cert_pem = certified.cert.pem();
    let key_pem = certified.key_pair.serialize_pem();
    let cert_path = dir.join(format!("matchbench-fakes-{port}.pem"));
    std::fs::write(&cert_path, &cert_pem)?;
    Ok(SelfSigned {
        cert_path,
        cert_pem,
        key_pem,
    })
}

/// Serves HTTPS/WSS on `listener` until `shutdown` completes.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    state: AppState,
    cert: &SelfSigned,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // rustls needs a process-wide crypto provider; a second install is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = RustlsConfig::from_pem(
        cert.cert_pem.clone().into_bytes(),
        cert.key_pem.clone().into_bytes(),
    )
    .await?;
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
    });
    let app = crate::app::router(state);
    axum_server::from_tcp_rustls(listener.into_std()?, config)
        .handle(handle)
        .serve(app.into_make_service_with_connect_info::<SocketAddr>())
        .await?;
    Ok(())
}
