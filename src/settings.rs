//! The settings that errors, warnings and logs refer to, named by the front
//! end.
//!
//! The library's messages often give advice ("pin it with the pin-sha256
//! setting"). The library does not know how its user spells a setting: the
//! command line spells it `--pin-sha256`, a program embedding the library
//! spells it `TlsOptions`' field. So messages never spell settings
//! themselves: they format a [`Setting`], whose [`Display`](fmt::Display)
//! uses the names the front end registered once at start-up with
//! [`name_settings`], and the library's own names (the configuration
//! fields', such as `pin_sha256`) otherwise. The binary registers its flag
//! names (`src/cli/settings.rs`), so its users read `--pin-sha256`.

use std::fmt;
use std::sync::OnceLock;

/// A setting a message refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Setting {
    /// TLS: the certificate chain to present.
    Cert,
    /// TLS: the private key of [`Setting::Cert`].
    Key,
    /// TLS client: extra certificate authorities to trust.
    Ca,
    /// TLS client: the server certificate's pinned SHA-256 fingerprints.
    PinSha256,
    /// TLS server: the certificate authorities client certificates must
    /// chain to.
    ClientCa,
    /// TLS server: pinned fingerprints of accepted client certificates.
    ClientPinSha256,
    /// TLS server: the names a client certificate must carry.
    ClientName,
    /// TLS client: the name sent (SNI) and verified.
    ServerName,
    /// TLS and QUIC: the ALPN protocols offered or accepted.
    Alpn,
    /// TLS and QUIC: how long a handshake may take.
    HandshakeTimeout,
    /// TLS client: accept any server certificate.
    Insecure,
    /// The user-space copy instead of splice(2).
    NoSplice,
    /// connect: only receive.
    RecvOnly,
    /// connect: only send.
    SendOnly,
    /// connect: how long to wait after the input ends.
    Wait,
    /// Data to send instead of standard input.
    Send,
    /// The reply a probe or a benchmark expects.
    Expect,
    /// UDP connect: send input in chunks rather than per line.
    Raw,
    /// Access rules: addresses allowed to connect.
    Allow,
    /// Access rules: addresses refused.
    Deny,
    /// Access rules: files of addresses allowed to connect.
    AllowFile,
    /// Access rules: files of addresses refused.
    DenyFile,
    /// Proxy server: destinations allowed.
    AllowDest,
    /// Proxy server: destinations refused.
    DenyDest,
    /// Proxy server: the credentials clients must give.
    Auth,
    /// The proxy to connect through.
    Proxy,
    /// WebSocket: the subprotocol asked for.
    WsProtocol,
    /// WebSocket: send text messages.
    WsText,
    /// Unix sockets: the socket file's permissions.
    Mode,
    /// The transcript file.
    Output,
    /// The hex-dump transcript file.
    HexDump,
    /// bench: the number of connections.
    Connections,
    /// bench: requests in flight per connection.
    Pipeline,
    /// bench: a new connection per request.
    Churn,
    /// bench: the request rate.
    Rate,
    /// bench: the rate of new connections.
    ConnectRate,
    /// bench: how many requests to make.
    Requests,
    /// bench: how long to run.
    Duration,
    /// relay faults: reset the client after this many bytes.
    ResetAfter,
    /// relay faults: reset the client after this long.
    ResetAfterTime,
    /// relay faults: stop forwarding after this long, then close.
    TimeoutAfter,
    /// Serve one connection, then exit.
    Once,
    /// A program per connection, run without a shell.
    Exec,
    /// A program per connection, run by `/bin/sh -c`.
    ShExec,
    /// Give the program a pseudo-terminal.
    Pty,
    /// The most connections (or programs) at once.
    MaxConns,
}

impl Setting {
    /// Every setting, for front ends to check their names against.
    pub const ALL: &[Setting] = &[
        Setting::Cert,
        Setting::Key,
        Setting::Ca,
        Setting::PinSha256,
        Setting::ClientCa,
        Setting::ClientPinSha256,
        Setting::ClientName,
        Setting::ServerName,
        Setting::Alpn,
        Setting::HandshakeTimeout,
        Setting::Insecure,
        Setting::NoSplice,
        Setting::RecvOnly,
        Setting::SendOnly,
        Setting::Wait,
        Setting::Send,
        Setting::Expect,
        Setting::Raw,
        Setting::Allow,
        Setting::Deny,
        Setting::AllowFile,
        Setting::DenyFile,
        Setting::AllowDest,
        Setting::DenyDest,
        Setting::Auth,
        Setting::Proxy,
        Setting::WsProtocol,
        Setting::WsText,
        Setting::Mode,
        Setting::Output,
        Setting::HexDump,
        Setting::Connections,
        Setting::Pipeline,
        Setting::Churn,
        Setting::Rate,
        Setting::ConnectRate,
        Setting::Requests,
        Setting::Duration,
        Setting::ResetAfter,
        Setting::ResetAfterTime,
        Setting::TimeoutAfter,
        Setting::Once,
        Setting::Exec,
        Setting::ShExec,
        Setting::Pty,
        Setting::MaxConns,
    ];

    /// The library's name for the setting: its configuration field's.
    pub fn library_name(self) -> &'static str {
        match self {
            Setting::Cert => "cert",
            Setting::Key => "key",
            Setting::Ca => "ca",
            Setting::PinSha256 => "pin_sha256",
            Setting::ClientCa => "client_ca",
            Setting::ClientPinSha256 => "client_pin_sha256",
            Setting::ClientName => "client_name",
            Setting::ServerName => "server_name",
            Setting::Alpn => "alpn",
            Setting::HandshakeTimeout => "handshake_timeout",
            Setting::Insecure => "insecure",
            Setting::NoSplice => "no_splice",
            Setting::RecvOnly => "recv_only",
            Setting::SendOnly => "send_only",
            Setting::Wait => "wait",
            Setting::Send => "send",
            Setting::Expect => "expect",
            Setting::Raw => "raw",
            Setting::Allow => "allow",
            Setting::Deny => "deny",
            Setting::AllowFile => "allow_file",
            Setting::DenyFile => "deny_file",
            Setting::AllowDest => "allow_dest",
            Setting::DenyDest => "deny_dest",
            Setting::Auth => "auth",
            Setting::Proxy => "proxy",
            Setting::WsProtocol => "ws_protocol",
            Setting::WsText => "ws_text",
            Setting::Mode => "mode",
            Setting::Output => "output",
            Setting::HexDump => "hex_dump",
            Setting::Connections => "connections",
            Setting::Pipeline => "pipeline",
            Setting::Churn => "churn",
            Setting::Rate => "rate",
            Setting::ConnectRate => "connect_rate",
            Setting::Requests => "requests",
            Setting::Duration => "duration",
            Setting::ResetAfter => "reset_after",
            Setting::ResetAfterTime => "reset_after_time",
            Setting::TimeoutAfter => "timeout_after",
            Setting::Once => "once",
            Setting::Exec => "exec",
            Setting::ShExec => "sh_exec",
            Setting::Pty => "pty",
            Setting::MaxConns => "max_conns",
        }
    }
}

/// The front end's names for settings, once registered.
static NAMES: OnceLock<fn(Setting) -> &'static str> = OnceLock::new();

/// Registers how the front end spells settings (the CLI: as flags). Call
/// it once, before anything can fail; later calls are ignored.
pub fn name_settings(names: fn(Setting) -> &'static str) {
    let _ = NAMES.set(names);
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match NAMES.get() {
            Some(names) => names(*self),
            None => self.library_name(),
        };
        f.write_str(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_is_listed_once_with_its_own_name() {
        let names: std::collections::HashSet<_> =
            Setting::ALL.iter().map(|s| s.library_name()).collect();
        assert_eq!(names.len(), Setting::ALL.len());
    }

    #[test]
    fn unregistered_settings_use_the_library_names() {
        // The unit tests never register names: the library's own show.
        assert_eq!(Setting::PinSha256.to_string(), "pin_sha256");
        assert_eq!(
            format!("pin it with {}", Setting::PinSha256),
            "pin it with pin_sha256"
        );
    }

    /// The invariant this module exists for, checked on the sources: no
    /// library code outside the CLI spells a flag (`--name`) itself; test
    /// modules and comments may.
    #[test]
    fn the_library_spells_no_flag() {
        fn visit(dir: &std::path::Path, found: &mut Vec<String>) {
            let mut entries: Vec<_> = std::fs::read_dir(dir)
                .expect("read src")
                .map(|e| e.expect("entry").path())
                .collect();
            entries.sort();
            for path in entries {
                if path.ends_with("cli") || path.ends_with("main.rs") {
                    continue;
                }
                if path.is_dir() {
                    visit(&path, found);
                    continue;
                }
                let text = std::fs::read_to_string(&path).expect("read source");
                for (n, line) in text.lines().enumerate() {
                    let code = line.trim_start();
                    if code == "#[cfg(test)]" {
                        break;
                    }
                    if code.starts_with("//") {
                        continue;
                    }
                    let spelled = code
                        .as_bytes()
                        .windows(3)
                        .any(|w| w[0] == b'-' && w[1] == b'-' && w[2].is_ascii_lowercase());
                    if spelled {
                        found.push(format!("{}:{}: {code}", path.display(), n + 1));
                    }
                }
            }
        }
        let mut found = Vec::new();
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        visit(&src, &mut found);
        assert!(
            found.is_empty(),
            "format a Setting instead of spelling a flag:\n{}",
            found.join("\n")
        );
    }
}
