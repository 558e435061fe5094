//! The HTTPS client both service clients use, and how hub errors become [`Error`]s.

use std::time::Duration;

use adit_proto::ErrorBody;
use adit_transport::ProxyConfig;
use reqwest::{Method, RequestBuilder, Response};

use crate::Error;

/// reqwest with the roots, timeouts, TCP options and HTTP CONNECT proxy of every Adit client.
#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
    proxy: ProxyConfig,
}

impl Http {
    /// A client with these roots, a per-request timeout, and `proxy` for the hosts it names
    /// one for (and no other: reqwest's own reading of the environment is off).
    pub fn new(
        tls: rustls::ClientConfig,
        timeout: Duration,
        proxy: ProxyConfig,
    ) -> Result<Self, Error> {
        let builder = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(Duration::from_secs(10))
            .timeout(timeout)
            .tcp_nodelay(true)
            // The same TCP keepalive as every other client socket (see adit_transport::tcp).
            .tcp_keepalive(adit_transport::tcp::KEEPALIVE_TIME)
            .tcp_keepalive_interval(adit_transport::tcp::KEEPALIVE_INTERVAL)
            .tcp_keepalive_retries(adit_transport::tcp::KEEPALIVE_RETRIES);
        let builder = match proxy.proxy() {
            None => builder.no_proxy(),
            Some(url) => {
                // reqwest tunnels (CONNECT, then TLS to the hub) to the proxy this returns;
                // the decision, NO_PROXY included, is the one the other connections take.
                let decide = proxy.clone();
                let mut via = reqwest::Proxy::custom(move |target: &reqwest::Url| {
                    let host = target.host_str()?;
                    decide.proxy_for(host).map(|p| p.address())
                });
                if let Some(auth) = url.authorization() {
                    via = via.custom_http_auth(auth.clone());
                }
                builder.proxy(via)
            }
        };
        let client = builder.build().map_err(Error::Transport)?;
        Ok(Self { client, proxy })
    }

    /// The proxy settings this client was built with.
    pub fn proxy(&self) -> &ProxyConfig {
        &self.proxy
    }

    /// A request to `url`.
    pub fn request(&self, method: Method, url: String) -> RequestBuilder {
        self.client.request(method, url)
    }

    /// Sends `request`. When it could not connect through a proxy, the error says why the
    /// proxy refused (see [`Http::explain`]).
    pub async fn send(&self, request: RequestBuilder) -> Result<Response, Error> {
        match request.send().await {
            Ok(response) => Ok(response),
            Err(e) => Err(self.explain(e).await),
        }
    }

    /// reqwest's tunnel (hyper-util's) reports a proxy's refusal without its status ("tunnel
    /// error: unsuccessful"), and a proxy it cannot reach as a bare connection error. So when
    /// a connection through a proxy fails, ask the proxy once more with Adit's own CONNECT,
    /// whose error names the proxy and its answer. If that tunnel opens, the failure was
    /// elsewhere (TLS, the hub) and reqwest's error stands. A timeout is not asked about again:
    /// it would only wait as long once more.
    async fn explain(&self, e: reqwest::Error) -> Error {
        let target = e
            .url()
            .and_then(|u| Some((u.host_str()?.to_string(), u.port_or_known_default()?)));
        let proxied = target
            .as_ref()
            .and_then(|(host, port)| Some((self.proxy.proxy_for(host)?, host, *port)));
        match proxied {
            Some((url, host, port)) if e.is_connect() && !e.is_timeout() => {
                match adit_transport::proxy::tunnel(url, host, port).await {
                    Err(refused) => Error::Proxy(refused),
                    Ok(_tunnel) => e.into(),
                }
            }
            _ => e.into(),
        }
    }
}

/// Passes a success through; turns anything else into [`Error::Hub`] with Azure's code.
pub async fn check(response: Response) -> Result<Response, Error> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.bytes().await.unwrap_or_default();
    let parsed = ErrorBody::parse(&body);
    let message = match &parsed {
        Some(b) => b.message.clone(),
        None => String::from_utf8_lossy(&body).chars().take(300).collect(),
    };
    Err(Error::Hub {
        status: status.as_u16(),
        code: parsed.and_then(|b| b.code()),
        message,
    })
}
