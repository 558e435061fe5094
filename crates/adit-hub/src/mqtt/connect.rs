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

/// A refused CONNECT: the code to send and the reason to log.
#[derive(Debug)]
pub struct Refusal {
    /// CONNACK return code.
    pub code: ConnectReturnCode,
    /// Why, for the log (never sent to the client).
    pub reason: String,
    /// Bounded label for metrics.
    pub label: &'static str,
}

fn refuse(code: ConnectReturnCode, label: &'static str, reason: impl Into<String>) -> Refusal {
    Refusal {
        code,
        reason: reason.into(),
        label,
    }
}

/// Authenticates a CONNECT from `source`.
pub async fn authenticate(
    ctx: &MqttContext,
    connect: &Connect,
    source: IpAddr,
) -> Result<DeviceIdentity, Refusal> {
    if ctx.throttle.is_blocked(source) {
        return Err(refuse(
            ConnectReturnCode::ServiceUnavailable,
            "throttled",
            "too many failed CONNECTs from this address",
        ));
    }
    let result = check(ctx, connect).await;
    if let Err(refusal) = &result {
        ctx.metrics.auth_failed("mqtt", refusal.label);
        ctx.diagnostics.auth_failure(
            "mqtt",
            Some(source),
            Some(&connect.client_id),
            &refusal.reason,
        );
    }
    if let Err(refusal) = &result
        && matches!(
            refusal.code,
            ConnectReturnCode::BadUserNamePassword
                | ConnectReturnCode::NotAuthorized
                | ConnectReturnCode::BadClientId
        )
    {
        ctx.throttle.record_failure(source);
    }
    result
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
            refuse(code, e.label(), e.to_string())
        })?;
    // The verifier tolerates clock skew past `se`; a session does not (see `expiry`), so a
    // token already past `se` would buy a session that ends at once: refuse it instead.
    if expiry::remaining(identity.expires_at, SystemTime::now()).is_none() {
        return Err(refuse(
            ConnectReturnCode::NotAuthorized,
            "expired",
            "token expired",
        ));
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
