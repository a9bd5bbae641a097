//! How the command line spells the library's settings: as its flags. The
//! library's messages refer to a [`Setting`]; `main` registers
//! [`flag`] before anything runs, so those messages name the flag to use.

use netcrab::settings::Setting;

/// The flag for `setting`.
pub fn flag(setting: Setting) -> &'static str {
    match setting {
        Setting::Cert => "--cert",
        Setting::Key => "--key",
        Setting::Ca => "--ca",
        Setting::PinSha256 => "--pin-sha256",
        Setting::ClientCa => "--client-ca",
        Setting::ClientPinSha256 => "--client-pin-sha256",
        Setting::ClientName => "--client-name",
        Setting::ServerName => "--servername",
        Setting::Alpn => "--alpn",
        Setting::HandshakeTimeout => "--handshake-timeout",
        Setting::Insecure => "--insecure",
        Setting::NoSplice => "--no-splice",
        Setting::RecvOnly => "--recv-only",
        Setting::SendOnly => "--send-only",
        Setting::Wait => "--wait",
        Setting::Send => "--send",
        Setting::Expect => "--expect",
        Setting::Raw => "--raw",
        Setting::Allow => "--allow",
        Setting::Deny => "--deny",
        Setting::AllowFile => "--allow-file",
        Setting::DenyFile => "--deny-file",
        Setting::AllowDest => "--allow-dest",
        Setting::DenyDest => "--deny-dest",
        Setting::Auth => "--auth",
        Setting::Proxy => "--proxy",
        Setting::WsProtocol => "--ws-protocol",
        Setting::WsText => "--ws-text",
        Setting::Mode => "--mode",
        Setting::Output => "--output",
        Setting::HexDump => "--hex-dump",
        Setting::Connections => "--connections",
        Setting::Pipeline => "--pipeline",
        Setting::Churn => "--churn",
        Setting::Rate => "--rate",
        Setting::ConnectRate => "--connect-rate",
        Setting::Requests => "--requests",
        Setting::Duration => "--duration",
        Setting::ResetAfter => "--reset-after",
        Setting::ResetAfterTime => "--reset-after-time",
        Setting::TimeoutAfter => "--timeout-after",
        Setting::Once => "--once",
        Setting::Exec => "--exec",
        Setting::ShExec => "--sh-exec",
        Setting::Pty => "--pty",
        Setting::MaxConns => "--max-conns",
        // A setting added to the library before the CLI names it.
        other => other.library_name(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_is_spelled_as_a_flag() {
        for setting in Setting::ALL {
            let flag = flag(*setting);
            assert!(flag.starts_with("--"), "{setting:?} is spelled {flag}");
        }
    }
}
