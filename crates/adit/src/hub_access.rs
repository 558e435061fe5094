//! Resolves how a command reaches the hub: explicit flags and env first, then the files a
//! local `adit hub` leaves in its data directory, so commands run beside a dev hub need no
//! flags at all.

use std::path::PathBuf;

#[cfg(feature = "full")]
use adit_service::{RegistryClient, ServiceClient, ServiceCredentials};
use adit_transport::{ProxyConfig, TlsOptions};
#[cfg(feature = "full")]
use anyhow::{Context as _, bail};

#[cfg(feature = "full")]
use crate::cli::HubAccess;
use crate::cli::ProxyArgs;

fn data_dir() -> PathBuf {
    std::env::var_os("ADIT_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("adit-data"))
}

/// `--ca-file`, or the dev CA of a hub in the data directory, or the system's roots.
pub fn tls_options(ca_file: Option<&std::path::Path>) -> TlsOptions {
    if let Some(ca) = ca_file {
        return TlsOptions::with_ca_file(ca);
    }
    let dev_ca = data_dir().join("tls").join("ca.pem");
    if dev_ca.exists() {
        TlsOptions::with_ca_file(dev_ca)
    } else {
        TlsOptions::default()
    }
}

#[cfg(feature = "full")]
impl HubAccess {
    /// The service connection string to use.
    pub fn connection_string(&self) -> anyhow::Result<String> {
        if let Some(cs) = &self.connection_string {
            return Ok(cs.clone());
        }
        let file = data_dir().join(adit_hub::hub::OWNER_CONNECTION_STRING_FILE);
        if file.exists() {
            let cs = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            return Ok(cs.trim().to_string());
        }
        bail!(
            "no connection string: pass --connection-string, set ADIT_CONNECTION_STRING, or run beside a hub's data directory ({} not found)",
            file.display()
        )
    }

    /// The TLS trust settings to use.
    pub fn tls(&self) -> TlsOptions {
        tls_options(self.ca_file.as_deref())
    }

    /// A stream client for the resolved hub.
    pub fn service(&self) -> anyhow::Result<ServiceClient> {
        Ok(ServiceClient::with_proxy(
            ServiceCredentials::from_connection_string(&self.connection_string()?)?,
            &self.tls(),
            self.proxy.config()?,
        )?)
    }

    /// A registry client for the resolved hub.
    pub fn registry(&self) -> anyhow::Result<RegistryClient> {
        Ok(RegistryClient::with_proxy(
            ServiceCredentials::from_connection_string(&self.connection_string()?)?,
            &self.tls(),
            self.proxy.config()?,
        )?)
    }
}

impl ProxyArgs {
    /// `--proxy URL` (with the environment's no-proxy list), `--proxy none` (directly), or
    /// else the proxy the environment names, as curl reads it.
    pub fn config(&self) -> anyhow::Result<ProxyConfig> {
        let config = match self.proxy.as_deref().map(str::trim) {
            Some(none) if none.is_empty() || none.eq_ignore_ascii_case("none") => {
                ProxyConfig::direct()
            }
            Some(url) => ProxyConfig::new(url)?.with_no_proxy_from_env(),
            None => ProxyConfig::from_env()?,
        };
        if let Some(url) = config.proxy() {
            tracing::info!(proxy = %url, "connecting to the hub through an HTTP proxy");
        }
        Ok(config)
    }
}
