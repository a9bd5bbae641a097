//! The TLS flags of `serve` and `connect`, and their resolution into
//! [`TlsServerOptions`] and [`TlsClientOptions`].

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use netcrab::endpoint::Endpoint;
use netcrab::error::{Error, Result};
use netcrab::tls::{
    DEFAULT_HANDSHAKE_TIMEOUT, Fingerprint, Identity, ServerVerification, TlsClientOptions,
    TlsServerOptions, parse_alpn,
};

use super::common::duration;

/// An error for a TLS flag given with an address that is not TLS.
fn needs_tls(flag: &str, endpoint: &Endpoint) -> Error {
    Error::usage(format!(
        "{flag} needs a tls:// address (or tls+unix://, quic://, or --tls), not {endpoint}"
    ))
}

fn identity(cert: &Option<PathBuf>, key: &Option<PathBuf>) -> Option<Identity> {
    match (cert, key) {
        (Some(cert), Some(key)) => Some(Identity {
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ => None, // clap requires both or neither
    }
}

/// `serve`'s TLS flags.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "TLS")]
pub struct TlsServeArgs {
    /// Speak TLS: an address without a scheme means tls://
    #[arg(long)]
    pub tls: bool,
    /// Certificate chain (PEM, leaf first); without it a self-signed certificate is generated
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Private key of --cert (PEM)
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Require client certificates signed by a CA in FILE (PEM), or identical to one in it: mutual TLS
    #[arg(long, value_name = "FILE")]
    pub client_ca: Option<PathBuf>,
    /// Require a client certificate with this SHA-256 fingerprint (repeatable); with --client-ca it must pass that too, without it any signer is fine
    #[arg(long, value_name = "FINGERPRINT")]
    pub client_pin_sha256: Vec<String>,
    /// Require a client certificate carrying NAME in its subjectAltName (or CN when it has none); repeatable, any one matches; needs --client-ca or --client-pin-sha256
    #[arg(long, value_name = "NAME")]
    pub client_name: Vec<String>,
    /// ALPN protocol(s) to accept, in order of preference (repeatable or comma-separated) [quic:// default: netcrab]
    #[arg(long, value_name = "PROTO")]
    pub alpn: Vec<String>,
    /// Give up on a client that has not completed the TLS handshake in this long [default: 10s]
    #[arg(long, value_name = "DURATION", value_parser = duration())]
    pub handshake_timeout: Option<Duration>,
}

impl TlsServeArgs {
    /// The TLS options for listening on `endpoint`; an error if TLS flags
    /// are given for an address that is not TLS.
    pub fn resolve(&self, endpoint: &Endpoint) -> Result<TlsServerOptions> {
        if !endpoint.scheme().is_tls() {
            let given = [
                ("--cert", self.cert.is_some()),
                ("--client-ca", self.client_ca.is_some()),
                ("--client-pin-sha256", !self.client_pin_sha256.is_empty()),
                ("--client-name", !self.client_name.is_empty()),
                ("--alpn", !self.alpn.is_empty()),
                ("--handshake-timeout", self.handshake_timeout.is_some()),
            ];
            if let Some((flag, _)) = given.iter().find(|(_, given)| *given) {
                return Err(needs_tls(flag, endpoint));
            }
        }
        let mut opts = TlsServerOptions::default();
        opts.identity = identity(&self.cert, &self.key);
        opts.client_ca = self.client_ca.clone();
        opts.client_pins = self
            .client_pin_sha256
            .iter()
            .map(|p| p.parse::<Fingerprint>())
            .collect::<Result<Vec<_>>>()?;
        opts.client_names = self.client_name.clone();
        opts.alpn = parse_alpn(&self.alpn)?;
        opts.handshake_timeout = self.handshake_timeout.unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT);
        Ok(opts)
    }
}

/// `connect`'s TLS flags.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "TLS")]
pub struct TlsConnectArgs {
    /// Speak TLS: an address without a scheme means tls://
    #[arg(long)]
    pub tls: bool,
    /// Also trust the CA certificate(s) in FILE (PEM), besides the system's trust store, and a server certificate identical to one in FILE (its name and dates still checked; repeatable)
    #[arg(long, value_name = "FILE")]
    pub ca: Vec<PathBuf>,
    /// The name to ask for (SNI) and to verify the certificate against, instead of the address's host (localhost for a Unix socket)
    #[arg(long, value_name = "NAME")]
    pub servername: Option<String>,
    /// Accept exactly the server certificate with this SHA-256 fingerprint (hex, colons optional), e.g. a self-signed one
    #[arg(long, value_name = "FINGERPRINT", conflicts_with = "ca")]
    pub pin_sha256: Vec<String>,
    /// Do not verify the server's certificate at all (warns every time; prefer --pin-sha256)
    #[arg(long, conflicts_with_all = ["ca", "pin_sha256"])]
    pub insecure: bool,
    /// Present this client certificate chain (PEM), for servers that require one
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Private key of --cert (PEM)
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// ALPN protocol(s) to offer, in order of preference (repeatable or comma-separated) [quic:// default: netcrab]
    #[arg(long, value_name = "PROTO")]
    pub alpn: Vec<String>,
    /// Give up when the TLS handshake takes longer than this [default: 10s]
    #[arg(long, value_name = "DURATION", value_parser = duration())]
    pub handshake_timeout: Option<Duration>,
}

impl TlsConnectArgs {
    /// The TLS options for connecting to `endpoint`; an error if TLS
    /// flags are given for an address that is not TLS.
    pub fn resolve(&self, endpoint: &Endpoint) -> Result<TlsClientOptions> {
        if !endpoint.scheme().is_tls() {
            let given = [
                ("--ca", !self.ca.is_empty()),
                ("--servername", self.servername.is_some()),
                ("--pin-sha256", !self.pin_sha256.is_empty()),
                ("--insecure", self.insecure),
                ("--cert", self.cert.is_some()),
                ("--alpn", !self.alpn.is_empty()),
                ("--handshake-timeout", self.handshake_timeout.is_some()),
            ];
            if let Some((flag, _)) = given.iter().find(|(_, given)| *given) {
                return Err(needs_tls(flag, endpoint));
            }
        }
        let verification = if self.insecure {
            ServerVerification::Insecure
        } else if !self.pin_sha256.is_empty() {
            let pins = self
                .pin_sha256
                .iter()
                .map(|p| p.parse::<Fingerprint>())
                .collect::<Result<Vec<_>>>()?;
            ServerVerification::Pin(pins)
        } else {
            ServerVerification::Roots {
                ca: self.ca.clone(),
            }
        };
        let mut opts = TlsClientOptions::default();
        opts.verification = verification;
        opts.servername = self.servername.clone();
        opts.identity = identity(&self.cert, &self.key);
        opts.alpn = parse_alpn(&self.alpn)?;
        opts.handshake_timeout = self.handshake_timeout.unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT);
        Ok(opts)
    }
}
