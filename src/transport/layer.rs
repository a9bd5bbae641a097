//! The layers of a transport, prepared once and run per connection: the
//! client side after dialing, the server side after accepting. Each
//! [`Layer`] of the scheme table maps to its module here (TLS: `tls`), and
//! a layer takes a [`Stream`] and gives one back, so it goes over any base
//! and any layer below it.

use std::fmt;
use std::sync::Arc;

use super::{ConnectOptions, ListenOptions, Stream, WsOptions, tls, ws};
use crate::endpoint::{Endpoint, Layer};
use crate::error::Result;
use crate::proxy::ProxyChain;
use crate::tls::{ClientTls, ServerTls};

/// A layer's client side, ready to run over a connected stream.
#[derive(Debug, Clone)]
pub(super) enum ClientLayer {
    /// The TLS client handshake, with its trust store and certificate.
    Tls(ClientTls),
    /// The proxies' handshakes (`--proxy`), run before the endpoint's own
    /// layers: the stream they give reaches the endpoint.
    Proxy(ProxyChain),
    /// The WebSocket upgrade request, with its options.
    WebSocket(WsOptions),
}

impl ClientLayer {
    /// Prepares `layer` for connecting to `endpoint` with `opts`: what every
    /// connection shares (a TLS trust store, say) is loaded here, once.
    pub(super) fn prepare(
        layer: Layer,
        endpoint: &Endpoint,
        opts: &ConnectOptions,
    ) -> Result<ClientLayer> {
        match layer {
            Layer::Tls => Ok(ClientLayer::Tls(ClientTls::new(&opts.tls)?)),
            Layer::WebSocket => {
                ws::check_client(endpoint, &opts.ws)?;
                Ok(ClientLayer::WebSocket(opts.ws.clone()))
            }
        }
    }

    /// Runs the layer's client side over `stream`, connected to `endpoint`.
    pub(super) async fn wrap(&self, stream: Stream, endpoint: &Endpoint) -> Result<Stream> {
        match self {
            ClientLayer::Tls(config) => tls::client(stream, endpoint, config).await,
            ClientLayer::Proxy(chain) => match endpoint.host_port() {
                Some(target) => chain.run(stream, target).await,
                None => Err(super::not_a_stream(endpoint, "connect through a proxy to")),
            },
            ClientLayer::WebSocket(opts) => ws::client(stream, endpoint, opts).await,
        }
    }
}

/// A layer's server side, ready to run over accepted streams.
#[derive(Debug)]
pub(super) enum ServerLayer {
    /// The TLS server handshake, with its certificate.
    Tls(ServerTls),
    /// The WebSocket upgrade answer, with its options.
    WebSocket(WsOptions),
}

impl ServerLayer {
    /// Prepares `layer` for listening on `endpoint` with `opts` (a TLS
    /// certificate is loaded or generated here, before binding).
    pub(super) fn prepare(
        layer: Layer,
        endpoint: &Endpoint,
        opts: &ListenOptions,
    ) -> Result<ServerLayer> {
        match layer {
            Layer::Tls => Ok(ServerLayer::Tls(ServerTls::new(&opts.tls, endpoint)?)),
            Layer::WebSocket => Ok(ServerLayer::WebSocket(opts.ws.clone())),
        }
    }

    /// The TLS configuration, for a TLS layer.
    pub(super) fn tls(&self) -> Option<&ServerTls> {
        match self {
            ServerLayer::Tls(tls) => Some(tls),
            ServerLayer::WebSocket(_) => None,
        }
    }

    /// Runs the layer's server side over `stream`, accepted from `peer`.
    pub(super) async fn wrap(
        &self,
        stream: Stream,
        peer: &(dyn fmt::Display + Sync),
    ) -> Result<Stream> {
        match self {
            ServerLayer::Tls(config) => tls::server(stream, config, peer).await,
            ServerLayer::WebSocket(opts) => ws::server(stream, opts, peer).await,
        }
    }
}

/// A listener's layers, shared by its connections' tasks.
pub(super) type ServerLayers = Arc<[ServerLayer]>;
