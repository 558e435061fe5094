//! The terminal's SSH side (russh): the device's host key shown to the session, signing
//! in with a password or a private key, and a shell on a PTY. What the page is told on each
//! failure is here too ([`Refusal`]); none of it carries a secret.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use russh::client::{self, AuthResult, Handle, Msg};
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{Channel, ChannelMsg, MethodKind};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;
use tokio_websockets::CloseCode;

use super::page::Size;
use super::{Outcome, SIGN_IN_LIMIT, TRUST_LIMIT};

/// The terminal type the PTY is requested for (what xterm.js emulates).
const TERM: &str = "xterm-256color";
/// A user name longer than this is refused before anything is sent.
const MAX_USER: usize = 256;
/// Output the shell sent before its start was confirmed, kept for the page (in SSH packets).
const MAX_EARLY: usize = 64;

/// Why the terminal did not start.
#[derive(Debug)]
pub(super) enum Refusal {
    /// The credentials are unusable before reaching the device; the message says why.
    BadCredentials(&'static str),
    /// The host key policy's message.
    HostKey(String),
    /// The device's sshd refused; the message says which way of signing in.
    Auth(String),
    /// The connection failed or the PTY or shell was refused; the message says what.
    Ssh(String),
    /// Signing in took longer than [`SIGN_IN_LIMIT`].
    TimedOut,
    /// The page left while the hub told it the host key.
    PageLeft,
    /// The page did not answer whether to trust a new host key within [`TRUST_LIMIT`].
    Undecided,
}

impl Refusal {
    /// The outcome, the page's error message (none when the page is gone), the Close code.
    pub fn into_parts(self) -> (Outcome, Option<String>, CloseCode) {
        match self {
            Self::BadCredentials(m) => (
                Outcome::BadCredentials,
                Some(m.to_string()),
                CloseCode::NORMAL_CLOSURE,
            ),
            Self::HostKey(m) => (Outcome::HostKeyRefused, Some(m), CloseCode::NORMAL_CLOSURE),
            Self::Auth(m) => (Outcome::AuthRefused, Some(m), CloseCode::NORMAL_CLOSURE),
            Self::Ssh(m) => (
                Outcome::SshFailed(m.clone()),
                Some(m),
                CloseCode::BAD_GATEWAY,
            ),
            Self::TimedOut => (
                Outcome::TimedOut,
                Some(format!(
                    "the device's sshd did not start a shell within {} s",
                    SIGN_IN_LIMIT.as_secs()
                )),
                CloseCode::BAD_GATEWAY,
            ),
            Self::PageLeft => (Outcome::PageLeft, None, CloseCode::NORMAL_CLOSURE),
            Self::Undecided => (
                Outcome::HostKeyNotTrusted,
                Some(format!(
                    "the device's host key was not trusted within {} s",
                    TRUST_LIMIT.as_secs()
                )),
                CloseCode::NORMAL_CLOSURE,
            ),
        }
    }
}

fn ssh_failed(e: russh::Error) -> Refusal {
    Refusal::Ssh(format!("the SSH connection to the device failed: {e}"))
}

/// How to sign in: the user and a password or a decoded private key.
pub(super) struct Login {
    user: String,
    method: Method,
}

enum Method {
    Password(String),
    Key(Arc<PrivateKey>),
}

impl Login {
    /// A private key, when given, wins over a password. The key is decoded here, so its text
    /// and passphrase are dropped before the first byte goes to the device.
    /// As [`Login::new`], off the async workers and at most [`DECODING`] at once: even an
    /// affordable key's passphrase costs a few hundred milliseconds of CPU.
    pub async fn decode(
        user: String,
        password: Option<String>,
        private_key: Option<String>,
        passphrase: Option<String>,
    ) -> Result<Self, Refusal> {
        let _permit = DECODE_SLOTS.acquire().await;
        tokio::task::spawn_blocking(move || Self::new(user, password, private_key, passphrase))
            .await
            .unwrap_or(Err(Refusal::BadCredentials(
                "the private key could not be read",
            )))
    }

    pub fn new(
        user: String,
        password: Option<String>,
        private_key: Option<String>,
        passphrase: Option<String>,
    ) -> Result<Self, Refusal> {
        if user.is_empty() {
            return Err(Refusal::BadCredentials("a user name is needed"));
        }
        if user.len() > MAX_USER {
            return Err(Refusal::BadCredentials("the user name is too long"));
        }
        let method = match private_key.filter(|k| !k.trim().is_empty()) {
            Some(text) => {
                let passphrase = passphrase.filter(|p| !p.is_empty());
                affordable(&text)?;
                match russh::keys::decode_secret_key(&text, passphrase.as_deref()) {
                    Ok(key) => Method::Key(Arc::new(key)),
                    Err(russh::keys::Error::KeyIsEncrypted) => {
                        return Err(Refusal::BadCredentials(
                            "the private key is encrypted: give its passphrase",
                        ));
                    }
                    Err(_) => {
                        return Err(Refusal::BadCredentials(
                            "the private key could not be read: a wrong passphrase, or not an \
                             OpenSSH or PEM private key",
                        ));
                    }
                }
            }
            None => Method::Password(password.unwrap_or_default()),
        };
        Ok(Self { user, method })
    }
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let method = match self.method {
            Method::Password(_) => "password",
            Method::Key(_) => "key",
        };
        f.debug_struct("Login")
            .field("user", &self.user)
            .field("method", &method)
            .finish()
    }
}

/// The device's host key, as the policy judged it.
#[derive(Debug, Clone)]
pub(super) struct HostKey {
    pub fingerprint: String,
    /// No key was kept for the device: the user is asked to trust this one.
    pub first_use: bool,
}

/// russh's handler: reports the device's host key to the session, which judges it before any
/// credential is sent.
pub(super) struct Client {
    shown: Option<oneshot::Sender<String>>,
    first: Option<String>,
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let fingerprint = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.fingerprint(HashAlg::Sha256),
            PublicKeyOrCertificate::Certificate(cert) => {
                cert.public_key().fingerprint(HashAlg::Sha256)
            }
        }
        .to_string();
        // Accepting here only completes the key exchange: nothing secret has gone to the
        // device yet, and the session refuses before signing in unless the key is trusted. A
        // later key exchange must show the same key.
        if let Some(first) = &self.first {
            return Ok(*first == fingerprint);
        }
        self.first = Some(fingerprint.clone());
        if let Some(tx) = self.shown.take() {
            let _ = tx.send(fingerprint);
        }
        Ok(true)
    }
}

fn config() -> client::Config {
    client::Config {
        // A device that stops answering is noticed within about two minutes.
        keepalive_interval: Some(Duration::from_secs(30)),
        keepalive_max: 3,
        // The shell's output waiting for the page: at most this many SSH packets (32 KiB at
        // most each); past it russh stops reading from the device.
        channel_buffer_size: 32,
        ..client::Config::default()
    }
}

/// The SSH handshake over `transport`: the connection and the device's host key fingerprint
/// (`SHA256:` and unpadded base64, as OpenSSH prints it), not yet judged.
pub(super) async fn connect<T>(transport: T) -> Result<(Handle<Client>, String), Refusal>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (tx, mut rx) = oneshot::channel();
    let client = Client {
        shown: Some(tx),
        first: None,
    };
    let connected = client::connect_stream(Arc::new(config()), transport, client).await;
    // The handshake finishes only after the host key was shown, so it is in by now.
    match (connected, rx.try_recv()) {
        (Ok(handle), Ok(fingerprint)) => Ok((handle, fingerprint)),
        (Err(e), _) => Err(ssh_failed(e)),
        (Ok(_), Err(_)) => Err(Refusal::Ssh(
            "the device's sshd did not show a host key".to_string(),
        )),
    }
}

/// Signs in; the password or key is moved into russh and gone when this returns.
pub(super) async fn sign_in(handle: &mut Handle<Client>, login: Login) -> Result<(), Refusal> {
    let Login { user, method } = login;
    let (tried, kind, result) = match method {
        Method::Password(password) => (
            "password",
            MethodKind::Password,
            handle.authenticate_password(user, password).await,
        ),
        Method::Key(key) => {
            let hash = if key.algorithm().is_rsa() {
                // `Ok(None)`: the server did not say; SHA-1 is all an old one knows.
                handle
                    .best_supported_rsa_hash()
                    .await
                    .ok()
                    .flatten()
                    .flatten()
            } else {
                None
            };
            let key = PrivateKeyWithHashAlg::new(key, hash);
            (
                "private key",
                MethodKind::PublicKey,
                handle.authenticate_publickey(user, key).await,
            )
        }
    };
    match result.map_err(ssh_failed)? {
        AuthResult::Success => Ok(()),
        AuthResult::Failure {
            remaining_methods,
            partial_success,
        } => {
            let mut message = format!("the device's sshd refused the user name or {tried}");
            if partial_success {
                message.push_str(" (it asks for a second way to sign in, which the console lacks)");
            } else if !remaining_methods.is_empty() && !remaining_methods.contains(&kind) {
                let accepted: Vec<&str> = remaining_methods.iter().map(|m| m.into()).collect();
                message.push_str(&format!(
                    " (it does not accept a {tried}; it accepts: {})",
                    accepted.join(", ")
                ));
            }
            Err(Refusal::Auth(message))
        }
    }
}

/// Opens a session channel with a PTY of `size` and a shell in it. Returns the channel and any
/// output that came before the shell's start was confirmed.
pub(super) async fn open_shell(
    handle: &Handle<Client>,
    size: Size,
) -> Result<(Channel<Msg>, Vec<Bytes>), Refusal> {
    let mut channel = handle.channel_open_session().await.map_err(ssh_failed)?;
    let mut early = Vec::new();
    channel
        .request_pty(true, TERM, size.cols, size.rows, 0, 0, &[])
        .await
        .map_err(ssh_failed)?;
    confirmed(&mut channel, "a terminal (PTY)", &mut early).await?;
    channel.request_shell(true).await.map_err(ssh_failed)?;
    confirmed(&mut channel, "a shell", &mut early).await?;
    Ok((channel, early))
}

/// Waits for the answer to a request sent with `want_reply`.
async fn confirmed(
    channel: &mut Channel<Msg>,
    what: &str,
    early: &mut Vec<Bytes>,
) -> Result<(), Refusal> {
    loop {
        match channel.wait().await {
            Some(ChannelMsg::Success) => return Ok(()),
            Some(ChannelMsg::Failure) => {
                return Err(Refusal::Ssh(format!("the device's sshd refused {what}")));
            }
            Some(ChannelMsg::Data { data }) | Some(ChannelMsg::ExtendedData { data, .. }) => {
                if early.len() == MAX_EARLY {
                    return Err(Refusal::Ssh(format!(
                        "the device's sshd sent output before starting {what}"
                    )));
                }
                early.push(data);
            }
            Some(ChannelMsg::Close) | None => {
                return Err(Refusal::Ssh(format!(
                    "the device's sshd closed the session when asked for {what}"
                )));
            }
            Some(_) => {}
        }
    }
}

/// Private keys decoded at once, hub-wide.
const DECODING: usize = 2;
static DECODE_SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(DECODING);

/// Most bcrypt rounds an encrypted OpenSSH key may ask for (`ssh-keygen` uses 16 by default;
/// `-a 100` is a common hardening). The key file sets its own cost, so a page could otherwise
/// make the hub spend minutes of CPU on one sign-in.
pub const MAX_BCRYPT_ROUNDS: u32 = 256;

/// Refuses, before any decryption, a key whose file asks for more work than a sign-in may
/// cost: PuTTY keys (Argon2 with the file's own memory and passes), PKCS#8-encrypted keys
/// (PBKDF2 with the file's own iterations), and OpenSSH keys over [`MAX_BCRYPT_ROUNDS`].
fn affordable(text: &str) -> Result<(), Refusal> {
    let text = text.trim();
    if text.starts_with("PuTTY-User-Key-File-") {
        return Err(Refusal::BadCredentials(
            "PuTTY keys are not accepted: convert it (puttygen KEY -O private-openssh)",
        ));
    }
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err(Refusal::BadCredentials(
            "encrypted PKCS#8 keys are not accepted: convert it to OpenSSH's format \
             (ssh-keygen -p -f KEY)",
        ));
    }
    if text.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----")
        && let Ok(key) = russh::keys::ssh_key::PrivateKey::from_openssh(text)
        && let russh::keys::ssh_key::Kdf::Bcrypt { rounds, .. } = key.kdf()
        && *rounds > MAX_BCRYPT_ROUNDS
    {
        return Err(Refusal::BadCredentials(
            "the private key's passphrase asks for over 256 bcrypt rounds: re-encrypt it with \
             fewer (ssh-keygen -p -a 100 -f KEY)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_with_rounds(rounds: u32) -> String {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("key");
        let made = std::process::Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "secret",
                "-a",
                &rounds.to_string(),
                "-f",
            ])
            .arg(&path)
            .status()
            .expect("ssh-keygen runs");
        assert!(made.success());
        std::fs::read_to_string(&path).expect("key")
    }

    #[test]
    fn keys_that_cost_too_much_to_decrypt_are_refused_before_decrypting() {
        assert!(
            affordable(&key_with_rounds(MAX_BCRYPT_ROUNDS)).is_ok(),
            "at the limit"
        );
        assert!(
            matches!(
                affordable(&key_with_rounds(MAX_BCRYPT_ROUNDS + 1)),
                Err(Refusal::BadCredentials(m)) if m.contains("bcrypt rounds")
            ),
            "one round past it"
        );
        for refused in [
            "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: aes256-cbc\nKey-Derivation: Argon2id\nArgon2-Memory: 4294967295",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----",
        ] {
            assert!(affordable(refused).is_err(), "{refused}");
        }
    }
}
