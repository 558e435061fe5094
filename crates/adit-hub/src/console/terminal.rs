//! The console's terminal: an SSH shell on a device, run by the hub and shown by the page.
//!
//! The hub is the SSH client. It speaks SSH (russh) over a byte stream to the device's sshd
//! (a device stream to its `ssh` name) and bridges the shell to the page's WebSocket, so the
//! browser never needs a route to the device and never sees SSH. The page's protocol is in
//! `docs/console.md` ("Terminal"): credentials first (read by the caller), then `hostKey`
//! (answered by the page's `trustHostKey` when no key is kept for the device), `ready` or
//! `error`, the terminal's bytes as binary messages both ways, `resize` as text, and `closed`
//! at the shell's end, each end with a Close.
//!
//! Why it is shaped this way:
//! - Secrets: the password, private key and passphrase are moved into the SSH client or
//!   decoded and dropped before the first byte goes to the device; `Debug` redacts them and no
//!   message, close reason or [`Outcome`] carries them. None goes to a device whose host key
//!   is not trusted: a new key waits for the user's word, as OpenSSH asks before it goes on.
//! - Bounds: a page message over [`MAX_MESSAGE`] ends the terminal (error, Close 1009); the
//!   WebSocket never buffers one over [`HARD_LIMIT`]; the handshake, and then signing in
//!   (user, shell), take at most [`SIGN_IN_LIMIT`] each, and the user's word on a new host key
//!   at most [`TRUST_LIMIT`].
//! - Backpressure: the two directions run concurrently, each waiting for its receiver (the
//!   SSH window one way, the WebSocket's writes the other), so neither buffers without bound
//!   and a slow side cannot stall the other into a deadlock.
//! - Cancellation: every await may be the last. Dropping [`run`]'s future drops the SSH
//!   handle, which ends russh's connection task and with it the transport.
//!
//! `ssh` holds the SSH side, `page` the page's messages.

mod page;
mod ssh;
#[cfg(test)]
mod tests;

use std::fmt;
use std::future::Future;
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt};
use russh::ChannelMsg;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_websockets::{CloseCode, Message, WebSocketStream};

use page::{Notice, PageMessage};
use ssh::Refusal;

/// The largest message the page may send (a keystroke, a paste, a resize); more ends the
/// terminal with an error and Close 1009.
pub const MAX_MESSAGE: usize = 64 * 1024;
/// The most the WebSocket buffers for one message: past it the WebSocket itself refuses the
/// message with Close 1009 before reading it (between [`MAX_MESSAGE`] and this, the page is
/// told why first).
pub const HARD_LIMIT: usize = 4 * MAX_MESSAGE;
/// The SSH handshake up to the host key, and signing in from there to the running shell, each
/// take at most this long.
pub const SIGN_IN_LIMIT: Duration = Duration::from_secs(30);
/// The page has this long to trust a host key seen for the first time. With the handshake and
/// signing in (at most [`SIGN_IN_LIMIT`] each) this stays within OpenSSH's default
/// LoginGraceTime of 120 s, after which sshd drops a client that has not signed in.
pub const TRUST_LIMIT: Duration = Duration::from_secs(60);
/// The last message and the Close have this long to reach the page and be answered.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// What the page sent first (docs/console.md, Terminal step 1). `Debug` redacts the secrets.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    /// The user to sign in as on the device.
    pub username: String,
    /// The password, when signing in with one (ignored when `private_key` is given).
    pub password: Option<String>,
    /// An OpenSSH or PEM private key, when signing in with a key.
    pub private_key: Option<String>,
    /// The private key's passphrase, when it has one.
    pub passphrase: Option<String>,
    /// The terminal's width in characters.
    pub cols: u32,
    /// The terminal's height in lines.
    pub rows: u32,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &redacted(&self.password))
            .field("private_key", &redacted(&self.private_key))
            .field("passphrase", &redacted(&self.passphrase))
            .field("cols", &self.cols)
            .field("rows", &self.rows)
            .finish()
    }
}

/// How the hub judges the device's host key.
pub trait HostKeyPolicy: Send + 'static {
    /// Called once, with the key's SHA-256 fingerprint as OpenSSH prints it (`SHA256:` and
    /// unpadded base64). `Ok(true)`: the key is trusted, go on; `Ok(false)`: no key is kept
    /// for the device, so the page is asked, and [`HostKeyPolicy::trust`] called if the user
    /// trusts it; `Err(message)` refuses, and the page is shown `message`.
    fn check(&mut self, fingerprint: &str) -> impl Future<Output = Result<bool, String>> + Send;

    /// The user trusted `fingerprint`, seen for the first time: keep it. `Err(message)`
    /// refuses (another key was trusted for the device meanwhile).
    fn trust(&mut self, fingerprint: &str) -> impl Future<Output = Result<(), String>> + Send;
}

/// How a terminal ended, for the caller's log line (never a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The shell ended; its exit status when the device's sshd gave one.
    ShellEnded {
        /// The shell's exit status.
        exit_status: Option<u32>,
    },
    /// The page closed the WebSocket, or it ended or failed.
    PageLeft,
    /// The page broke the protocol (a message too big or not understood).
    PageError(&'static str),
    /// The credentials were unusable before reaching the device (no user, unreadable key).
    BadCredentials,
    /// The host key policy refused the device's key.
    HostKeyRefused,
    /// The device's key was new and the user did not trust it (the page left or did not
    /// answer within [`TRUST_LIMIT`]).
    HostKeyNotTrusted,
    /// The device's sshd refused the user and password or key.
    AuthRefused,
    /// Signing in took longer than [`SIGN_IN_LIMIT`].
    TimedOut,
    /// The SSH connection failed or the device's sshd refused the PTY or shell.
    SshFailed(String),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ShellEnded {
                exit_status: Some(s),
            } => write!(f, "the shell exited with status {s}"),
            Self::ShellEnded { exit_status: None } => f.write_str("the shell ended"),
            Self::PageLeft => f.write_str("the page left"),
            Self::PageError(what) => write!(f, "the page broke the protocol: {what}"),
            Self::BadCredentials => f.write_str("unusable credentials"),
            Self::HostKeyRefused => f.write_str("host key refused"),
            Self::HostKeyNotTrusted => f.write_str("the user did not trust the new host key"),
            Self::AuthRefused => f.write_str("the device's sshd refused the credentials"),
            Self::TimedOut => f.write_str("signing in timed out"),
            Self::SshFailed(why) => write!(f, "SSH failed: {why}"),
        }
    }
}

/// How the terminal ends: the outcome, and what the page is told before the Close.
struct End {
    outcome: Outcome,
    notice: Option<Notice>,
    code: CloseCode,
}

impl End {
    fn quiet(outcome: Outcome) -> Self {
        Self {
            outcome,
            notice: None,
            code: CloseCode::NORMAL_CLOSURE,
        }
    }
}

type ToPage<'a, S> = SplitSink<&'a mut WebSocketStream<S>, Message>;
type FromPage<'a, S> = SplitStream<&'a mut WebSocketStream<S>>;

/// Runs one terminal: SSH over `transport` (an open byte stream to the device's sshd), bridged
/// to the page's WebSocket `ws` (server side; the caller has read and parsed its first message
/// into `creds`). Ends when either side ends, after sending the page a Close.
pub async fn run<T, S>(
    transport: T,
    ws: &mut WebSocketStream<S>,
    creds: Credentials,
    host_keys: impl HostKeyPolicy,
) -> Outcome
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: AsyncRead + AsyncWrite + Unpin,
{
    ws.limits_mut().set_max_payload_len(Some(HARD_LIMIT));
    let (mut to_page, mut from_page) = StreamExt::split(&mut *ws);
    let end = session(transport, &mut to_page, &mut from_page, creds, host_keys).await;
    // Bounded: a page that stops reading or never answers the Close cannot hold this.
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        if let Some(notice) = &end.notice {
            // The page may be gone already; the Close is still tried.
            let _ = to_page.send(notice.message()).await;
        }
        let _ = to_page.send(Message::close(Some(end.code), "")).await;
        while from_page.next().await.is_some() {}
    })
    .await;
    end.outcome
}

async fn session<T, S>(
    transport: T,
    to_page: &mut ToPage<'_, S>,
    from_page: &mut FromPage<'_, S>,
    creds: Credentials,
    mut host_keys: impl HostKeyPolicy,
) -> End
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Credentials {
        username,
        password,
        private_key,
        passphrase,
        cols,
        rows,
    } = creds;
    let login = match ssh::Login::decode(username, password, private_key, passphrase).await {
        Ok(login) => login,
        Err(refusal) => return refused(refusal),
    };
    let size = page::Size::clamped(cols, rows);
    let connect = async {
        let (handle, fingerprint) = ssh::connect(transport).await?;
        let known = host_keys
            .check(&fingerprint)
            .await
            .map_err(Refusal::HostKey)?;
        let shown = ssh::HostKey {
            fingerprint,
            first_use: !known,
        };
        to_page
            .send(page::host_key(&shown))
            .await
            .map_err(|_| Refusal::PageLeft)?;
        Ok::<_, Refusal>((handle, shown))
    };
    let connected = tokio::select! {
        connected = tokio::time::timeout(SIGN_IN_LIMIT, connect) => connected,
        () = page_leaves(from_page) => return End::quiet(Outcome::PageLeft),
    };
    let (mut handle, host_key) = match connected {
        Ok(Ok(connected)) => connected,
        Ok(Err(refusal)) => return refused(refusal),
        Err(_) => return refused(Refusal::TimedOut),
    };
    if host_key.first_use {
        match await_trust(from_page, TRUST_LIMIT).await {
            Trusted::Yes => {}
            Trusted::PageLeft => return End::quiet(Outcome::HostKeyNotTrusted),
            Trusted::NotInTime => return refused(Refusal::Undecided),
        }
        let kept = tokio::select! {
            kept = tokio::time::timeout(SIGN_IN_LIMIT, host_keys.trust(&host_key.fingerprint)) => kept,
            () = page_leaves(from_page) => return End::quiet(Outcome::PageLeft),
        };
        match kept {
            Ok(Ok(())) => {}
            Ok(Err(message)) => return refused(Refusal::HostKey(message)),
            Err(_) => return refused(Refusal::TimedOut),
        }
    }
    let sign_in = async {
        ssh::sign_in(&mut handle, login).await?;
        let (channel, early) = ssh::open_shell(&handle, size).await?;
        to_page
            .send(page::ready())
            .await
            .map_err(|_| Refusal::PageLeft)?;
        for data in early {
            to_page
                .send(Message::binary(data))
                .await
                .map_err(|_| Refusal::PageLeft)?;
        }
        Ok::<_, Refusal>(channel)
    };
    let started = tokio::select! {
        started = tokio::time::timeout(SIGN_IN_LIMIT, sign_in) => started,
        () = page_leaves(from_page) => return End::quiet(Outcome::PageLeft),
    };
    let channel = match started {
        Ok(Ok(channel)) => channel,
        Ok(Err(refusal)) => return refused(refusal),
        Err(_) => return refused(Refusal::TimedOut),
    };
    let (mut shell_out, shell_in) = channel.split();
    let end = tokio::select! {
        end = page_to_shell(from_page, &shell_in) => end,
        end = shell_to_page(&mut shell_out, to_page) => end,
    };
    // Dropping the handle and the channel ends the SSH connection.
    drop((shell_in, shell_out, handle));
    end
}

fn refused(refusal: Refusal) -> End {
    let (outcome, message, code) = refusal.into_parts();
    End {
        outcome,
        notice: message.map(Notice::Error),
        code,
    }
}

/// The page's word on a host key seen for the first time.
#[derive(Debug, PartialEq, Eq)]
enum Trusted {
    /// It sent `trustHostKey`.
    Yes,
    /// It closed, ended or failed first.
    PageLeft,
    /// Neither within the limit.
    NotInTime,
}

/// Waits up to `limit` for the page's `trustHostKey`; anything else it sends meanwhile is
/// dropped.
async fn await_trust<S>(from_page: &mut FromPage<'_, S>, limit: Duration) -> Trusted
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let decided = async {
        loop {
            match from_page.next().await {
                None | Some(Err(_)) => return Trusted::PageLeft,
                Some(Ok(message)) => match page::parse(message) {
                    PageMessage::TrustHostKey => return Trusted::Yes,
                    PageMessage::Closed => return Trusted::PageLeft,
                    _ => {}
                },
            }
        }
    };
    tokio::time::timeout(limit, decided)
        .await
        .unwrap_or(Trusted::NotInTime)
}

/// While signing in: returns when the page closes, ends or fails; anything else it sends
/// is dropped (the page sends nothing before `ready`).
async fn page_leaves<S>(from_page: &mut FromPage<'_, S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        match from_page.next().await {
            None | Some(Err(_)) => return,
            Some(Ok(message)) if message.is_close() => return,
            Some(Ok(_)) => {}
        }
    }
}

/// The page's keystrokes and resizes to the shell, one message at a time.
async fn page_to_shell<S>(
    from_page: &mut FromPage<'_, S>,
    shell: &russh::ChannelWriteHalf<russh::client::Msg>,
) -> End
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let message = match from_page.next().await {
            None => return End::quiet(Outcome::PageLeft),
            Some(Err(tokio_websockets::Error::PayloadTooLong { .. })) => {
                // The WebSocket has queued its own Close 1009; nothing more can be sent.
                return End::quiet(Outcome::PageError("message too big"));
            }
            Some(Err(_)) => return End::quiet(Outcome::PageLeft),
            Some(Ok(message)) => message,
        };
        let sent = match page::parse(message) {
            PageMessage::Bytes(data) => shell.data_bytes(data).await,
            PageMessage::Resize(size) => shell.window_change(size.cols, size.rows, 0, 0).await,
            PageMessage::Ignored | PageMessage::TrustHostKey => Ok(()),
            PageMessage::Closed => return End::quiet(Outcome::PageLeft),
            PageMessage::TooBig => {
                return End {
                    outcome: Outcome::PageError("message too big"),
                    notice: Some(Notice::Error(format!(
                        "a message from the page was over {} KiB",
                        MAX_MESSAGE / 1024
                    ))),
                    code: CloseCode::MESSAGE_TOO_BIG,
                };
            }
            PageMessage::Invalid(what) => {
                return End {
                    outcome: Outcome::PageError(what),
                    notice: Some(Notice::Error(format!("the page sent {what}"))),
                    code: CloseCode::POLICY_VIOLATION,
                };
            }
        };
        if sent.is_err() {
            return ssh_gone(None, None);
        }
    }
}

/// The shell's output to the page, one SSH packet per binary message, until the shell ends.
async fn shell_to_page<S>(shell: &mut russh::ChannelReadHalf, to_page: &mut ToPage<'_, S>) -> End
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut exit_status = None;
    let mut signal = None;
    loop {
        match shell.wait().await {
            Some(ChannelMsg::Data { data }) | Some(ChannelMsg::ExtendedData { data, .. }) => {
                if to_page.send(Message::binary(data)).await.is_err() {
                    return End::quiet(Outcome::PageLeft);
                }
            }
            Some(ChannelMsg::ExitStatus { exit_status: s }) => exit_status = Some(s),
            Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                signal = Some(match signal_name {
                    // The server's own name: shown to the page only, and cut short.
                    russh::Sig::Custom(name) => name
                        .chars()
                        .filter(char::is_ascii_alphanumeric)
                        .take(32)
                        .collect(),
                    known => format!("{known:?}"),
                });
            }
            Some(ChannelMsg::Close) | None => return ssh_gone(exit_status, signal),
            Some(_) => {}
        }
    }
}

/// The shell (or the whole connection) ended.
fn ssh_gone(exit_status: Option<u32>, signal: Option<String>) -> End {
    let message = match (exit_status, signal) {
        (Some(status), _) => format!("the shell exited with status {status}"),
        (None, Some(signal)) => format!("the shell was ended by signal {signal}"),
        (None, None) => "the device's sshd ended the session".to_string(),
    };
    End {
        outcome: Outcome::ShellEnded { exit_status },
        notice: Some(Notice::Closed(message)),
        code: CloseCode::NORMAL_CLOSURE,
    }
}
