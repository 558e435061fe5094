//! The `SignedIn` extractor: the console session behind a request's cookie, with the
//! permissions its policy has now, and the check that a request changing something comes from
//! the console's own page (`docs/console.md`, CSRF).

use adit_proto::Permissions;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use tokio::time::Instant;

use super::ConsoleState;
use super::json_error::ConsoleError;

/// The session cookie's name. The `__Host-` prefix makes browsers refuse it unless it is
/// Secure, for `Path=/` and without a `Domain`: no sibling subdomain can plant one.
pub const COOKIE: &str = "__Host-adit_console";
/// The header a state-changing request must carry.
pub const CSRF_HEADER: &str = "x-adit-console";

/// A signed-in console user.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The session id (the cookie's value).
    pub session: String,
    /// The policy signed in with.
    pub policy: String,
    /// What it may do now.
    pub rights: Permissions,
    /// When the session ends unless used again.
    pub ends: Instant,
    /// The key the browser signed in with: what the console signs its own requests with (a
    /// terminal's stream). Never printed (`Key`'s `Debug` hides it).
    pub key: adit_proto::Key,
}

impl SignedIn {
    /// 403 naming the missing right, unless the policy has `needed`.
    pub fn require(&self, needed: Permissions) -> Result<(), ConsoleError> {
        if self.rights.contains(needed) {
            return Ok(());
        }
        Err(ConsoleError::new(
            StatusCode::FORBIDDEN,
            format!("the policy {} lacks {needed}", self.policy),
        ))
    }
}

impl SignedIn {
    /// Whether what this request started (the live feed, a terminal) may go on: the session
    /// was not signed out or expired, and its policy still holds its key and `needed`.
    pub fn still_valid(&self, state: &ConsoleState, needed: Permissions) -> bool {
        state.sessions.is_valid(&self.session)
            && state
                .app
                .auth
                .policy_rights_with(&self.policy, &self.key)
                .is_some_and(|r| r.contains(needed))
    }

    /// Resolves once [`SignedIn::still_valid`] fails, checked every [`RECHECK`].
    pub async fn ended(&self, state: &ConsoleState, needed: Permissions) {
        let mut every = tokio::time::interval(RECHECK);
        loop {
            every.tick().await;
            if !self.still_valid(state, needed) {
                return;
            }
        }
    }
}

/// How often a long-lived console connection checks that its session is still valid.
pub const RECHECK: std::time::Duration = std::time::Duration::from_secs(5);

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether the request comes from a page of this hub: its `Origin`, when the browser sends
/// one, names the host the request was sent to. Browsers send `Origin` on every cross-site
/// request that changes something, so a foreign page is always caught here.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match (origin.to_str().ok(), host) {
        (Some(origin), Some(host)) => origin
            .strip_prefix("https://")
            .is_some_and(|o| o.eq_ignore_ascii_case(host)),
        _ => false,
    }
}

/// A request that changes something (not GET or HEAD) must carry `X-Adit-Console: 1`, which
/// a form or another site's script cannot send without the hub's consent, and come from this
/// hub's origin.
fn csrf_ok(parts: &Parts) -> bool {
    if matches!(parts.method, Method::GET | Method::HEAD) {
        return same_origin(&parts.headers);
    }
    parts
        .headers
        .get(CSRF_HEADER)
        .is_some_and(|v| v.as_bytes() == b"1")
        && same_origin(&parts.headers)
}

impl FromRequestParts<ConsoleState> for SignedIn {
    type Rejection = ConsoleError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ConsoleState,
    ) -> Result<Self, ConsoleError> {
        if !csrf_ok(parts) {
            return Err(ConsoleError::new(
                StatusCode::FORBIDDEN,
                "this request must come from the console's own page",
            ));
        }
        let session = cookie(&parts.headers, COOKIE).ok_or_else(ConsoleError::signed_out)?;
        let (grant, ends) = state
            .sessions
            .touch(session)
            .ok_or_else(ConsoleError::signed_out)?;
        // Judged by the policy as it is now: a removed policy or a replaced key ends it.
        let Some(rights) = state.app.auth.policy_rights_with(&grant.policy, &grant.key) else {
            state.sessions.end(session);
            return Err(ConsoleError::signed_out());
        };
        Ok(Self {
            session: session.to_string(),
            policy: grant.policy,
            rights,
            ends,
            key: grant.key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), HeaderValue::from_str(v).expect("value"));
        }
        h
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let h = headers(&[
            (header::COOKIE, "theme=dark; __Host-adit_console=abc"),
            (header::COOKIE, "x=1"),
        ]);
        assert_eq!(cookie(&h, COOKIE), Some("abc"));
        assert_eq!(
            cookie(
                &headers(&[(header::COOKIE, "__Host-adit_consolex=1")]),
                COOKIE
            ),
            None
        );
    }

    #[test]
    fn only_this_hubs_origin_is_the_same_origin() {
        let host = (header::HOST, "hub.example:8443");
        assert!(
            same_origin(&headers(std::slice::from_ref(&host))),
            "no Origin: not a browser's cross-site request"
        );
        assert!(same_origin(&headers(&[
            host.clone(),
            (header::ORIGIN, "https://hub.example:8443")
        ])));
        for foreign in [
            "https://evil.example",
            "http://hub.example:8443",
            "https://hub.example:8443.evil.example",
            "null",
        ] {
            assert!(
                !same_origin(&headers(&[host.clone(), (header::ORIGIN, foreign)])),
                "{foreign}"
            );
        }
    }
}
