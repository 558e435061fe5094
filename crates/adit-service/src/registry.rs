//! The identity registry client (Azure's `/devices` REST API).

use adit_proto::identity::{AccessPolicy, Authentication, Device, SymmetricKey};
use adit_proto::resource::COMPONENT;
use adit_proto::{ConnectionString, DeviceId, ErrorCode, Key};
use percent_encoding::utf8_percent_encode;
use reqwest::{Method, RequestBuilder, StatusCode};

use crate::{Error, ProxyConfig, ServiceCredentials, TlsOptions};

/// A new device key: 32 random bytes in base64, as the hub generates them.
fn fresh_key() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; adit_proto::key::GENERATED_KEY_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes)
}

/// The api-version Adit's clients send (that of `azure-iot-hub` 2.7.0; the hub accepts any).
pub const API_VERSION: &str = "2021-04-12";

/// A client for a hub's identity registry.
#[derive(Debug, Clone)]
pub struct RegistryClient {
    http: Http,
    base: String,
    credentials: ServiceCredentials,
}

fn device_path(id: &DeviceId) -> String {
    format!("/devices/{}", utf8_percent_encode(id.as_str(), COMPONENT))
}

use crate::http::{Http, check};

impl RegistryClient {
    /// A client for the hub named in a service connection string.
    pub fn from_connection_string(
        connection_string: &str,
        tls: &TlsOptions,
    ) -> Result<Self, Error> {
        Self::new(
            ServiceCredentials::from_connection_string(connection_string)?,
            tls,
        )
    }

    /// A client with these credentials, connecting directly.
    pub fn new(credentials: ServiceCredentials, tls: &TlsOptions) -> Result<Self, Error> {
        Self::with_proxy(credentials, tls, ProxyConfig::direct())
    }

    /// A client with these credentials whose requests go through `proxy` (HTTP CONNECT; TLS
    /// stays end to end to the hub).
    pub fn with_proxy(
        credentials: ServiceCredentials,
        tls: &TlsOptions,
        proxy: ProxyConfig,
    ) -> Result<Self, Error> {
        let http = Http::new(
            tls.client_config()?,
            std::time::Duration::from_secs(60),
            proxy,
        )?;
        Ok(Self {
            http,
            base: format!("https://{}", credentials.host_name()),
            credentials,
        })
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .query(&[("api-version", API_VERSION)])
            .header(
                reqwest::header::AUTHORIZATION,
                self.credentials.authorization(),
            )
            .header(reqwest::header::ACCEPT, "application/json")
    }

    /// Creates a device with hub-generated SAS keys. Errors: [`Error::Config`] (before any
    /// request) for an id a new identity may not take ([`DeviceId::check_creatable`]), with
    /// the hub's own message.
    pub async fn create_device(&self, id: &str) -> Result<Device, Error> {
        let id = DeviceId::new(id)
            .and_then(|d| d.check_creatable().map(|()| d))
            .map_err(|e| Error::bad_id("device", id, e))?;
        let body = Device {
            device_id: id.to_string(),
            status: Some("enabled".into()),
            authentication: Some(Authentication {
                symmetric_key: Some(SymmetricKey::default()),
                x509_thumbprint: None,
                kind: Some("sas".into()),
            }),
            ..Device::default()
        };
        self.put_device(&id, &body, None).await
    }

    /// Creates (`etag` = `None`) or replaces (`etag` = `Some("*")` or a device's etag) a device.
    pub async fn put_device(
        &self,
        id: &DeviceId,
        device: &Device,
        etag: Option<&str>,
    ) -> Result<Device, Error> {
        let mut req = self.request(Method::PUT, &device_path(id)).json(device);
        if let Some(etag) = etag {
            req = req.header(
                reqwest::header::IF_MATCH,
                format!("\"{}\"", etag.trim_matches('"')),
            );
        }
        Ok(check(self.http.send(req).await?).await?.json().await?)
    }

    /// One device.
    pub async fn get_device(&self, id: &str) -> Result<Device, Error> {
        let id = DeviceId::new(id).map_err(|e| Error::bad_id("device", id, e))?;
        Ok(check(
            self.http
                .send(self.request(Method::GET, &device_path(&id)))
                .await?,
        )
        .await?
        .json()
        .await?)
    }

    /// Up to `top` devices (at most 1000).
    pub async fn list_devices(&self, top: u32) -> Result<Vec<Device>, Error> {
        let req = self
            .request(Method::GET, "/devices")
            .query(&[("top", top.to_string())]);
        Ok(check(self.http.send(req).await?).await?.json().await?)
    }

    /// Deletes a device, whatever its version.
    pub async fn delete_device(&self, id: &str) -> Result<(), Error> {
        let id = DeviceId::new(id).map_err(|e| Error::bad_id("device", id, e))?;
        let req = self
            .request(Method::DELETE, &device_path(&id))
            .header(reqwest::header::IF_MATCH, "\"*\"");
        let response = check(self.http.send(req).await?).await?;
        if response.status() != StatusCode::NO_CONTENT && response.status() != StatusCode::OK {
            return Err(Error::Decode(format!(
                "delete answered {}",
                response.status()
            )));
        }
        Ok(())
    }

    /// GET `path` with `query`, as JSON.
    pub(crate) async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, Error> {
        let req = self.request(Method::GET, path).query(query);
        Ok(check(self.http.send(req).await?).await?.json().await?)
    }

    /// The hub's shared access policies with their keys (needs every right, as `iothubowner`).
    pub async fn policies(&self) -> Result<Vec<AccessPolicy>, Error> {
        Ok(check(
            self.http
                .send(self.request(Method::GET, "/adit/policies"))
                .await?,
        )
        .await?
        .json()
        .await?)
    }

    /// Replaces a key of shared access policy `policy`: `which` is `primary`, `secondary` or
    /// `swap` (as `az iot hub policy renew-key --renew-key`). Needs every right. Returns the
    /// policy with its new keys. The hub refuses tokens signed with a replaced key from then
    /// on and closes the device sessions that connected with one.
    pub async fn renew_policy_key(&self, policy: &str, which: &str) -> Result<AccessPolicy, Error> {
        let path = format!(
            "/adit/policies/{}/renew-key",
            utf8_percent_encode(policy, COMPONENT)
        );
        let body = serde_json::json!({ "renewKey": which });
        Ok(check(
            self.http
                .send(self.request(Method::POST, &path).json(&body))
                .await?,
        )
        .await?
        .json()
        .await?)
    }

    /// (Adit) A one-time sign-in URL for the hub's web console, signing in as this client's
    /// policy: `https://HOST:PORT/console/#sign-in=TOKEN`, good once, for five minutes (less
    /// when the SAS token this client signs with expires sooner). It is a credential: print it
    /// only to whoever may use the policy.
    pub async fn console_sign_in_url(&self) -> Result<String, Error> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Link {
            sign_in_token: String,
        }
        let link: Link = check(
            self.http
                .send(self.request(Method::POST, "/adit/console/sign-in-links"))
                .await?,
        )
        .await?
        .json()
        .await?;
        Ok(format!(
            "{}/console/#sign-in={}",
            self.base, link.sign_in_token
        ))
    }

    /// Replaces a key of SAS device `id`: `which` is `primary` or `secondary` (a fresh random
    /// 32-byte key, as the hub generates) or `swap` (as `az iot hub device-identity renew-key
    /// --key-type`). The new keys are made here and written with the device's etag, so a change
    /// made meanwhile by someone else fails with 412 instead of being overwritten. Returns the
    /// device with its new keys. The hub closes the device's sessions signed with a replaced
    /// key. Errors: [`Error::Config`] for another `which` or a device without SAS keys.
    pub async fn renew_device_key(&self, id: &str, which: &str) -> Result<Device, Error> {
        let mut device = self.get_device(id).await?;
        let keys = device
            .authentication
            .as_mut()
            .and_then(|a| a.symmetric_key.as_mut())
            .filter(|k| k.primary_key.is_some() || k.secondary_key.is_some())
            .ok_or_else(|| {
                Error::Config(format!(
                    "device {id} has no symmetric keys to renew (it does not use SAS authentication)"
                ))
            })?;
        match which {
            "primary" => keys.primary_key = Some(fresh_key()),
            "secondary" => keys.secondary_key = Some(fresh_key()),
            "swap" if keys.primary_key.is_none() || keys.secondary_key.is_none() => {
                return Err(Error::Config(format!(
                    "device {id} has only one symmetric key: nothing to swap"
                )));
            }
            "swap" => std::mem::swap(&mut keys.primary_key, &mut keys.secondary_key),
            other => {
                return Err(Error::Config(format!(
                    "which key to renew: primary, secondary or swap, not {other:?}"
                )));
            }
        }
        // Without its etag the write could overwrite a change made meanwhile.
        let etag = device
            .etag
            .clone()
            .ok_or_else(|| Error::Decode(format!("the hub sent device {id} without an etag")))?;
        let id = DeviceId::new(id).map_err(|e| Error::bad_id("device", id, e))?;
        self.put_device(&id, &device, Some(&etag)).await
    }

    /// The connection string a device uses: this hub's `HostName` and the device's primary key.
    pub fn device_connection_string(&self, device: &Device) -> Result<String, Error> {
        let id = DeviceId::new(device.device_id.as_str())
            .map_err(|e| Error::Decode(format!("device id: {e}")))?;
        let key = device
            .authentication
            .as_ref()
            .and_then(|a| a.symmetric_key.as_ref())
            .and_then(|k| k.primary_key.as_deref())
            .ok_or_else(|| Error::Hub {
                status: 400,
                code: Some(ErrorCode::ArgumentInvalid),
                message: format!(
                    "device {id} has no symmetric key (it does not use SAS authentication)"
                ),
            })?;
        let key = Key::from_base64(key).map_err(|e| Error::Decode(format!("device key: {e}")))?;
        let cs = self.credentials.connection_string();
        Ok(ConnectionString::for_device(&cs.host, cs.port, id, key).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> RegistryClient {
        let cs = format!(
            "HostName=hub.example;SharedAccessKeyName=iothubowner;SharedAccessKey={}",
            adit_proto::Key::from_bytes(&[7u8; 32])
                .expect("key")
                .to_base64()
        );
        RegistryClient::from_connection_string(&cs, &TlsOptions::default()).expect("client")
    }

    /// Each call that takes an id refuses a bad one before any request, naming it.
    #[tokio::test]
    async fn a_refused_id_is_named_in_the_error() {
        let registry = client();
        let errors = [
            registry.get_device("a/b").await.err(),
            registry.delete_device("a/b").await.err(),
            registry.create_device("a/b").await.err(),
        ];
        for error in errors {
            let text = error.map(|e| e.to_string()).unwrap_or_default();
            assert!(text.starts_with("invalid device id \"a/b\": "), "{text}");
        }
    }

    /// A client's `Debug` (as a caller's logs would show it) carries neither the shared
    /// access key nor the proxy's password.
    #[test]
    fn debug_shows_no_secret() {
        let key = adit_proto::Key::from_bytes(&[7u8; 32]).expect("key");
        let cs = format!(
            "HostName=hub.example;SharedAccessKeyName=iothubowner;SharedAccessKey={}",
            key.to_base64()
        );
        let proxy = ProxyConfig::new("http://user:pr0xy-secret@proxy.example:3128").expect("proxy");
        let registry = RegistryClient::with_proxy(
            ServiceCredentials::from_connection_string(&cs).expect("credentials"),
            &TlsOptions::default(),
            proxy,
        )
        .expect("client");
        let shown = format!("{registry:?}");
        assert!(shown.contains("proxy.example"), "{shown}");
        for secret in [key.to_base64(), "pr0xy-secret"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}
