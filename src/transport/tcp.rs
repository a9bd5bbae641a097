//! TCP: binding with a real backlog, connecting with a per-attempt timeout
//! over every resolved address, and socket options.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::task::Poll;
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use super::{ConnectOptions, SocketOptions, Source, happy_eyeballs};
use crate::endpoint::{Family, Host, HostPort};
use crate::error::{Error, ErrorKind, Result, fmt_duration};

/// The accept backlog: deep enough for bursts of connections (the kernel
/// caps it at `net.core.somaxconn`).
const BACKLOG: u32 = 4096;

/// Binds a TCP listener on the first address `hp` resolves to in `family`.
pub(super) async fn bind(hp: &HostPort, family: Family) -> Result<TcpListener> {
    let addrs = hp.resolve_in(true, family).await?;
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

/// Connects to `hp`. One address is simply connected; several are raced
/// with Happy Eyeballs (IPv6 first, a new attempt every 250 ms). The whole
/// of it, resolution included, is bounded by the connect timeout. Names
/// resolve in the options' family (narrowed by the source address's), and
/// with a source address or port each socket is bound to it first. With a
/// fixed source port the addresses are tried one at a time, as two
/// attempts cannot hold the same port at once.
pub async fn connect_tcp(hp: &HostPort, opts: &ConnectOptions) -> Result<TcpStream> {
    // Formatted only if an error needs it, not per connection.
    let context = ConnectTo(hp);
    let family = opts.effective_family()?;
    let work = async {
        match &hp.host {
            // A literal address: nothing to resolve, no list to allocate.
            Host::Ip(ip) => {
                family.check_host(&hp.host)?;
                dial_any(&context, &[SocketAddr::new(*ip, hp.port)], opts.source).await
            }
            _ => dial_any(&context, &hp.resolve_in(false, family).await?, opts.source).await,
        }
    };
    finish(work, &context, opts).await
}

/// Connects to one of `addrs`, already resolved (and, for `netcrab proxy`,
/// filtered by its access rules), as [`connect_tcp`] does after resolving:
/// Happy Eyeballs over several, bounded by the connect timeout, from the
/// options' source address, with the socket options set. `context` names
/// the target in errors.
pub async fn connect_tcp_addrs(
    context: &str,
    addrs: &[SocketAddr],
    opts: &ConnectOptions,
) -> Result<TcpStream> {
    finish(dial_any(&context, addrs, opts.source), &context, opts).await
}

/// `connect to HOST:PORT`, the context of [`connect_tcp`]'s errors.
struct ConnectTo<'a>(&'a HostPort);

impl fmt::Display for ConnectTo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connect to {}", self.0)
    }
}

/// Dials the addresses in Happy Eyeballs order, one at a time with a fixed
/// source port.
async fn dial_any(
    context: &(dyn fmt::Display + Sync),
    addrs: &[SocketAddr],
    source: Source,
) -> Result<TcpStream> {
    // One address (a literal upstream): nothing to order or race, so no
    // interleaved copy of the list either.
    if let [addr] = addrs {
        return dial(*addr, source)
            .await
            .map_err(|e| Error::io(context.to_string(), e));
    }
    let addrs = happy_eyeballs::interleave(addrs);
    match addrs.as_slice() {
        [] => Err(Error::new(ErrorKind::Resolve, context.to_string())),
        [addr] => dial(*addr, source)
            .await
            .map_err(|e| Error::io(context.to_string(), e)),
        _ if source.port.is_some() => {
            let mut errors = Vec::new();
            for addr in &addrs {
                match dial(*addr, source).await {
                    Ok(stream) => return Ok(stream),
                    Err(e) => errors.push((*addr, e)),
                }
            }
            Err(pick_error(context, errors))
        }
        _ => happy_eyeballs::race(&addrs, happy_eyeballs::ATTEMPT_DELAY, move |addr| {
            dial(addr, source)
        })
        .await
        .map_err(|errors| pick_error(context, errors)),
    }
}

/// Bounds `work` by the connect timeout and sets the socket options.
///
/// The timeout's timer is armed only if the connection is not made by the
/// time the runtime has looked at its sockets once (a loopback or LAN
/// connect usually is): registering a timer due before the timer driver's
/// next wake-up costs a wake of the driver (an `eventfd` write) per
/// connection. The timeout still counts from the start.
async fn finish(
    work: impl Future<Output = Result<TcpStream>>,
    context: &(dyn fmt::Display + Sync),
    opts: &ConnectOptions,
) -> Result<TcpStream> {
    let start = tokio::time::Instant::now();
    let mut work = std::pin::pin!(work);
    let mut early = poll_now(&mut work).await;
    if early.is_none() {
        // Again once the runtime has polled its sockets (tokio defers the
        // wake until then).
        tokio::task::yield_now().await;
        early = poll_now(&mut work).await;
    }
    let result = match early {
        Some(result) => Ok(result),
        None => {
            let deadline = crate::deadline::after(start, opts.connect_timeout);
            tokio::time::timeout_at(deadline, work).await
        }
    };
    let stream = match result {
        Ok(result) => result?,
        Err(_) => {
            return Err(
                Error::new(ErrorKind::Timeout, context.to_string()).with_detail(format!(
                    "timed out after {}",
                    fmt_duration(opts.connect_timeout)
                )),
            );
        }
    };
    set_options(&stream, &opts.socket).map_err(|e| Error::io("set socket options", e))?;
    Ok(stream)
}

/// Polls `work` once: its output if it is done, `None` (and `work` woken
/// later as usual) if not.
async fn poll_now<F: Future>(work: &mut std::pin::Pin<&mut F>) -> Option<F::Output> {
    std::future::poll_fn(|cx| match work.as_mut().poll(cx) {
        Poll::Ready(value) => Poll::Ready(Some(value)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

/// Opens one TCP connection to `addr`, from `source` when it is set: the
/// socket is bound to it first, without `SO_REUSEADDR` (a busy port is an
/// error, not a silent collision), and an IPv6 socket is IPv6-only so it
/// never holds the IPv4 port as well. A bind failure comes back as an I/O
/// error carrying a classified [`Error`] that names the source address
/// (exit code 9, a local problem).
pub async fn dial(addr: SocketAddr, source: Source) -> io::Result<TcpStream> {
    if !source.is_set() {
        return TcpStream::connect(addr).await;
    }
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        let socket = TcpSocket::new_v6()?;
        SockRef::from(&socket).set_only_v6(true)?;
        socket
    };
    let local = source.local_for(addr);
    if let Err(e) = socket.bind(local) {
        let kind = e.kind();
        let err = Error::io("", e);
        let detail = format!("source address {local}: {}", err.detail());
        return Err(io::Error::new(kind, err.with_detail(detail)));
    }
    socket.connect(addr).await
}

/// The error to report when every address failed: the first one a retry
/// could heal (a refusal on 127.0.0.1 matters more than "address not
/// available" on ::1 of a host without IPv6), else the first; with the
/// addresses tried named.
fn pick_error(context: &(dyn fmt::Display + Sync), errors: Vec<(SocketAddr, io::Error)>) -> Error {
    let tried: Vec<String> = errors.iter().map(|(a, _)| a.to_string()).collect();
    let chosen = errors
        .iter()
        .position(|(_, e)| ErrorKind::of_io(e).is_retryable())
        .unwrap_or(0);
    match errors.into_iter().nth(chosen) {
        Some((addr, err)) => {
            let err = Error::io(context.to_string(), err);
            let detail = format!("{} (on {addr}; tried {})", err.detail(), tried.join(", "));
            err.with_detail(detail)
        }
        None => Error::new(ErrorKind::Io, context.to_string())
            .with_detail("every connection attempt failed"),
    }
}

/// The range of keepalive times Linux accepts, in whole seconds: a longer
/// one fails with EINVAL (and would reset every connection), a shorter one
/// rounds to 0, which fails too.
const KEEPALIVE_RANGE: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(32_767));

/// Applies TCP_NODELAY and keepalive (its time clamped to what the kernel
/// accepts, 1 to 32767 s).
pub(super) fn set_options(stream: &TcpStream, opts: &SocketOptions) -> io::Result<()> {
    stream.set_nodelay(opts.nodelay)?;
    if let Some(idle) = opts.keepalive {
        let idle = idle.clamp(KEEPALIVE_RANGE.0, KEEPALIVE_RANGE.1);
        let keepalive = TcpKeepalive::new().with_time(idle).with_interval(idle);
        SockRef::from(stream).set_tcp_keepalive(&keepalive)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connect that is not made at once is still bounded by the connect
    /// timeout, counted from the start (its timer is armed late).
    #[tokio::test(start_paused = true)]
    async fn a_pending_connect_times_out_from_the_start() {
        let opts = ConnectOptions {
            connect_timeout: Duration::from_secs(3),
            ..ConnectOptions::default()
        };
        let start = tokio::time::Instant::now();
        let never = std::future::pending::<Result<TcpStream>>();
        let err = finish(never, &"connect to x", &opts).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }

    /// A connect made by the time the runtime has polled its sockets once
    /// (loopback) comes back with its options set.
    #[tokio::test]
    async fn a_loopback_connect_finishes_without_its_timer() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let opts = ConnectOptions::default();
        let work = async {
            TcpStream::connect(addr)
                .await
                .map_err(|e| Error::io("connect", e))
        };
        let stream = finish(work, &"connect", &opts).await.unwrap();
        assert_eq!(stream.peer_addr().unwrap(), addr);
        assert_eq!(stream.nodelay().unwrap(), opts.socket.nodelay);
    }

    #[tokio::test]
    async fn keepalive_times_are_clamped_to_what_linux_accepts() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let sock = SockRef::from(&stream);
        for (asked, set) in [(Duration::MAX, 32_767), (Duration::from_millis(10), 1)] {
            let opts = SocketOptions {
                nodelay: true,
                keepalive: Some(asked),
            };
            set_options(&stream, &opts).unwrap();
            assert_eq!(sock.tcp_keepalive_time().unwrap(), Duration::from_secs(set));
        }
    }

    #[tokio::test]
    async fn options_set_nodelay_and_keepalive() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stream = TcpStream::connect(addr).await.unwrap();
        let opts = SocketOptions {
            nodelay: true,
            keepalive: Some(Duration::from_secs(42)),
        };
        set_options(&stream, &opts).unwrap();
        let sock = SockRef::from(&stream);
        assert!(sock.tcp_nodelay().unwrap());
        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.tcp_keepalive_time().unwrap(), Duration::from_secs(42));
        assert_eq!(
            sock.tcp_keepalive_interval().unwrap(),
            Duration::from_secs(42)
        );

        // Without keepalive it stays off.
        let other = TcpStream::connect(addr).await.unwrap();
        set_options(&other, &SocketOptions::default()).unwrap();
        assert!(!SockRef::from(&other).keepalive().unwrap());
    }
}
