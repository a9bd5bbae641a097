//! The proxy layer of the connect chain: over a stream connected to the
//! first proxy, ask each proxy in turn for a tunnel to the next one, and
//! the last for the target. An `https://` proxy gets a TLS handshake of
//! its own first (inside the tunnel of the proxy before it). Each hop runs
//! under the connect timeout, and every reply read is bounded in size.

use std::net::SocketAddr;
use std::time::Duration;

use super::socks::{self, Target};
use super::{ProxyKind, ProxyOptions, ProxyUrl, http_connect};
use crate::endpoint::{Addr, Endpoint, Host, HostPort, Scheme};
use crate::error::{Error, ErrorKind, Result, fmt_duration};
use crate::tls::ClientTls;
use crate::transport::{Stream, tls_client};

/// A chain of proxies, ready to run over connections (the TLS client of
/// `https://` proxies prepared once).
#[derive(Debug, Clone)]
pub(crate) struct ProxyChain {
    proxies: Vec<ProxyUrl>,
    tls: Option<ClientTls>,
    timeout: Duration,
}

impl ProxyChain {
    /// Prepares `options`' chain; `timeout` bounds each proxy's handshake.
    pub(crate) fn new(options: &ProxyOptions, timeout: Duration) -> Result<ProxyChain> {
        let tls = if options.chain.iter().any(|p| p.kind == ProxyKind::Https) {
            Some(ClientTls::new(&options.tls)?)
        } else {
            None
        };
        Ok(ProxyChain {
            proxies: options.chain.clone(),
            tls,
            timeout,
        })
    }

    /// The address to dial: the first proxy's.
    pub(crate) fn first(&self) -> Option<&ProxyUrl> {
        self.proxies.first()
    }

    /// Runs every proxy's handshake over `stream` (connected to the first
    /// proxy), ending with a tunnel to `target`.
    pub(crate) async fn run(&self, mut stream: Stream, target: &HostPort) -> Result<Stream> {
        for (i, proxy) in self.proxies.iter().enumerate() {
            let next = self.proxies.get(i + 1).map_or(target, |p| &p.addr);
            let context = format!("connect to {next} through proxy {proxy}");
            let hop = self.hop(stream, proxy, next, &context);
            stream = match tokio::time::timeout(self.timeout, hop).await {
                Ok(result) => result.map_err(|e| e.with_context(context.clone()))?,
                Err(_) => {
                    return Err(Error::new(ErrorKind::Timeout, context).with_detail(format!(
                        "the proxy did not answer within {}",
                        fmt_duration(self.timeout)
                    )));
                }
            };
        }
        Ok(stream)
    }

    /// One proxy's handshake: TLS first for `https://`, then the protocol.
    async fn hop(
        &self,
        mut stream: Stream,
        proxy: &ProxyUrl,
        next: &HostPort,
        context: &str,
    ) -> Result<Stream> {
        let creds = proxy.credentials.as_ref();
        match proxy.kind {
            ProxyKind::Socks5 | ProxyKind::Socks5h => {
                let target = target(next, proxy.kind == ProxyKind::Socks5h, false).await?;
                socks::socks5_handshake(&mut stream, &target, creds).await?;
            }
            ProxyKind::Socks4 | ProxyKind::Socks4a => {
                let target = target(next, proxy.kind == ProxyKind::Socks4a, true).await?;
                socks::socks4_handshake(&mut stream, &target, creds).await?;
            }
            ProxyKind::Http | ProxyKind::Https => {
                if proxy.kind == ProxyKind::Https {
                    let tls = self.tls.as_ref().ok_or_else(|| {
                        Error::new(ErrorKind::Tls, context).with_detail("no tls configuration")
                    })?;
                    let endpoint = Endpoint::new(Scheme::Tls, Addr::HostPort(proxy.addr.clone()))?;
                    stream = tls_client(stream, &endpoint, tls).await?;
                }
                let authority = authority(next);
                let request = http_connect::request(&authority, creds);
                tokio::io::AsyncWriteExt::write_all(&mut stream, &request)
                    .await
                    .map_err(|e| Error::io(context, e))?;
                let head = stream
                    .read_head(http_connect::MAX_HEAD, http_connect::response_end)
                    .await
                    .map_err(|e| head_error(context, e))?;
                http_connect::check_response(&head, creds.is_some())?;
            }
        }
        Ok(stream)
    }
}

/// The target as a proxy is told it: the name itself when the proxy
/// resolves names (`remote`), else an address resolved here (IPv4 only
/// for SOCKS4).
async fn target(hp: &HostPort, remote: bool, v4_only: bool) -> Result<Target> {
    if let (true, Host::Name(name)) = (remote, &hp.host) {
        return Ok(Target::Name(name.clone(), hp.port));
    }
    let addrs = hp.resolve(false).await?;
    let pick = |a: &&SocketAddr| !v4_only || a.is_ipv4();
    match addrs.iter().find(pick) {
        Some(addr) => Ok(Target::Addr(*addr)),
        None => Err(Error::new(ErrorKind::Resolve, format!("resolve {hp}"))
            .with_detail("no ipv4 address for socks4 (use socks4a or socks5h)")),
    }
}

/// `host:port` for CONNECT: an unspecified host is the local host.
fn authority(hp: &HostPort) -> String {
    match hp.host {
        Host::Unspecified => format!("127.0.0.1:{}", hp.port),
        _ => hp.to_string(),
    }
}

/// The error for a response head that could not be read.
fn head_error(context: &str, err: std::io::Error) -> Error {
    match err.kind() {
        std::io::ErrorKind::UnexpectedEof => Error::new(ErrorKind::Protocol, context)
            .with_detail("the proxy closed the connection before answering CONNECT"),
        std::io::ErrorKind::InvalidData => {
            Error::new(ErrorKind::Protocol, context).with_detail(format!(
                "the proxy's answer to CONNECT is longer than {} KiB",
                http_connect::MAX_HEAD / 1024
            ))
        }
        _ => Error::io(context, err),
    }
}
