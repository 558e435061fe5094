//! Signing in and out (`docs/console.md`): a connection string or a one-time link's token is
//! exchanged for the session cookie, and `adit console` asks for such a link over the REST
//! API.

use std::net::SocketAddr;
use std::time::Duration;

use adit_proto::{ConnectionString, Permissions, SasToken};
use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::ConsoleState;
use super::json_error::ConsoleError;
use super::sessions::{Grant, LINK_MIN, LinkRefused, SESSION_MAX};
use super::signed_in::{COOKIE, SignedIn, same_origin};
use crate::auth::unix_now;

/// What the sign-in form or a sign-in link posts.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignInBody {
    connection_string: Option<String>,
    sign_in_token: Option<String>,
}

fn refused(message: &str) -> ConsoleError {
    ConsoleError::new(StatusCode::UNAUTHORIZED, message)
}

fn session_cookie(id: &str, max_age: u64) -> HeaderValue {
    let value =
        format!("{COOKIE}={id}; Path=/; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict");
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `POST /console/api/sign-in`.
pub async fn sign_in(
    State(state): State<ConsoleState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<SignInBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ConsoleError> {
    // A sign-in is a state change like any other: another site's page must not make a
    // browser sign in to an account of the attacker's choosing.
    if !same_origin(&headers)
        || headers
            .get(super::signed_in::CSRF_HEADER)
            .is_none_or(|v| v.as_bytes() != b"1")
    {
        return Err(ConsoleError::new(
            StatusCode::FORBIDDEN,
            "this request must come from the console's own page",
        ));
    }
    let Json(body) = body.map_err(|_| {
        ConsoleError::new(
            StatusCode::BAD_REQUEST,
            "expected {\"connectionString\": ...} or {\"signInToken\": ...}",
        )
    })?;
    let grant = match (body.connection_string, body.sign_in_token) {
        (Some(cs), None) => by_connection_string(&state, peer, &cs).await?,
        (None, Some(token)) => state
            .sessions
            .redeem(&token)
            .ok_or_else(|| refused("this sign-in link was used already or has expired"))?,
        _ => return Err(refused("give a connection string or a sign-in link")),
    };
    tracing::info!(policy = %grant.policy, source = %peer.ip(), "console sign-in");
    let id = state.sessions.start(grant);
    Ok((
        StatusCode::NO_CONTENT,
        [(
            header::SET_COOKIE,
            session_cookie(&id, SESSION_MAX.as_secs()),
        )],
    )
        .into_response())
}

/// Proves the connection string's key the way the REST API proves a token (throttled, logged
/// without the key): a token signed with it, for one minute, is authenticated.
async fn by_connection_string(
    state: &ConsoleState,
    peer: SocketAddr,
    cs: &str,
) -> Result<Grant, ConsoleError> {
    let bad = || {
        refused(
            "not a shared access policy connection string (HostName=...;SharedAccessKeyName=...;SharedAccessKey=...)",
        )
    };
    let parsed: ConnectionString = cs.parse().map_err(|_| bad())?;
    let (Some(policy), Some(key)) = (parsed.key_name.clone(), parsed.key.clone()) else {
        return Err(bad());
    };
    let token = SasToken::sign(&parsed.host_name(), &key, Some(&policy), unix_now() + 60);
    let identity = crate::api::auth::authenticate(
        &state.app,
        Some(peer.ip()),
        Some(&token),
        "/console/api/sign-in",
    )
    .await
    .map_err(|e| refused(e.message()))?;
    Ok(Grant {
        policy: identity.policy,
        key,
    })
}

/// `POST /console/api/sign-out`.
pub async fn sign_out(State(state): State<ConsoleState>, user: SignedIn) -> Response {
    state.sessions.end(&user.session);
    (
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, session_cookie("", 0))],
    )
        .into_response()
}

/// `GET /console/api/me`.
pub async fn me(State(state): State<ConsoleState>, user: SignedIn) -> Json<serde_json::Value> {
    let permissions: Vec<&str> = [
        (Permissions::REGISTRY_READ, "registryRead"),
        (Permissions::REGISTRY_WRITE, "registryWrite"),
        (Permissions::SERVICE_CONNECT, "serviceConnect"),
    ]
    .into_iter()
    .filter(|(p, _)| user.rights.contains(*p))
    .map(|(_, name)| name)
    .collect();
    let left = user
        .ends
        .saturating_duration_since(tokio::time::Instant::now());
    let expires = std::time::SystemTime::now() + left;
    Json(json!({
        "policy": user.policy,
        "permissions": permissions,
        "hub": state.app.streaming_endpoint.trim_start_matches("https://"),
        "expiresAt": crate::diagnostics::format_time(expires),
    }))
}

/// `POST /adit/console/sign-in-links` (REST, SAS-authenticated): a one-time sign-in token for
/// the caller's own policy, good for five minutes. `adit console` prints it as a URL.
pub async fn create_link(
    State(state): State<ConsoleState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, crate::api::ApiError> {
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let identity = crate::api::auth::authenticate(
        &state.app,
        Some(peer.ip()),
        header,
        "/adit/console/sign-in-links",
    )
    .await?;
    // The link signs in with the key that signed this request's token.
    let Some(key) = header.and_then(|h| state.app.auth.signing_key(h, unix_now())) else {
        return Err(crate::api::ApiError::new(
            adit_proto::ErrorCode::IotHubUnauthorizedAccess,
            "the token's key is no longer the policy's",
        ));
    };
    // A link outlives nothing it was made from: not the token that asked for it.
    let token_left = header
        .and_then(|h| SasToken::parse(h).ok())
        .map_or(Duration::ZERO, |t| {
            Duration::from_secs(t.expiry().saturating_sub(unix_now()))
        });
    let made = state.sessions.link(
        Grant {
            policy: identity.policy.clone(),
            key,
        },
        token_left,
    );
    let (token, lifetime) = match made {
        Ok(made) => made,
        Err(LinkRefused::TokenExpiring) => {
            return Err(crate::api::ApiError::new(
                adit_proto::ErrorCode::IotHubUnauthorizedAccess,
                format!(
                    "the token expires within {} s: a sign-in link would die unused; sign one that lasts longer",
                    LINK_MIN.as_secs()
                ),
            ));
        }
        Err(LinkRefused::Full) => {
            return Err(crate::api::ApiError::new(
                adit_proto::ErrorCode::ServiceUnavailable,
                "too many sign-in links wait to be used; try again in a few minutes",
            ));
        }
    };
    tracing::info!(policy = %identity.policy, "console sign-in link made");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "signInToken": token,
            "expiresInSeconds": lifetime.as_secs(),
        })),
    )
        .into_response())
}
