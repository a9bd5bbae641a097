//! [`Connector`]: the connect chain for one endpoint. Dial the base (TCP
//! with Happy Eyeballs over the resolved addresses, or a Unix socket), then
//! run each layer's client side over it: the proxies' handshakes when
//! there are proxies (then the base dialed is the first proxy), then the
//! endpoint's own layers (TLS). The retry policy goes around the whole
//! chain. QUIC is a base with its TLS built in: one connection and one
//! stream on it.

use super::layer::ClientLayer;
use super::quic::QuicClient;
use super::{ConnectOptions, Stream, not_a_stream, tcp, unix};
use crate::endpoint::{Addr, Base, Endpoint, HostPort};
use crate::error::{Error, Result};
use crate::proxy::ProxyChain;
use crate::settings::Setting;

/// Opens connections to one endpoint, again and again (for retries):
/// what every attempt shares, such as the TLS trust store and client
/// certificate, is loaded once, in [`Connector::new`].
#[derive(Debug, Clone)]
pub struct Connector {
    endpoint: Endpoint,
    options: ConnectOptions,
    layers: Vec<ClientLayer>,
    /// The first proxy, dialed instead of the endpoint, and how it is
    /// named in errors.
    first_proxy: Option<(HostPort, String)>,
    /// The QUIC client configuration, for a `quic://` endpoint.
    quic: Option<QuicClient>,
}

impl Connector {
    /// Prepares to connect to `endpoint`. Fails on a bad TLS option (an
    /// unreadable `--ca` file, say) before any connection is attempted.
    /// The address family and source address are checked here too: one
    /// that conflicts with the other, or with the endpoint's own address
    /// (`-6` and an IPv4 literal), and a source given for a Unix socket,
    /// are usage errors.
    pub fn new(endpoint: &Endpoint, options: &ConnectOptions) -> Result<Connector> {
        let family = options.effective_family()?;
        match endpoint.addr() {
            Addr::HostPort(hp) => family.check_host(&hp.host)?,
            Addr::Unix(_) if options.source.is_set() => {
                return Err(Error::usage(format!(
                    "{endpoint}: a source address or port (-s, -p) applies only to tcp and tls"
                )));
            }
            _ => {}
        }
        let mut layers = Vec::new();
        let mut first_proxy = None;
        let direct = options.proxy.from_env && endpoint.scheme().base() != Base::Tcp;
        if !options.proxy.is_empty() && !direct {
            if endpoint.scheme().base() != Base::Tcp {
                return Err(Error::usage(format!(
                    "{} applies to tcp and tls addresses, not {}",
                    Setting::Proxy,
                    endpoint.scheme()
                )));
            }
            let chain = ProxyChain::new(&options.proxy, options.connect_timeout)?;
            first_proxy = chain
                .first()
                .map(|p| (p.addr.clone(), format!("connect to proxy {p}")));
            layers.push(ClientLayer::Proxy(chain));
        }
        for layer in endpoint.scheme().spec().layers {
            layers.push(ClientLayer::prepare(*layer, endpoint, options)?);
        }
        let quic = match endpoint.scheme().base() {
            Base::Quic => Some(QuicClient::new(options)?),
            _ => None,
        };
        Ok(Connector {
            endpoint: endpoint.clone(),
            options: options.clone(),
            layers,
            first_proxy,
            quic,
        })
    }

    /// The endpoint connected to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Opens one connection as [`connect`](Self::connect) does, when the
    /// endpoint is plain TCP (no proxy, no layer); `None` for any other
    /// endpoint, which [`connect`](Self::connect) then opens. Its future
    /// is a fraction of `connect`'s (no QUIC, no layers), which a caller
    /// that moves it per connection (the relay) saves copying.
    pub(crate) fn connect_plain_tcp(
        &self,
    ) -> Option<impl Future<Output = Result<Stream>> + Send + '_> {
        let hp = match (self.endpoint.scheme().base(), self.endpoint.addr()) {
            (Base::Tcp, Addr::HostPort(hp)) if self.first_proxy.is_none() => hp,
            _ => return None,
        };
        if !self.layers.is_empty() {
            return None;
        }
        Some(async move { Ok(Stream::Tcp(tcp::connect_tcp(hp, &self.options).await?)) })
    }

    /// Opens one connection (no retry: see [`retry`](crate::retry::retry)).
    pub async fn connect(&self) -> Result<Stream> {
        let base = self.endpoint.scheme().base();
        let mut stream = match (base, self.endpoint.addr()) {
            (Base::Tcp, Addr::HostPort(_)) if self.first_proxy.is_some() => {
                let Some((proxy, context)) = &self.first_proxy else {
                    return Err(not_a_stream(&self.endpoint, "connect"));
                };
                // The proxy is named, not the address it resolved to.
                let tcp = tcp::connect_tcp(proxy, &self.options)
                    .await
                    .map_err(|e| e.replace_context(context))?;
                Stream::Tcp(tcp)
            }
            (Base::Tcp, Addr::HostPort(hp)) => {
                Stream::Tcp(tcp::connect_tcp(hp, &self.options).await?)
            }
            (Base::Unix, Addr::Unix(addr)) => {
                Stream::Unix(unix::connect(addr, &self.options).await?)
            }
            (Base::Quic, addr @ Addr::HostPort(hp)) => match &self.quic {
                Some(quic) => quic.connect(hp, addr, &self.options).await?,
                None => return Err(not_a_stream(&self.endpoint, "connect")),
            },
            _ => return Err(not_a_stream(&self.endpoint, "connect")),
        };
        for layer in &self.layers {
            stream = layer.wrap(stream, &self.endpoint).await?;
        }
        Ok(stream)
    }
}

/// Opens one connection to `endpoint` (no retry: see
/// [`retry`](crate::retry::retry); to connect repeatedly, prepare a
/// [`Connector`] once).
pub async fn connect(endpoint: &Endpoint, opts: &ConnectOptions) -> Result<Stream> {
    Connector::new(endpoint, opts)?.connect().await
}
