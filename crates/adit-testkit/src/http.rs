//! HTTPS clients for tests.

use std::path::Path;
use std::sync::Arc;

/// A rustls client configuration that trusts only the CA in `ca_path`.
pub fn client_tls_config(ca_path: &Path) -> rustls::ClientConfig {
    let pem = std::fs::read(ca_path).expect("CA file readable");
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject as _;
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots
            .add(cert.expect("CA PEM parses"))
            .expect("CA accepted");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// A reqwest client that trusts only the CA in `ca_path`.
pub fn https_client(ca_path: &Path) -> reqwest::Client {
    let config = client_tls_config(ca_path);
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .build()
        .expect("client builds")
}
