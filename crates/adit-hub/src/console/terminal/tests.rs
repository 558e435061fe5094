//! The terminal against Debian's real OpenSSH sshd (`adit_testkit::Sshd`, which accepts one
//! throwaway ed25519 key and no passwords), over a real TCP connection, with the page's
//! WebSocket on the other end of an in-memory pipe.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use adit_testkit::Sshd;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_websockets::{ClientBuilder, CloseCode, Message, ServerBuilder, WebSocketStream};

use super::{Credentials, HostKeyPolicy, MAX_MESSAGE, Outcome, run};

/// Longest wait for anything the page expects.
const WAIT: Duration = Duration::from_secs(20);

/// Keeps no key (`first_use`) or trusts every key, and records what it was asked: each
/// fingerprint checked, and `trusted ` and the fingerprint for each one the user trusted.
struct Trust {
    first_use: bool,
    asked: Arc<Mutex<Vec<String>>>,
}

impl HostKeyPolicy for Trust {
    async fn check(&mut self, fingerprint: &str) -> Result<bool, String> {
        self.asked
            .lock()
            .expect("lock")
            .push(fingerprint.to_string());
        Ok(!self.first_use)
    }

    async fn trust(&mut self, fingerprint: &str) -> Result<(), String> {
        self.asked
            .lock()
            .expect("lock")
            .push(format!("trusted {fingerprint}"));
        Ok(())
    }
}

fn trust(first_use: bool) -> (Trust, Arc<Mutex<Vec<String>>>) {
    let asked = Arc::new(Mutex::new(Vec::new()));
    let policy = Trust {
        first_use,
        asked: asked.clone(),
    };
    (policy, asked)
}

/// Refuses every key with its message.
struct Refuse(&'static str);

impl HostKeyPolicy for Refuse {
    async fn check(&mut self, _: &str) -> Result<bool, String> {
        Err(self.0.to_string())
    }

    async fn trust(&mut self, _: &str) -> Result<(), String> {
        Err(self.0.to_string())
    }
}

fn key_login(sshd: &Sshd, key: String, passphrase: Option<&str>) -> Credentials {
    Credentials {
        username: sshd.user.clone(),
        password: None,
        private_key: Some(key),
        passphrase: passphrase.map(str::to_string),
        cols: 80,
        rows: 24,
    }
}

fn password_login(sshd: &Sshd, password: &str) -> Credentials {
    Credentials {
        username: sshd.user.clone(),
        password: Some(password.to_string()),
        private_key: None,
        passphrase: None,
        cols: 80,
        rows: 24,
    }
}

/// The browser's end: everything it received is kept in `transcript` (binary as lossy text).
struct Page {
    ws: WebSocketStream<DuplexStream>,
    transcript: String,
    output: String,
}

impl Page {
    async fn next(&mut self) -> Option<Message> {
        let message = tokio::time::timeout(WAIT, self.ws.next())
            .await
            .expect("the hub answers in time")?
            .ok()?;
        if let Some(text) = message.as_text() {
            self.transcript.push_str(text);
        } else if let Some((code, reason)) = message.as_close() {
            self.transcript
                .push_str(&format!("close {} {reason}", u16::from(code)));
        } else if message.is_binary() {
            let text = String::from_utf8_lossy(message.as_payload()).to_string();
            self.transcript.push_str(&text);
            self.output.push_str(&text);
        }
        Some(message)
    }

    /// The next text message, as JSON (terminal bytes before it are kept in `output`).
    async fn text(&mut self) -> Value {
        loop {
            let message = self.next().await.expect("a text message, not the end");
            if let Some(text) = message.as_text() {
                return serde_json::from_str(text).expect("JSON");
            }
            assert!(!message.is_close(), "a Close instead of a text message");
        }
    }

    /// Reads terminal output until a line (escape sequences removed) is exactly `line`.
    async fn output_until(&mut self, line: &str) {
        loop {
            if strip_escapes(&self.output)
                .split(['\r', '\n'])
                .any(|l| l.trim_end() == line)
            {
                self.output.clear();
                return;
            }
            let message = self.next().await.expect("more output");
            assert!(
                message.is_binary(),
                "expected output, got {:?} after {:?}",
                message.as_text(),
                self.output
            );
        }
    }

    async fn trust_host_key(&mut self) {
        self.ws
            .send(Message::text(json!({"type": "trustHostKey"}).to_string()))
            .await
            .expect("send");
    }

    async fn type_in(&mut self, keys: &str) {
        self.ws
            .send(Message::binary(keys.as_bytes().to_vec()))
            .await
            .expect("send");
    }

    /// The hub's Close, with its code; then the stream ends.
    async fn expect_close(&mut self, code: CloseCode) {
        loop {
            let message = self.next().await.expect("a Close");
            if let Some((got, _)) = message.as_close() {
                assert_eq!(got, code);
                break;
            }
            assert!(message.is_binary(), "unexpected {:?}", message.as_text());
        }
        assert!(self.next().await.is_none(), "nothing after the Close");
    }
}

/// Removes CSI (`ESC [ ... final`) and OSC (`ESC ] ... BEL`) sequences.
fn strip_escapes(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('[') => {
                for c in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                for c in chars.by_ref() {
                    if c == '\u{7}' {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Starts [`run`] against `sshd` over TCP, with the page's WebSocket over an in-memory pipe.
async fn start(
    sshd: &Sshd,
    creds: Credentials,
    policy: impl HostKeyPolicy,
) -> (Page, JoinHandle<Outcome>) {
    let transport = TcpStream::connect(("127.0.0.1", sshd.port))
        .await
        .expect("connect to sshd");
    start_over(transport, creds, policy)
}

/// Starts [`run`] over `transport`.
fn start_over(
    transport: impl AsyncRead + AsyncWrite + Unpin + Send + 'static,
    creds: Credentials,
    policy: impl HostKeyPolicy,
) -> (Page, JoinHandle<Outcome>) {
    let (hub_end, page_end) = tokio::io::duplex(64 * 1024);
    let mut hub = ServerBuilder::new().serve(hub_end);
    let page = Page {
        ws: ClientBuilder::new().take_over(page_end),
        transcript: String::new(),
        output: String::new(),
    };
    let task = tokio::spawn(async move { run(transport, &mut hub, creds, policy).await });
    (page, task)
}

async fn outcome(task: JoinHandle<Outcome>) -> Outcome {
    tokio::time::timeout(WAIT, task)
        .await
        .expect("run ends in time")
        .expect("run does not panic")
}

/// The host key's fingerprint as OpenSSH prints it (ssh-keyscan piped to ssh-keygen -l).
fn openssh_fingerprint(port: u16) -> String {
    let scan = Command::new("ssh-keyscan")
        .args(["-t", "ed25519", "-p", &port.to_string(), "127.0.0.1"])
        .stderr(Stdio::null())
        .output()
        .expect("ssh-keyscan");
    let mut keygen = Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("ssh-keygen");
    std::io::Write::write_all(&mut keygen.stdin.take().expect("stdin"), &scan.stdout)
        .expect("write");
    let out = keygen.wait_with_output().expect("ssh-keygen output");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .expect("a fingerprint")
        .to_string()
}

#[tokio::test]
async fn a_key_signs_in_runs_a_shell_and_resizes_it() {
    let sshd = Sshd::start();
    let key = std::fs::read_to_string(&sshd.key).expect("the key");
    let (policy, asked) = trust(true);
    let (mut page, task) = start(&sshd, key_login(&sshd, key, None), policy).await;

    let host_key = page.text().await;
    assert_eq!(host_key["type"], "hostKey");
    assert_eq!(host_key["firstUse"], true);
    let fingerprint = openssh_fingerprint(sshd.port);
    assert_eq!(host_key["fingerprint"], fingerprint.as_str());
    assert_eq!(*asked.lock().expect("lock"), vec![fingerprint.clone()]);
    // A key seen for the first time: nothing more happens until the user trusts it (were the
    // hub to sign in meanwhile, `ready` would come within this wait: this key signs in).
    let early = tokio::time::timeout(Duration::from_millis(1500), page.ws.next()).await;
    assert!(
        early.is_err(),
        "the hub went on before the key was trusted: {early:?}"
    );
    page.trust_host_key().await;
    assert_eq!(page.text().await, json!({"type": "ready"}));
    assert_eq!(
        *asked.lock().expect("lock"),
        vec![fingerprint.clone(), format!("trusted {fingerprint}")]
    );

    page.type_in("echo hello\r").await;
    page.output_until("hello").await;

    page.ws
        .send(Message::text(
            json!({"type": "resize", "cols": 100, "rows": 30}).to_string(),
        ))
        .await
        .expect("send");
    page.type_in("stty size\r").await;
    page.output_until("30 100").await;

    page.type_in("exit 3\r").await;
    let closed = page.text().await;
    assert_eq!(closed["type"], "closed");
    assert_eq!(closed["message"], "the shell exited with status 3");
    page.expect_close(CloseCode::NORMAL_CLOSURE).await;
    assert_eq!(
        outcome(task).await,
        Outcome::ShellEnded {
            exit_status: Some(3)
        }
    );
}

#[tokio::test]
async fn an_encrypted_key_needs_its_passphrase() {
    let sshd = Sshd::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = dir.path().join("key");
    std::fs::copy(&sshd.key, &copy).expect("copy the key");
    let passphrase = "correct horse battery staple";
    let status = Command::new("ssh-keygen")
        .args(["-q", "-p", "-P", "", "-N", passphrase, "-f"])
        .arg(&copy)
        .stdout(Stdio::null())
        .status()
        .expect("ssh-keygen -p");
    assert!(status.success());
    let key = std::fs::read_to_string(&copy).expect("the encrypted key");

    // No passphrase, then a wrong one: refused before anything reaches the device.
    for (given, says) in [
        (None, "the private key is encrypted: give its passphrase"),
        (
            Some("Wrong-Passphrase-4711"),
            "the private key could not be read: a wrong passphrase, or not an OpenSSH or PEM \
             private key",
        ),
    ] {
        let (policy, asked) = trust(true);
        let (mut page, task) = start(&sshd, key_login(&sshd, key.clone(), given), policy).await;
        assert_eq!(page.text().await, json!({"type": "error", "message": says}));
        page.expect_close(CloseCode::NORMAL_CLOSURE).await;
        assert_eq!(outcome(task).await, Outcome::BadCredentials);
        assert!(asked.lock().expect("lock").is_empty());
        assert!(!page.transcript.contains("Wrong-Passphrase"));
        assert!(!page.transcript.contains("OPENSSH PRIVATE KEY"));
    }

    // The right one, with a key the policy already knew; then the page closes.
    let (policy, _) = trust(false);
    let (mut page, task) = start(&sshd, key_login(&sshd, key, Some(passphrase)), policy).await;
    let host_key = page.text().await;
    assert_eq!(host_key["type"], "hostKey");
    assert_eq!(host_key["firstUse"], false);
    assert_eq!(page.text().await, json!({"type": "ready"}));
    page.ws
        .send(Message::close(
            Some(CloseCode::NORMAL_CLOSURE),
            "closed by the user",
        ))
        .await
        .expect("close");
    assert_eq!(outcome(task).await, Outcome::PageLeft);
    assert!(!page.transcript.contains(passphrase));
}

#[tokio::test]
async fn a_refused_host_key_ends_before_signing_in() {
    let sshd = Sshd::start();
    let key = std::fs::read_to_string(&sshd.key).expect("the key");
    let refusal = "the device's host key changed; it was SHA256:AAAA";
    let (mut page, task) = start(&sshd, key_login(&sshd, key, None), Refuse(refusal)).await;
    assert_eq!(
        page.text().await,
        json!({"type": "error", "message": refusal})
    );
    page.expect_close(CloseCode::NORMAL_CLOSURE).await;
    assert_eq!(outcome(task).await, Outcome::HostKeyRefused);
}

#[tokio::test]
async fn a_refused_password_is_never_echoed() {
    let sshd = Sshd::start();
    let password = "Tr0ub4dor&3-not-the-password";
    let creds = password_login(&sshd, password);
    assert!(!format!("{creds:?}").contains(password));
    let (policy, _) = trust(false);
    let (mut page, task) = start(&sshd, creds, policy).await;
    assert_eq!(page.text().await["type"], "hostKey");
    let error = page.text().await;
    assert_eq!(error["type"], "error");
    let message = error["message"].as_str().expect("a message");
    assert!(
        message.starts_with("the device's sshd refused the user name or password"),
        "{message}"
    );
    // This sshd takes keys only, and says so.
    assert!(message.contains("it accepts: publickey"), "{message}");
    page.expect_close(CloseCode::NORMAL_CLOSURE).await;
    let outcome = outcome(task).await;
    assert_eq!(outcome, Outcome::AuthRefused);
    assert!(!page.transcript.contains(password));
    assert!(!page.transcript.contains("Tr0ub4dor"));
    assert!(!outcome.to_string().contains(password));
}

#[tokio::test]
async fn a_message_over_the_limit_ends_the_terminal() {
    let sshd = Sshd::start();
    let key = std::fs::read_to_string(&sshd.key).expect("the key");
    let (policy, _) = trust(false);
    let (mut page, task) = start(&sshd, key_login(&sshd, key, None), policy).await;
    assert_eq!(page.text().await["type"], "hostKey");
    assert_eq!(page.text().await["type"], "ready");
    page.ws
        .send(Message::binary(vec![b'x'; MAX_MESSAGE + 1]))
        .await
        .expect("send");
    assert_eq!(
        page.text().await,
        json!({"type": "error", "message": "a message from the page was over 64 KiB"})
    );
    page.expect_close(CloseCode::MESSAGE_TOO_BIG).await;
    assert_eq!(outcome(task).await, Outcome::PageError("message too big"));
}

#[tokio::test]
async fn credentials_parse_the_pages_message_and_debug_redacts_secrets() {
    let creds: Credentials = serde_json::from_str(
        r#"{"username":"pi","privateKey":"KEY-TEXT","passphrase":"PASS-TEXT","password":"PW-TEXT","cols":120,"rows":40}"#,
    )
    .expect("parse");
    assert_eq!((creds.cols, creds.rows), (120, 40));
    assert_eq!(creds.private_key.as_deref(), Some("KEY-TEXT"));
    let debug = format!("{creds:?}");
    for secret in ["KEY-TEXT", "PASS-TEXT", "PW-TEXT"] {
        assert!(!debug.contains(secret), "{debug}");
    }
    assert!(debug.contains("pi"));
}

#[tokio::test]
async fn a_shell_killed_by_a_signal_says_so() {
    let sshd = Sshd::start();
    let key = std::fs::read_to_string(&sshd.key).expect("the key");
    let (policy, _) = trust(false);
    let (mut page, task) = start(&sshd, key_login(&sshd, key, None), policy).await;
    assert_eq!(page.text().await["type"], "hostKey");
    assert_eq!(page.text().await["type"], "ready");
    page.type_in("kill -KILL $$\r").await;
    assert_eq!(
        page.text().await,
        json!({"type": "closed", "message": "the shell was ended by signal KILL"})
    );
    page.expect_close(CloseCode::NORMAL_CLOSURE).await;
    assert_eq!(
        outcome(task).await,
        Outcome::ShellEnded { exit_status: None }
    );
}

#[tokio::test]
async fn cancelling_a_terminal_ends_its_ssh_connection() {
    let sshd = Sshd::start();
    let key = std::fs::read_to_string(&sshd.key).expect("the key");
    // The transport is a pipe relayed to sshd, so its end can be seen.
    let (transport, mut far) = tokio::io::duplex(64 * 1024);
    let mut tcp = TcpStream::connect(("127.0.0.1", sshd.port))
        .await
        .expect("connect to sshd");
    let relay =
        tokio::spawn(async move { tokio::io::copy_bidirectional(&mut far, &mut tcp).await });
    let (policy, _) = trust(false);
    let (mut page, task) = start_over(transport, key_login(&sshd, key, None), policy);
    assert_eq!(page.text().await["type"], "hostKey");
    assert_eq!(page.text().await["type"], "ready");
    page.type_in("echo hello\r").await;
    page.output_until("hello").await;

    task.abort();
    // Dropping run's future drops the SSH handle; russh's task then lets go of the transport.
    let _ = tokio::time::timeout(WAIT, relay)
        .await
        .expect("the SSH connection ends")
        .expect("the relay does not panic");
}

#[tokio::test]
async fn a_new_host_key_not_trusted_ends_the_terminal_before_signing_in() {
    let sshd = Sshd::start();
    let password = "Tr0ub4dor&3-never-sent";
    let (policy, asked) = trust(true);
    let (mut page, task) = start(&sshd, password_login(&sshd, password), policy).await;
    let host_key = page.text().await;
    assert_eq!(host_key["firstUse"], true);
    // The user declines: the page closes.
    page.ws
        .send(Message::close(
            Some(CloseCode::NORMAL_CLOSURE),
            "not trusted",
        ))
        .await
        .expect("close");
    assert_eq!(outcome(task).await, Outcome::HostKeyNotTrusted);
    let asked = asked.lock().expect("lock").clone();
    assert_eq!(asked.len(), 1, "checked, never trusted: {asked:?}");
}

/// The page's WebSocket, hub side, and the page's end, over an in-memory pipe.
fn page_pair() -> (WebSocketStream<DuplexStream>, WebSocketStream<DuplexStream>) {
    let (hub_end, page_end) = tokio::io::duplex(64 * 1024);
    (
        ServerBuilder::new().serve(hub_end),
        ClientBuilder::new().take_over(page_end),
    )
}

#[tokio::test(start_paused = true)]
async fn the_user_has_the_trust_limit_to_trust_a_new_key_and_not_a_moment_more() {
    use super::{TRUST_LIMIT, Trusted, await_trust};
    // Just in time, after a keystroke and a resize that are dropped meanwhile.
    let (mut hub, mut page) = page_pair();
    let (_, mut from_page) = futures_util::StreamExt::split(&mut hub);
    let waiting = tokio::spawn(async move {
        tokio::time::sleep(TRUST_LIMIT - Duration::from_millis(1)).await;
        page.send(Message::binary(&b"ls\r"[..]))
            .await
            .expect("send");
        page.send(Message::text(json!({"type": "trustHostKey"}).to_string()))
            .await
            .expect("send");
        page
    });
    assert_eq!(await_trust(&mut from_page, TRUST_LIMIT).await, Trusted::Yes);
    let _page = waiting.await.expect("page");

    // A word just past the limit is too late: the wait ends at the limit exactly.
    let (mut hub, mut page) = page_pair();
    let (_, mut from_page) = futures_util::StreamExt::split(&mut hub);
    let late = tokio::spawn(async move {
        tokio::time::sleep(TRUST_LIMIT + Duration::from_millis(1)).await;
        let _ = page
            .send(Message::text(json!({"type": "trustHostKey"}).to_string()))
            .await;
        page
    });
    let started = tokio::time::Instant::now();
    assert_eq!(
        await_trust(&mut from_page, TRUST_LIMIT).await,
        Trusted::NotInTime
    );
    assert_eq!(started.elapsed(), TRUST_LIMIT);
    let _page = late.await.expect("page");

    // A page that goes away has not trusted it.
    let (mut hub, page) = page_pair();
    let (_, mut from_page) = futures_util::StreamExt::split(&mut hub);
    drop(page);
    assert_eq!(
        await_trust(&mut from_page, TRUST_LIMIT).await,
        Trusted::PageLeft
    );
}
