//! Which certificate authorities the SDK trusts.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Why a TLS client configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The CA file could not be read.
    #[error("cannot read CA file {path}")]
    ReadCaFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The CA file holds no PEM certificate.
    #[error("CA file {0} holds no PEM certificate")]
    NoCertificate(PathBuf),
    /// rustls refused a certificate or the configuration.
    #[error("TLS setup failed")]
    Rustls(#[from] rustls::Error),
}

/// TLS trust settings.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// Trust only the CA certificates in this PEM file (e.g. a hub's dev CA). When `None`, the
    /// operating system's roots are trusted.
    pub ca_file: Option<PathBuf>,
}

impl TlsOptions {
    /// Trust only the CAs in `path`.
    pub fn with_ca_file(path: impl Into<PathBuf>) -> Self {
        Self {
            ca_file: Some(path.into()),
        }
    }

    /// A rustls client configuration with these roots.
    pub fn client_config(&self) -> Result<ClientConfig, TlsError> {
        let mut roots = RootCertStore::empty();
        match &self.ca_file {
            Some(path) => {
                for cert in read_pem_certs(path)? {
                    roots.add(cert)?;
                }
            }
            None => {
                let loaded = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(loaded.certs);
            }
        }
        let provider = Arc::new(crate::crypto::provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(config)
    }
}

fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = std::fs::read(path).map_err(|source| TlsError::ReadCaFile {
        path: path.to_path_buf(),
        source,
    })?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(path.to_path_buf()));
    }
    Ok(certs)
}
