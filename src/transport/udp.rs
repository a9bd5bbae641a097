//! UDP sockets: a bound socket for `serve`, a connected one for `connect`.
//!
//! UDP is not a byte stream, so it has no place in [`Stream`](super::Stream):
//! the datagram server lives in [`serve::udp`](crate::serve::udp) and the
//! datagram client in [`connect`](crate::connect), both on these sockets.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::net::UdpSocket;

use super::ConnectOptions;
use crate::endpoint::{Family, HostPort};
use crate::error::{Error, ErrorKind, Result, fmt_duration};

/// The largest UDP payload over IPv4 (65,535 minus the IP and UDP headers).
pub const MAX_DATAGRAM: usize = 65_507;
/// The receive buffer: the largest UDP payload at all (65,535 minus the UDP
/// header is 65,527 over IPv6), rounded up, so no datagram is truncated.
pub const RECV_BUF: usize = 65_535;

/// Binds a UDP socket on the first address `hp` resolves to in `family`.
pub async fn bind_udp(hp: &HostPort, family: Family) -> Result<UdpSocket> {
    let mut last_err = None;
    for addr in hp.resolve_in(true, family).await? {
        match UdpSocket::bind(addr).await {
            Ok(socket) => return Ok(socket),
            Err(e) => last_err = Some(Error::io(format!("listen on udp://{addr}"), e)),
        }
    }
    Err(last_err.unwrap_or_else(|| Error::new(ErrorKind::Resolve, format!("resolve {hp}"))))
}

/// Opens a UDP socket connected to `hp`: it sends only there, receives
/// only from there, and learns of an ICMP port-unreachable as "connection
/// refused". Connecting a UDP socket sends nothing, so it cannot tell which
/// of several addresses answers: the first one the resolver gives is used
/// (127.0.0.1 for `localhost`).
pub async fn connect_udp(hp: &HostPort, opts: &ConnectOptions) -> Result<UdpSocket> {
    let context = format!("connect to udp://{hp}");
    let family = opts.effective_family()?;
    let work = async {
        let addrs = hp.resolve_in(false, family).await?;
        let addr = *addrs
            .first()
            .ok_or_else(|| Error::new(ErrorKind::Resolve, context.clone()))?;
        let local = if opts.source.is_set() {
            opts.source.local_for(addr)
        } else {
            unspecified_for(addr)
        };
        let socket = UdpSocket::bind(local).await.map_err(|e| {
            let err = Error::io(context.clone(), e);
            let detail = if opts.source.is_set() {
                format!("source address {local}: {}", err.detail())
            } else {
                err.detail().to_owned()
            };
            err.with_detail(detail)
        })?;
        socket
            .connect(addr)
            .await
            .map_err(|e| Error::io(context.clone(), e))?;
        Ok(socket)
    };
    match tokio::time::timeout(opts.connect_timeout, work).await {
        Ok(result) => result,
        Err(_) => Err(Error::new(ErrorKind::Timeout, context).with_detail(format!(
            "timed out after {}",
            fmt_duration(opts.connect_timeout)
        ))),
    }
}

/// The wildcard address of `addr`'s family, port 0.
fn unspecified_for(addr: SocketAddr) -> SocketAddr {
    let ip = if addr.is_ipv4() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    };
    SocketAddr::new(ip, 0)
}
