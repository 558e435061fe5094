//! Joining a gateway stream again after its leg dropped, with the resume credential the hub
//! gave at the last join: [`GatewayReattach`], the [`Reattach`] of `adit.stream.v1` sessions
//! over the gateway. Tokens are bearer credentials: they are never logged, shown by `Debug`
//! or put in an error.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;

use super::{GatewayError, GatewayStream, Offer, chose_subprotocol, join};
use crate::mux_session::{DEFAULT_GRACE, Reattach, ReattachError};
use crate::{Keepalive, ProxyConfig};

/// Upgrade response header with the bearer token for this stream's next attach in the same
/// role, good for one attach.
pub const RESUME_TOKEN_HEADER: &str = "adit-resume-token";

/// Upgrade response header with the resume grace, in whole seconds: how long the hub parks one
/// half of the stream while the other's leg is away.
pub const RESUME_GRACE_HEADER: &str = "adit-resume-grace";

/// The hub's resume credential for one half of a stream: a token good for one attach, and the
/// grace within which to use it. `Debug` hides the token.
#[derive(Clone, PartialEq, Eq)]
pub struct ResumeGrant {
    token: String,
    grace: Duration,
}

impl ResumeGrant {
    /// The grant an upgrade response carries ([`RESUME_TOKEN_HEADER`], [`RESUME_GRACE_HEADER`]);
    /// `None` without a usable token. A missing or non-numeric grace is
    /// [`DEFAULT_GRACE`], the hub's own default.
    pub fn from_response(response: &http::Response<()>) -> Option<Self> {
        let headers = response.headers();
        let token = headers.get(RESUME_TOKEN_HEADER)?.to_str().ok()?;
        if token.is_empty() {
            return None;
        }
        let grace = headers
            .get(RESUME_GRACE_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(DEFAULT_GRACE, Duration::from_secs);
        Some(Self {
            token: token.to_string(),
            grace,
        })
    }

    /// The bearer token for the next attach.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// How long the hub keeps the other half waiting for this one (a session's
    /// [`crate::mux_session::ResumeOptions::grace`]).
    pub fn grace(&self) -> Duration {
        self.grace
    }
}

impl fmt::Debug for ResumeGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResumeGrant")
            .field("token", &"<hidden>")
            .field("grace", &self.grace)
            .finish()
    }
}

/// Rejoins the gateway stream at `url` as the same half, each time with the latest resume
/// token, offering `adit.stream.v1`. An HTTP 401 or 404 refusal (the token was refused, the
/// stream is unknown), a stream no longer multiplexed or no token left is
/// [`ReattachError::Gone`]; connecting, TLS, the proxy, timeouts and other refusals are
/// [`ReattachError::Retry`], the token kept: the hub did not take it.
pub struct GatewayReattach {
    url: String,
    tls: Arc<ClientConfig>,
    keepalive: Option<Keepalive>,
    proxy: ProxyConfig,
    grant: Option<ResumeGrant>,
}

impl GatewayReattach {
    /// Rejoins `url` (the stream's gateway URL) with `grant`, the credential from the last
    /// join ([`super::ResumableJoin::resume`]), the same TLS, keep-alive and proxy.
    pub fn new(
        url: impl Into<String>,
        grant: ResumeGrant,
        tls: Arc<ClientConfig>,
        keepalive: Option<Keepalive>,
        proxy: ProxyConfig,
    ) -> Self {
        Self {
            url: url.into(),
            tls,
            keepalive,
            proxy,
            grant: Some(grant),
        }
    }

    /// The grace the hub gave at the last join, while it left a credential for the next.
    pub fn grace(&self) -> Option<Duration> {
        self.grant.as_ref().map(ResumeGrant::grace)
    }

    /// The credential for the next attach, if the last join left one.
    pub fn grant(&self) -> Option<&ResumeGrant> {
        self.grant.as_ref()
    }

    /// Takes what a join attempt gave: on success, the new credential replaces the used one.
    fn joined<S>(
        &mut self,
        joined: Result<(S, http::Response<()>), GatewayError>,
    ) -> Result<S, ReattachError> {
        let (stream, response) = joined.map_err(|e| classify(&e))?;
        // The hub took the token either way: the next attach needs the new one.
        self.grant = ResumeGrant::from_response(&response);
        match chose_subprotocol(&response) {
            Ok(true) => Ok(stream),
            Ok(false) => Err(ReattachError::Gone(
                "the gateway joined the stream again without adit.stream.v1".into(),
            )),
            Err(e) => Err(ReattachError::Gone(e.to_string())),
        }
    }
}

impl fmt::Debug for GatewayReattach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayReattach")
            .field("url", &self.url)
            .field("keepalive", &self.keepalive)
            .field("proxy", &self.proxy)
            .field("grant", &self.grant)
            .finish_non_exhaustive()
    }
}

impl Reattach for GatewayReattach {
    type Link = GatewayStream;

    async fn reattach(&mut self) -> Result<GatewayStream, ReattachError> {
        let Some(grant) = &self.grant else {
            return Err(ReattachError::Gone(
                "the gateway gave no resume credential for another attach".into(),
            ));
        };
        let token = grant.token.clone();
        let joined = join(
            &self.url,
            &token,
            self.tls.clone(),
            self.keepalive,
            &self.proxy,
            Offer::Multiplexed,
        )
        .await;
        self.joined(joined)
    }
}

/// Whether a failed join is worth another attempt.
fn classify(e: &GatewayError) -> ReattachError {
    use tokio_websockets::upgrade::Error as Upgrade;
    let refused = match e {
        GatewayError::Upgrade(tokio_websockets::Error::Upgrade(
            Upgrade::DidNotSwitchProtocols(status),
        )) => Some(*status),
        _ => None,
    };
    match (e, refused) {
        (_, Some(status @ (401 | 404))) => ReattachError::Gone(format!(
            "the gateway refused to resume the stream (HTTP {status}: the resume credential \
             was refused or the stream is over)"
        )),
        (
            GatewayError::BadUrl(_)
            | GatewayError::BadToken
            | GatewayError::NotMultiplexed
            | GatewayError::Subprotocol(_),
            _,
        ) => ReattachError::Gone(chain(e)),
        _ => ReattachError::Retry(chain(e)),
    }
}

/// `e` and its sources, each once.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut last = text.clone();
    let mut source = e.source();
    while let Some(s) = source {
        let now = s.to_string();
        if now != last {
            text.push_str(": ");
            text.push_str(&now);
        }
        last = now;
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests;
