//! The HTTP CONNECT handshake (RFC 9110, section 9.3.6) on a connection to the proxy: ask for
//! a tunnel to `host:port`, read the proxy's answer head (bounded), and leave the connection
//! positioned at the first byte of the tunnel. The proxy's answer is parsed by `httparse`
//! (hyper's parser); nothing in it can make this panic or read without bound.

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use super::{ProxyError, ProxyUrl};

/// Largest answer head read from a proxy; a longer one is refused.
pub const MAX_ANSWER: usize = 8 * 1024;
/// Most header lines in the answer head.
const MAX_HEADERS: usize = 64;
/// Longest reason phrase kept for an error message.
const MAX_REASON: usize = 64;

/// Asks `proxy` (already connected as `io`) for a tunnel to `target` (`host:port`, an IPv6
/// literal in brackets). Any 2xx answer opens the tunnel; anything else is an error naming
/// the proxy, the target and the status.
pub(super) async fn handshake<S>(
    io: &mut S,
    proxy: &ProxyUrl,
    target: &str,
) -> Result<(), ProxyError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let io_error = |source| ProxyError::Io {
        proxy: proxy.to_string(),
        target: target.to_string(),
        source,
    };
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n").into_bytes();
    if let Some(auth) = proxy.authorization() {
        request.extend_from_slice(b"Proxy-Authorization: ");
        request.extend_from_slice(auth.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"\r\n");
    io.write_all(&request).await.map_err(io_error)?;
    io.flush().await.map_err(io_error)?;

    // On the heap: a session task holds this future's state for its whole life.
    let mut buf = vec![0u8; MAX_ANSWER];
    let mut len = 0;
    loop {
        let malformed = |detail: String| ProxyError::Malformed {
            proxy: proxy.to_string(),
            target: target.to_string(),
            detail,
        };
        if len == buf.len() {
            return Err(malformed(format!(
                "its answer head is longer than {MAX_ANSWER} bytes"
            )));
        }
        let n = io.read(&mut buf[len..]).await.map_err(io_error)?;
        if n == 0 {
            return Err(malformed(if len == 0 {
                "it closed the connection without answering".into()
            } else {
                "it closed the connection in the middle of its answer".into()
            }));
        }
        len += n;
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut answer = httparse::Response::new(&mut headers);
        let head = match answer.parse(&buf[..len]) {
            Ok(httparse::Status::Complete(head)) => head,
            Ok(httparse::Status::Partial) => continue,
            Err(e) => return Err(malformed(format!("not an HTTP answer ({e})"))),
        };
        let code = answer.code.unwrap_or(0);
        if (200..300).contains(&code) {
            // A TLS server never speaks first, so nothing may follow the head yet.
            if head < len {
                return Err(malformed(format!(
                    "{} bytes followed its {code} answer before the hub could speak",
                    len - head
                )));
            }
            return Ok(());
        }
        let reason = answer.reason.map(escape).unwrap_or_default();
        return Err(refusal(proxy, target, code, reason));
    }
}

/// The error for a non-2xx answer: 407 (and 401, which some proxies, tinyproxy among them,
/// send for wrong credentials) say what to do about the credentials.
fn refusal(proxy: &ProxyUrl, target: &str, status: u16, reason: String) -> ProxyError {
    let proxy_shown = proxy.to_string();
    match (status, proxy.authorization().is_some()) {
        (407, false) => ProxyError::AuthRequired { proxy: proxy_shown },
        (401 | 407, true) => ProxyError::AuthRefused {
            proxy: proxy_shown,
            status,
            reason,
        },
        _ => ProxyError::Refused {
            proxy: proxy_shown,
            target: target.to_string(),
            status,
            reason,
        },
    }
}

/// A remote reason phrase made safe for a log line: bounded, control characters escaped.
fn escape(reason: &str) -> String {
    reason
        .chars()
        .take(MAX_REASON)
        .flat_map(char::escape_debug)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    /// Runs the handshake against a proxy that answers `answer` (then closes its side), and
    /// returns the result and the request the proxy received.
    async fn against(proxy: &str, answer: &[u8]) -> (Result<(), ProxyError>, String) {
        let proxy = ProxyUrl::parse(proxy).expect("proxy URL");
        let (mut client, mut server) = duplex(64 * 1024);
        let answer = answer.to_vec();
        let server_side = tokio::spawn(async move {
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") {
                if server.read(&mut byte).await.expect("read") == 0 {
                    break;
                }
                request.push(byte[0]);
            }
            let _ = server.write_all(&answer).await;
            String::from_utf8(request).expect("ascii request")
        });
        let result = handshake(&mut client, &proxy, "hub.invalid:443").await;
        (result, server_side.await.expect("server task"))
    }

    #[tokio::test]
    async fn sends_connect_with_host_and_credentials() {
        let (result, request) = against(
            "http://alice:s3cret@proxy:3128",
            b"HTTP/1.1 200 Connection established\r\n\r\n",
        )
        .await;
        result.expect("tunnel open");
        assert_eq!(
            request,
            "CONNECT hub.invalid:443 HTTP/1.1\r\nHost: hub.invalid:443\r\n\
             Proxy-Authorization: Basic YWxpY2U6czNjcmV0\r\n\r\n"
        );
        let (_, request) = against("proxy:3128", b"HTTP/1.0 200 OK\r\n\r\n").await;
        assert!(!request.contains("Proxy-Authorization"), "{request}");
    }

    #[tokio::test]
    async fn any_2xx_opens_the_tunnel_and_leaves_the_stream_after_the_head() {
        for answer in [
            &b"HTTP/1.1 200 Connection established\r\nProxy-agent: x\r\n\r\n"[..],
            b"HTTP/1.0 200 \r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
        ] {
            let (result, _) = against("proxy:1", answer).await;
            assert!(
                result.is_ok(),
                "{:?}: {result:?}",
                String::from_utf8_lossy(answer)
            );
        }
    }

    #[tokio::test]
    async fn an_answer_in_small_pieces_is_read_whole() {
        let proxy = ProxyUrl::parse("proxy:1").expect("proxy URL");
        let (mut client, mut server) = duplex(16);
        let server_side = tokio::spawn(async move {
            let (mut request, mut byte) = (Vec::new(), [0u8; 1]);
            while !request.ends_with(b"\r\n\r\n") {
                assert_eq!(server.read(&mut byte).await.expect("read"), 1);
                request.push(byte[0]);
            }
            for piece in [&b"HTTP/1.1 2"[..], b"00 OK\r", b"\nVia: p\r\n", b"\r\n"] {
                server.write_all(piece).await.expect("write");
                tokio::task::yield_now().await;
            }
            server
        });
        handshake(&mut client, &proxy, "h:1")
            .await
            .expect("tunnel open");
        let mut server = server_side.await.expect("server");
        // The tunnel carries bytes both ways from here.
        client.write_all(b"ping").await.expect("write");
        let mut got = [0u8; 4];
        server.read_exact(&mut got).await.expect("read");
        assert_eq!(&got, b"ping");
    }

    #[tokio::test]
    async fn statuses_become_errors_that_name_proxy_target_and_status() {
        let (result, _) = against(
            "http://alice:s3cret@proxy:3128",
            b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
        )
        .await;
        let e = result.expect_err("403");
        assert!(
            matches!(e, ProxyError::Refused { status: 403, .. }),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "proxy http://alice:***@proxy:3128 refused CONNECT hub.invalid:443: 403 Forbidden"
        );
        let (result, _) = against("proxy:1", b"HTTP/1.1 502 Bad Gateway\r\n\r\nbody").await;
        assert!(
            result
                .expect_err("502")
                .to_string()
                .ends_with("refused CONNECT hub.invalid:443: 502 Bad Gateway")
        );
    }

    #[tokio::test]
    async fn authentication_answers_say_what_to_do() {
        let (result, _) = against(
            "proxy:3128",
            b"HTTP/1.0 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\n\r\n<html>",
        )
        .await;
        assert_eq!(
            result.expect_err("407").to_string(),
            "proxy http://proxy:3128 requires authentication: give user:password in the proxy URL"
        );
        for answer in [
            &b"HTTP/1.0 407 Proxy Authentication Required\r\n\r\n"[..],
            b"HTTP/1.0 401 Unauthorized\r\n\r\n",
        ] {
            let (result, _) = against("http://alice:wrong@proxy:3128", answer).await;
            let e = result.expect_err("refused").to_string();
            assert!(
                e.starts_with("proxy http://alice:***@proxy:3128 refused the user name or password in the proxy URL (40"),
                "{e}"
            );
            assert!(!e.contains("wrong"), "{e}");
        }
    }

    #[tokio::test]
    async fn malformed_answers_are_errors_not_panics() {
        let long_header = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(MAX_ANSWER));
        let many_headers = format!("HTTP/1.1 200 OK\r\n{}\r\n", "X: y\r\n".repeat(100));
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("silent close", Vec::new()),
            ("cut short", b"HTTP/1.1 200 Conn".to_vec()),
            ("not HTTP", b"SSH-2.0-OpenSSH_9.2\r\n\r\n".to_vec()),
            (
                "binary",
                vec![0x16, 0x03, 0x01, 0x00, 0xff, 0x00, 0x0d, 0x0a, 0x0d, 0x0a],
            ),
            ("bad status", b"HTTP/1.1 2x0 OK\r\n\r\n".to_vec()),
            ("huge status", b"HTTP/1.1 99999 OK\r\n\r\n".to_vec()),
            ("bad version", b"HTTP/9 200 OK\r\n\r\n".to_vec()),
            (
                "bad header",
                b"HTTP/1.1 200 OK\r\nNo colon\r\n\r\n".to_vec(),
            ),
            ("endless head", long_header.into_bytes()),
            ("too many headers", many_headers.into_bytes()),
            ("data after 200", b"HTTP/1.1 200 OK\r\n\r\nEXTRA".to_vec()),
            ("only newlines", b"\r\n\r\n\r\n\r\n".to_vec()),
        ];
        for (what, answer) in cases {
            let (result, _) = against("proxy:1", &answer).await;
            let e = result.expect_err(what);
            assert!(matches!(e, ProxyError::Malformed { .. }), "{what}: {e:?}");
            assert!(
                e.to_string().starts_with("proxy http://proxy:1 "),
                "{what}: {e}"
            );
        }
    }

    #[tokio::test]
    async fn remote_reason_phrases_are_bounded_and_escaped() {
        let answer = format!("HTTP/1.1 500 {}\u{1b}[31m\r\n\r\n", "x".repeat(500));
        let (result, _) = against("proxy:1", answer.as_bytes()).await;
        let e = result.expect_err("500").to_string();
        assert!(e.len() < 200, "{e}");
        assert!(!e.contains('\u{1b}'), "{e}");
    }
}
