//! TLS for the hub's listeners: load a configured certificate, or make dev material.
//!
//! With no `--tls-cert/--tls-key`, the hub keeps a dev CA in `<data-dir>/tls/` (made once,
//! kept across restarts so clients keep trusting it) and issues a fresh server certificate
//! from it on every start, for the configured host names. Regenerating the leaf each start
//! means a changed `--hostname` or an expired leaf never needs manual cleanup.

mod dev_ca;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

pub use dev_ca::DevCa;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A PEM file holds nothing usable.
    #[error("{path} holds no usable {what}")]
    BadPem {
        /// The file.
        path: PathBuf,
        /// `certificate` or `private key`.
        what: &'static str,
    },
    /// Writing generated material failed.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Certificate generation failed.
    #[error("cannot generate dev certificate")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the certificate or key.
    #[error("invalid TLS certificate or key")]
    Rustls(#[from] rustls::Error),
}

/// Where the server certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// A dev CA in the data directory issues one for the hub's host names.
    Generated,
    /// PEM files given by the operator.
    Files {
        /// Certificate chain, leaf first.
        cert: PathBuf,
        /// Private key (PKCS#8, PKCS#1 or SEC1).
        key: PathBuf,
    },
}

/// The server side of TLS, ready for the listeners.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// The rustls configuration every listener uses.
    pub config: Arc<ServerConfig>,
    /// The dev CA clients must trust, when the certificate was generated.
    pub ca_path: Option<PathBuf>,
}

/// Loads or generates the server certificate.
pub fn load(source: &TlsSource, data_dir: &Path, names: &[String]) -> Result<ServerTls, TlsError> {
    let (chain, key, ca_path) = match source {
        TlsSource::Files { cert, key } => (read_chain(cert)?, read_key(key)?, None),
        TlsSource::Generated => {
            let ca = DevCa::load_or_create(&data_dir.join("tls"))?;
            let (chain, key) = ca.issue_server_cert(names)?;
            (chain, key, Some(ca.cert_path().to_path_buf()))
        }
    };
    let provider = Arc::new(adit_transport::crypto::provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(ServerTls {
        config: Arc::new(config),
        ca_path,
    })
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let chain: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsError::BadPem {
            path: path.to_path_buf(),
            what: "certificate",
        });
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| TlsError::BadPem {
        path: path.to_path_buf(),
        what: "private key",
    })
}
