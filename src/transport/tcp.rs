//! TCP: binding with a real backlog, connecting with a per-attempt timeout
//! over every resolved address, and socket options.

use std::io;
use std::net::SocketAddr;

use socket2::{SockRef, TcpKeepalive};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use super::{ConnectOptions, SocketOptions};
use crate::endpoint::HostPort;
use crate::error::{Error, ErrorKind, Result, fmt_duration};

/// The accept backlog: deep enough for bursts of connections (the kernel
/// caps it at `net.core.somaxconn`).
const BACKLOG: u32 = 4096;

/// Binds a TCP listener on the first address `hp` resolves to.
pub(super) async fn bind(hp: &HostPort) -> Result<TcpListener> {
    let addrs = hp.resolve(true).await?;
    let mut last_err = None;
    for addr in addrs {
        match bind_addr(addr) {
            Ok(l) => return Ok(l),
            Err(e) => last_err = Some(Error::io(format!("listen on {addr}"), e)),
        }
    }
    Err(last_err.unwrap_or_else(|| Error::new(ErrorKind::Resolve, format!("resolve {hp}"))))
}

fn bind_addr(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Connects to `hp`, trying each resolved address in turn, each attempt
/// bounded by the connect timeout. The error is the last address's.
pub async fn connect_tcp(hp: &HostPort, opts: &ConnectOptions) -> Result<TcpStream> {
    let context = format!("connect to {hp}");
    let work = async {
        let addrs = hp.resolve(false).await?;
        let mut last_err = None;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(stream) => return Ok(stream),
                Err(e) => {
                    tracing::trace!("connect to {addr}: {e}");
                    last_err = Some(Error::io(context.clone(), e));
                }
            }
        }
        Err(last_err.unwrap_or_else(|| Error::new(ErrorKind::Resolve, context.clone())))
    };
    let stream = match tokio::time::timeout(opts.connect_timeout, work).await {
        Ok(result) => result?,
        Err(_) => {
            return Err(Error::new(ErrorKind::Timeout, context).with_detail(format!(
                "timed out after {}",
                fmt_duration(opts.connect_timeout)
            )));
        }
    };
    set_options(&stream, &opts.socket).map_err(|e| Error::io("set socket options", e))?;
    Ok(stream)
}

/// Applies TCP_NODELAY and keepalive.
pub(super) fn set_options(stream: &TcpStream, opts: &SocketOptions) -> io::Result<()> {
    stream.set_nodelay(opts.nodelay)?;
    if let Some(idle) = opts.keepalive {
        let keepalive = TcpKeepalive::new().with_time(idle).with_interval(idle);
        SockRef::from(stream).set_tcp_keepalive(&keepalive)?;
    }
    Ok(())
}
