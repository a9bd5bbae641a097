//! HTTP CONNECT (RFC 9110, section 9.3.6), client side, with Basic
//! authentication (RFC 7617).
//!
//! Pure: [`request`] encodes the request, [`response_end`] finds where the
//! response's head ends and [`check_response`] turns its status into
//! success or an [`Error`] naming the status. Reading the head without
//! reading past it (the tunnel's first bytes may follow it at once) is the
//! chain's job.

use base64::Engine;

use super::Credentials;
use crate::error::{Error, ErrorKind, Result};

/// The longest response head accepted from a proxy: 16 KiB. A longer one
/// is a protocol error, not a reason to buffer without end.
pub(super) const MAX_HEAD: usize = 16 * 1024;

/// A CONNECT request for `authority` (`host:port`, `[v6]:port`).
pub(super) fn request(authority: &str, credentials: Option<&Credentials>) -> Vec<u8> {
    let mut req = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(c) = credentials {
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.user, c.password));
        req.push_str("Proxy-Authorization: Basic ");
        req.push_str(&token);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    req.into_bytes()
}

/// Where the head in `buf` ends (just past its blank line), if it does.
pub(super) fn response_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Checks the status of a complete response head: a 2xx opens the tunnel;
/// anything else is the proxy's refusal, with its status and reason.
pub(super) fn check_response(head: &[u8], sent_credentials: bool) -> Result<()> {
    let line_end = head.iter().position(|&b| b == b'\r').unwrap_or(head.len());
    let line = String::from_utf8_lossy(&head[..line_end]);
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let code = parts.next().unwrap_or("");
    let reason: String = parts
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect();
    let status = match (
        version.starts_with("HTTP/1."),
        code.len(),
        code.parse::<u16>(),
    ) {
        (true, 3, Ok(status)) => status,
        _ => {
            return Err(Error::new(ErrorKind::Protocol, "").with_detail(
                "not an http proxy (its answer to CONNECT is not an HTTP/1.x status line)",
            ));
        }
    };
    if (200..300).contains(&status) {
        return Ok(());
    }
    let shown = if reason.is_empty() {
        format!("{status}")
    } else {
        format!("{status} {reason}")
    };
    let (kind, why) = match status {
        407 if sent_credentials => (ErrorKind::ProxyDenied, "wrong user name or password"),
        407 => (
            ErrorKind::ProxyDenied,
            "the proxy requires authentication (give USER:PASSWORD@ in the url)",
        ),
        401 | 403 => (ErrorKind::ProxyDenied, "access denied"),
        405 | 501 => (ErrorKind::ProxyDenied, "the proxy does not allow CONNECT"),
        502 => (
            ErrorKind::ProxyRefused,
            "the proxy could not connect to the target",
        ),
        503 => (
            ErrorKind::ProxyRefused,
            "the proxy could not reach the target",
        ),
        504 => (
            ErrorKind::ProxyRefused,
            "the target did not answer the proxy in time",
        ),
        400..=499 => (ErrorKind::ProxyDenied, "request rejected"),
        _ => (ErrorKind::ProxyRefused, "connect failed"),
    };
    Err(Error::new(kind, "").with_detail(format!("proxy refused: {why} (http {shown})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_match_the_expected_bytes() {
        assert_eq!(
            request("example.com:443", None),
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
        );
        let c = Credentials {
            user: "Aladdin".into(),
            password: "open sesame".into(),
        };
        // RFC 7617's example.
        assert_eq!(
            request("[::1]:80", Some(&c)),
            b"CONNECT [::1]:80 HTTP/1.1\r\nHost: [::1]:80\r\n\
              Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n"
                .to_vec()
        );
    }

    #[test]
    fn the_head_ends_at_the_blank_line() {
        let buf = b"HTTP/1.1 200 Connection established\r\n\r\nSSH-2.0";
        assert_eq!(response_end(buf), Some(buf.len() - 7));
        assert_eq!(response_end(b"HTTP/1.1 200 OK\r\n"), None);
        assert!(check_response(b"HTTP/1.0 200 Connection established\r\n\r\n", false).is_ok());
        assert!(check_response(b"HTTP/1.1 204 No Content\r\n\r\n", false).is_ok());
    }

    #[test]
    fn statuses_become_kinds_and_reasons() {
        let cases: [(&[u8], bool, ErrorKind, &str); 7] = [
            (
                b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n",
                false,
                ErrorKind::ProxyDenied,
                "requires authentication (give USER:PASSWORD@ in the url) (http 407 Proxy Authentication Required)",
            ),
            (
                b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n",
                true,
                ErrorKind::ProxyDenied,
                "wrong user name or password",
            ),
            (
                b"HTTP/1.0 403 Access violation\r\n\r\n",
                false,
                ErrorKind::ProxyDenied,
                "access denied (http 403 Access violation)",
            ),
            (
                b"HTTP/1.1 502 Bad Gateway\r\n\r\n",
                false,
                ErrorKind::ProxyRefused,
                "could not connect to the target (http 502 Bad Gateway)",
            ),
            (
                b"HTTP/1.1 504 Gateway Timeout\r\n\r\n",
                false,
                ErrorKind::ProxyRefused,
                "http 504",
            ),
            (
                b"HTTP/1.1 500\r\n\r\n",
                false,
                ErrorKind::ProxyRefused,
                "(http 500)",
            ),
            (
                b"SSH-2.0-OpenSSH\r\n\r\n",
                false,
                ErrorKind::Protocol,
                "not an http proxy",
            ),
        ];
        for (head, creds, kind, why) in cases {
            let err = check_response(head, creds).unwrap_err();
            assert_eq!(err.kind(), kind, "{err}");
            assert!(err.detail().contains(why), "{err}");
        }
        // Control characters in the reason are not echoed to the terminal.
        let err = check_response(b"HTTP/1.1 403 a\x1b[31mb\r\n\r\n", false).unwrap_err();
        assert!(!err.detail().contains('\x1b'), "{err}");
    }
}
