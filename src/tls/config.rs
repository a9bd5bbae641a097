//! Building rustls configurations from [`TlsServerOptions`] and
//! [`TlsClientOptions`], once at start-up, and running handshakes with
//! them under a timeout.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::errors::{self, Side};
use super::pem;
use super::verify::{Accept, CheckedClient, LeafVerifier, TrustedLeafClient, TrustedLeafServer};
use super::{
    Fingerprint, Identity, SelfSigned, ServerVerification, TlsClientOptions, TlsServerOptions,
    self_signed_names, x509,
};
use crate::endpoint::{Addr, Endpoint, Host};
use crate::error::{Error, ErrorKind, Result, fmt_duration};
use crate::settings::Setting;

/// The crypto provider every configuration is built with: rustls'
/// `aws-lc-rs` provider with the `aws-lc-rs` feature, else its `ring`
/// provider (Cargo.toml says why the default is what it is).
fn provider() -> Arc<CryptoProvider> {
    #[cfg(feature = "aws-lc-rs")]
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    #[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
    let provider = rustls::crypto::ring::default_provider();
    Arc::new(provider)
}

fn config_error(what: &str, err: rustls::Error) -> Error {
    Error::usage(format!("{what}: {}", errors::describe(&err, Side::Server)))
}

/// An error in our own certificate or key (`--cert`/`--key`): about the
/// files, not about the peer.
fn identity_error(id: &Identity, err: rustls::Error) -> Error {
    Error::usage(format!(
        "{} {} / {} {}: {}",
        Setting::Cert,
        id.cert.display(),
        Setting::Key,
        id.key.display(),
        errors::describe_own(&err)
    ))
}

/// Reads `--cert`'s chain, refusing at once a certificate that is not
/// X.509 v3 (rustls accepts no other), with how to re-issue it; otherwise
/// the failure would show only at the handshake, blamed on the peer.
fn identity_chain(id: &Identity) -> Result<Vec<CertificateDer<'static>>> {
    let chain = pem::certs(&id.cert, "certificate")?;
    for (i, cert) in chain.iter().enumerate() {
        if let Some(version) = x509::version(cert)
            && version != 2
        {
            return Err(Error::usage(format!(
                "certificate {}: certificate {} is x509 v{}, and rustls accepts only x509 v3 \
                 certificates; re-issue it with extensions, e.g. `openssl x509 -req ... \
                 -extfile <(printf 'subjectAltName=DNS:localhost')`",
                id.cert.display(),
                i + 1,
                u16::from(version) + 1
            )));
        }
    }
    Ok(chain)
}

/// A TLS server's ready configuration: certificate, client verification,
/// ALPN and handshake timeout. Cheap to clone.
#[derive(Clone)]
pub struct ServerTls {
    acceptor: TlsAcceptor,
    handshake_timeout: Duration,
    fingerprint: Fingerprint,
    self_signed: Option<Vec<String>>,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("fingerprint", &self.fingerprint.to_string())
            .field("self_signed", &self.self_signed)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Loads the certificate and key (or generates a self-signed
    /// certificate for `listen`: for its host, or for `localhost` when it
    /// is a Unix socket) and the client CAs.
    pub fn new(opts: &TlsServerOptions, listen: &Endpoint) -> Result<ServerTls> {
        let provider = provider();
        let (chain, key, self_signed) = match &opts.identity {
            Some(id) => (identity_chain(id)?, pem::private_key(&id.key)?, None),
            None => {
                let names = match listen.addr() {
                    Addr::HostPort(hp) => self_signed_names(hp),
                    _ => vec![LOCAL_NAME.to_owned()],
                };
                let generated = SelfSigned::generate(names)?;
                (vec![generated.cert], generated.key, Some(generated.names))
            }
        };
        let fingerprint = Fingerprint::of_der(&chain[0]);
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| config_error("tls versions", e))?;
        let ca: Option<Arc<dyn ClientCertVerifier>> = match &opts.client_ca {
            None => None,
            Some(path) => {
                let mut roots = RootCertStore::empty();
                let trusted = pem::certs(path, "client ca file")?;
                for (i, cert) in trusted.iter().cloned().enumerate() {
                    roots.add(cert).map_err(|e| {
                        Error::usage(format!(
                            "client ca file {}: certificate {} is not a usable ca: {e}",
                            path.display(),
                            i + 1
                        ))
                    })?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .build()
                        .map_err(|e| {
                            Error::usage(format!("client ca file {}: {e}", path.display()))
                        })?;
                Some(Arc::new(TrustedLeafClient::new(verifier, trusted)))
            }
        };
        let builder = if opts.client_pins.is_empty() && opts.client_names.is_empty() {
            match ca {
                None => builder.with_no_client_auth(),
                Some(ca) => builder.with_client_cert_verifier(ca),
            }
        } else {
            if ca.is_none() && opts.client_pins.is_empty() {
                return Err(Error::usage(format!(
                    "{} needs {} or {}: anyone can make a certificate with any name",
                    Setting::ClientName,
                    Setting::ClientCa,
                    Setting::ClientPinSha256
                )));
            }
            let names = opts
                .client_names
                .iter()
                .map(|name| {
                    ServerName::try_from(name.clone()).map_err(|_| {
                        Error::usage(format!(
                            "invalid {} {name:?}: expected a dns name or an ip address",
                            Setting::ClientName
                        ))
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            builder.with_client_cert_verifier(Arc::new(CheckedClient::new(
                ca,
                opts.client_pins.clone(),
                names,
                provider,
            )))
        };
        let mut config =
            builder
                .with_single_cert(chain, key)
                .map_err(|e| match &opts.identity {
                    Some(id) => identity_error(id, e),
                    None => config_error("self-signed certificate", e),
                })?;
        config.alpn_protocols = opts.alpn.clone();
        Ok(ServerTls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            handshake_timeout: opts.handshake_timeout,
            fingerprint,
            self_signed,
        })
    }

    /// The SHA-256 fingerprint of the server's (leaf) certificate, for
    /// clients to pin.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// The rustls configuration, for QUIC (which runs TLS itself).
    pub(crate) fn rustls_config(&self) -> &Arc<rustls::ServerConfig> {
        self.acceptor.config()
    }

    /// How long a client may take to complete the handshake.
    pub(crate) fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// The names in the certificate when it was generated at start-up;
    /// `None` for a certificate from a file.
    pub fn self_signed_names(&self) -> Option<&[String]> {
        self.self_signed.as_deref()
    }

    /// Runs the server side of the handshake on an accepted connection (a
    /// TCP connection, a Unix one, any byte stream), under the handshake
    /// timeout. `peer` names the client in errors.
    pub(crate) async fn accept<S>(
        &self,
        stream: S,
        peer: &(dyn fmt::Display + Sync),
    ) -> Result<tokio_rustls::server::TlsStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let context = format!("tls handshake with {peer} failed");
        let handshake = self.acceptor.accept(stream).into_fallible();
        match tokio::time::timeout(self.handshake_timeout, handshake).await {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err((e, stream))) => {
                let err = errors::from_io(context, e, Side::Server);
                linger(stream).await;
                Err(err)
            }
            Err(_) => Err(Error::new(ErrorKind::Timeout, context).with_detail(format!(
                "timed out after {} ({})",
                fmt_duration(self.handshake_timeout),
                Setting::HandshakeTimeout
            ))),
        }
    }
}

/// The server name of a Unix socket or of an address without a host.
const LOCAL_NAME: &str = "localhost";

/// How long a connection whose handshake failed is drained before it is
/// closed.
const LINGER: Duration = Duration::from_secs(1);

/// After a failed handshake (and the alert rustls sent about it): closes
/// our side, then reads and drops what the client still sends for a
/// moment. Closing with unread data would reset the connection, and the
/// client would see `connection reset` instead of our alert (which says,
/// for example, that a client certificate is required).
async fn linger<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = stream.shutdown().await;
    let _ = tokio::time::timeout(LINGER, async {
        let mut sink = [0u8; 4096];
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// A TLS client's ready configuration: trust, client certificate, ALPN,
/// server name and handshake timeout. Cheap to clone.
#[derive(Clone)]
pub struct ClientTls {
    connector: TlsConnector,
    servername: Option<ServerName<'static>>,
    handshake_timeout: Duration,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("servername", &self.servername)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl ClientTls {
    /// Loads the trust anchors (system store and `--ca` files) or sets up
    /// pinning, and the client certificate. Warns on stderr when
    /// verification is off.
    pub fn new(opts: &TlsClientOptions) -> Result<ClientTls> {
        let provider = provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| config_error("tls versions", e))?;
        let builder = match &opts.verification {
            ServerVerification::Roots { ca } => {
                let (roots, trusted) = trust_anchors(ca)?;
                let webpki =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .build()
                        .map_err(|e| {
                            Error::usage(format!(
                                "no trusted certificates ({e}): the system trust store is empty; \
                         give {} FILE or {} FINGERPRINT",
                                Setting::Ca,
                                Setting::PinSha256
                            ))
                        })?;
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(TrustedLeafServer::new(
                        webpki, trusted,
                    )))
            }
            ServerVerification::Pin(pins) => {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(LeafVerifier::new(
                        Accept::Pinned(pins.clone()),
                        provider,
                    )))
            }
            ServerVerification::Insecure => {
                tracing::warn!(
                    "{}: the server's certificate is not verified; anyone on the path \
                     can impersonate the server (pin it with {} instead)",
                    Setting::Insecure,
                    Setting::PinSha256
                );
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(LeafVerifier::new(
                        Accept::Any,
                        provider,
                    )))
            }
        };
        let mut config = match &opts.identity {
            None => builder.with_no_client_auth(),
            Some(id) => builder
                .with_client_auth_cert(identity_chain(id)?, pem::private_key(&id.key)?)
                .map_err(|e| identity_error(id, e))?,
        };
        config.alpn_protocols = opts.alpn.clone();
        let servername = match &opts.servername {
            None => None,
            Some(name) => Some(ServerName::try_from(name.clone()).map_err(|_| {
                Error::usage(format!(
                    "invalid {} {name:?}: expected a dns name or an ip address",
                    Setting::ServerName
                ))
            })?),
        };
        Ok(ClientTls {
            connector: TlsConnector::from(Arc::new(config)),
            servername,
            handshake_timeout: opts.handshake_timeout,
        })
    }

    /// The rustls configuration, for QUIC (which runs TLS itself).
    pub(crate) fn rustls_config(&self) -> &Arc<rustls::ClientConfig> {
        self.connector.config()
    }

    /// The name to send as SNI and verify: `--servername`, else the host
    /// connected to; `localhost` for an address without a host, and for a
    /// Unix socket, which is on this host by definition (a server without
    /// `--cert` puts that name in its certificate).
    pub(crate) fn server_name(&self, addr: &Addr) -> Result<ServerName<'static>> {
        if let Some(name) = &self.servername {
            return Ok(name.clone());
        }
        let local = || {
            ServerName::try_from(LOCAL_NAME)
                .map(|n| n.to_owned())
                .map_err(|_| Error::usage("localhost is not a server name"))
        };
        match addr {
            Addr::HostPort(hp) => match &hp.host {
                Host::Ip(ip) => Ok(ServerName::IpAddress((*ip).into())),
                Host::Name(name) => ServerName::try_from(name.clone()).map_err(|_| {
                    Error::usage(format!("{name:?} cannot be used as a tls server name"))
                }),
                Host::Unspecified => local(),
            },
            _ => local(),
        }
    }

    /// Runs the client side of the handshake on a connected stream (TCP,
    /// Unix, any byte stream) to `addr`, under the handshake timeout.
    /// `context` names the operation in errors.
    pub(crate) async fn connect<S>(
        &self,
        addr: &Addr,
        stream: S,
        context: &str,
    ) -> Result<tokio_rustls::client::TlsStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let name = self.server_name(addr)?;
        match tokio::time::timeout(self.handshake_timeout, self.connector.connect(name, stream))
            .await
        {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(e)) => Err(errors::from_io(context.to_owned(), e, Side::Client)),
            Err(_) => Err(Error::new(ErrorKind::Timeout, context).with_detail(format!(
                "tls handshake timed out after {} ({})",
                fmt_duration(self.handshake_timeout),
                Setting::HandshakeTimeout
            ))),
        }
    }
}

/// The system's trust store plus the certificates in `extra` files; and
/// those certificates themselves, which are also trusted as leaves.
fn trust_anchors(
    extra: &[std::path::PathBuf],
) -> Result<(RootCertStore, Vec<CertificateDer<'static>>)> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for err in &native.errors {
        tracing::debug!("system trust store: {err}");
    }
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!("system trust store: {added} certificates ({ignored} unusable)");
    let mut trusted = Vec::new();
    for path in extra {
        let certs: Vec<CertificateDer<'static>> = pem::certs(path, "ca file")?;
        for (i, cert) in certs.into_iter().enumerate() {
            roots.add(cert.clone()).map_err(|e| {
                Error::usage(format!(
                    "ca file {}: certificate {} is not a usable ca: {e}",
                    path.display(),
                    i + 1
                ))
            })?;
            trusted.push(cert);
        }
    }
    Ok((roots, trusted))
}
