//! CONNECT: who is connecting, and may they.
//!
//! Azure's rules: client id `{deviceId}` or `{deviceId}/{moduleId}`; username
//! `{host}/{clientId}/?api-version=...` (the api-version is not enforced), in which the client id
//! is compared exactly, so ids holding `?` or `=` work (`adit_proto::topic::check_username`);
//! password a SAS token for that identity. Refusals use MQTT 3.1.1's CONNACK codes.

use std::net::IpAddr;
use std::time::SystemTime;

use adit_proto::topic::{ClientId, check_username};
use rumqttc::mqttbytes::Protocol;
use rumqttc::mqttbytes::v4::{Connect, ConnectReturnCode};

use super::{MqttContext, expiry};
use crate::auth::{AuthError, DeviceIdentity, unix_now};
use crate::throttle::{Blame, Verdict};

/// A refused CONNECT: the code to send and the reason to log.
#[derive(Debug)]
pub struct Refusal {
    /// CONNACK return code.
    pub code: ConnectReturnCode,
    /// Why, for the log (never sent to the client). Holds no secret and no unescaped remote
    /// text.
    pub reason: String,
    /// Bounded label for metrics.
    pub label: &'static str,
    /// What the failure is held against by the throttle.
    pub against: Against,
    /// False for a throttled attempt that is not worth a log line of its own (see
    /// [`Verdict::is_reported`]).
    pub report: bool,
}

/// What a refused CONNECT is held against (see [`crate::throttle`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Against {
    /// The client id it claimed: the identity exists and its credential failed.
    Identity,
    /// Its source address: nothing that exists can be blamed (garbage, unknown device).
    Source,
    /// Nothing: the hub failed (registry unavailable).
    Nobody,
}

fn refuse(code: ConnectReturnCode, label: &'static str, reason: impl Into<String>) -> Refusal {
    Refusal {
        code,
        reason: reason.into(),
        label,
        against: Against::Source,
        report: true,
    }
}

/// What an authentication error is held against, once the client id parsed.
fn against(e: &AuthError) -> Against {
    match e {
        // Found the device, then failed its credential.
        AuthError::Token(adit_proto::SasError::Expired | adit_proto::SasError::BadSignature)
        | AuthError::WrongIdentity(_)
        | AuthError::UnknownPolicy(_)
        | AuthError::Forbidden { .. }
        | AuthError::DeviceDisabled(_)
        | AuthError::NotSasDevice(_) => Against::Identity,
        AuthError::Registry(_) => Against::Nobody,
        // Failed before any identity was found.
        AuthError::Missing
        | AuthError::Token(_)
        | AuthError::WrongAudience(_)
        | AuthError::NotAPolicyToken
        | AuthError::UnknownDevice(_) => Against::Source,
    }
}

/// Authenticates a CONNECT from `source`. Every credential is checked: a valid one passes
/// whatever else failed at its address. Failures are counted by the throttle; a throttled
/// one is answered with CONNACK 3 after the penalty (see [`crate::throttle`]).
pub async fn authenticate(
    ctx: &MqttContext,
    connect: &Connect,
    source: IpAddr,
) -> Result<DeviceIdentity, Refusal> {
    let turn = ctx.throttle.admit(source).await;
    let result = check(ctx, connect).await;
    drop(turn);
    let mut refusal = match result {
        Ok(identity) => return Ok(identity),
        Err(refusal) => refusal,
    };
    let blame = match refusal.against {
        Against::Identity => Some(Blame::Identity(&connect.client_id)),
        Against::Source => Some(Blame::Source),
        Against::Nobody => None,
    };
    let verdict = blame.map(|b| (b, ctx.throttle.record_failure(source, b)));
    ctx.metrics.auth_failed("mqtt", refusal.label);
    let throttled = match verdict {
        Some((blame, Verdict::Throttled { attempts })) => {
            ctx.metrics.auth_throttled("mqtt", blame.label());
            Some(attempts)
        }
        _ => None,
    };
    refusal.report = verdict.is_none_or(|(_, v)| v.is_reported());
    if refusal.report {
        ctx.diagnostics.auth_failure(
            "mqtt",
            Some(source),
            Some(&connect.client_id),
            &refusal.reason,
            throttled,
        );
    }
    if let Some((blame, verdict)) = verdict
        && verdict.is_throttled()
    {
        ctx.throttle.penalize(verdict).await;
        refusal.code = ConnectReturnCode::ServiceUnavailable;
        refusal.reason = match blame {
            Blame::Identity(_) => format!(
                "throttled: too many failed CONNECTs for this client id from this address ({})",
                refusal.reason
            ),
            Blame::Source => format!(
                "throttled: too many failed CONNECTs naming no known identity from this address ({})",
                refusal.reason
            ),
        };
    }
    Err(refusal)
}

async fn check(ctx: &MqttContext, connect: &Connect) -> Result<DeviceIdentity, Refusal> {
    if connect.protocol != Protocol::V4 {
        return Err(refuse(
            ConnectReturnCode::RefusedProtocolVersion,
            "protocol_version",
            "only MQTT 3.1.1 is supported",
        ));
    }
    let client = ClientId::parse(&connect.client_id).map_err(|e| {
        refuse(
            ConnectReturnCode::BadClientId,
            "bad_client_id",
            e.to_string(),
        )
    })?;
    let login = connect.login.as_ref().ok_or_else(|| {
        refuse(
            ConnectReturnCode::BadUserNamePassword,
            "missing",
            "no username and password",
        )
    })?;
    check_username(&login.username, &connect.client_id).map_err(|e| {
        refuse(
            ConnectReturnCode::BadUserNamePassword,
            "bad_username",
            e.to_string(),
        )
    })?;
    let identity = ctx
        .auth
        .authenticate_device(&client, &login.password, unix_now())
        .await
        .map_err(|e| {
            let code = match e {
                AuthError::Token(
                    adit_proto::SasError::Expired | adit_proto::SasError::BadSignature,
                ) => ConnectReturnCode::NotAuthorized,
                AuthError::Token(_) => ConnectReturnCode::BadUserNamePassword,
                AuthError::Registry(_) => ConnectReturnCode::ServiceUnavailable,
                _ => ConnectReturnCode::NotAuthorized,
            };
            Refusal {
                against: against(&e),
                ..refuse(code, e.label(), e.to_string())
            }
        })?;
    // The verifier tolerates clock skew past `se`; a session does not (see `expiry`), so a
    // token already past `se` would buy a session that ends at once: refuse it instead.
    if expiry::remaining(identity.expires_at, SystemTime::now()).is_none() {
        return Err(Refusal {
            against: Against::Identity,
            ..refuse(ConnectReturnCode::NotAuthorized, "expired", "token expired")
        });
    }
    Ok(identity)
}

/// True when `connect` still authenticates as `identity` did: same identity, same policy, same
/// signing key, device still enabled. For the rare CONNECT that raced a registry change.
pub async fn still_valid(ctx: &MqttContext, connect: &Connect, identity: &DeviceIdentity) -> bool {
    let Some(login) = connect.login.as_ref() else {
        return false;
    };
    match ctx
        .auth
        .authenticate_device(&identity.client, &login.password, unix_now())
        .await
    {
        Ok(again) => again.policy == identity.policy && again.signed_with == identity.signed_with,
        Err(_) => false,
    }
}
