//! `netcrab serve`: the services (reply, echo, discard; per read or per
//! line) run on the shared accept loop in [`server`].

pub mod hub;
pub mod lines;
mod service;
pub mod stdio;
pub mod udp;
pub mod udp_stdio;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::server::{self, ServerLimits, ServerReport};
use crate::service::{Conn, Observer};
use crate::transcript::Transcript;
use crate::transport::Listener;

pub use service::{Answer, Framing};

/// `--line-timeout`'s default: ample for a person typing a line, short
/// enough that trickling peers do not hold slots for long.
pub const DEFAULT_LINE_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything `serve` needs besides the listener.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServeConfig {
    /// What each connection gets.
    pub service: Answer,
    /// Whether the service answers each read or each line.
    pub framing: Framing,
    /// With line framing, close a connection whose line has not ended this
    /// long after its first byte (slowloris), after telling it
    /// `error: line timeout`.
    pub line_timeout: Option<Duration>,
    /// Log each received message (`recv ...`) at info level; the seed's
    /// behaviour for `--reply`. Otherwise payloads are logged at trace.
    pub log_data: bool,
    /// Connection limit, idle and drain timeouts, socket options and access
    /// rules.
    pub limits: ServerLimits,
    /// Record every connection (`-o`, `-x`); `None` records nothing.
    pub transcript: Option<Transcript>,
}

impl Default for ServeConfig {
    fn default() -> ServeConfig {
        ServeConfig {
            service: Answer::Reply(b"hello, world".to_vec()),
            framing: Framing::Reads,
            line_timeout: Some(DEFAULT_LINE_TIMEOUT),
            log_data: true,
            limits: ServerLimits::default(),
            transcript: None,
        }
    }
}

/// Serves connections from `listener` until `shutdown` is cancelled, then
/// drains. Returns once every connection has ended. At the connection
/// limit, a new connection replaces the one idle longest (see
/// [`server::run`]): a message served or answer bytes taken by the peer
/// count as progress; a trickled partial line does not. At shutdown,
/// connections waiting for their next message close at once; a connection
/// in the middle of one (a partial line, an answer being written) gets
/// the drain timeout to finish it.
pub async fn run(
    listener: Listener,
    config: ServeConfig,
    shutdown: CancellationToken,
) -> Result<ServerReport> {
    let limits = config.limits.clone();
    server::run(listener, &limits, shutdown, ServeService::new(config)).await
}

/// `serve`'s services (reply, echo, discard, per read or per line) as a
/// [`crate::service::Service`], for [`server::run`].
#[derive(Debug, Clone)]
pub struct ServeService {
    config: Arc<ServeConfig>,
}

impl ServeService {
    /// The service `config` describes (its limits are for the accept loop).
    pub fn new(config: ServeConfig) -> ServeService {
        ServeService {
            config: Arc::new(config),
        }
    }
}

impl crate::service::Service for ServeService {
    fn serve<O: Observer>(&self, mut conn: Conn<O>) -> impl Future<Output = ()> + Send + 'static {
        if let Some(transcript) = &self.config.transcript {
            conn.stream = transcript.wrap(conn.stream, &conn.peer);
        }
        service::handle(conn, self.config.clone())
    }

    fn evicts_idle(&self) -> bool {
        true
    }

    fn idle_at_start(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::Service as _;

    /// What every open connection costs is this future: keep it small
    /// (544 bytes in a test build when the service seam came, 536 before;
    /// 400 since the stream, state and configuration are owned once and
    /// `--lines` state is boxed; 408 since the deadline timer remembers
    /// whose waker it holds). tokio allocates it in a task cell of 104
    /// bytes more, aligned to 128: up to 408 bytes the cell takes
    /// jemalloc's 512-byte class, past it 640 or 768.
    #[tokio::test]
    async fn the_connection_future_stays_small() {
        let conn = crate::service::loopback_conn().await;
        let future = ServeService::new(ServeConfig::default()).serve(conn);
        let size = std::mem::size_of_val(&future);
        eprintln!("connection future: {size} bytes");
        assert!(size <= 408, "{size} bytes");
    }

    /// The idle timer is polled only when it may have fired, so it must be
    /// registered with the waker of whoever polls the connection now: a
    /// connection polled once elsewhere (its timer armed with another
    /// waker), then run in a task of its own, still times out.
    #[tokio::test(start_paused = true)]
    async fn the_idle_timeout_wakes_whichever_task_polls_the_connection() {
        use std::task::{Context, Wake, Waker};

        use tokio::io::AsyncReadExt as _;

        use crate::service::{Conn, Deadlines, NoObserver};
        use crate::transport::{PeerAddr, Stream};

        struct Elsewhere;
        impl Wake for Elsewhere {
            fn wake(self: Arc<Self>) {}
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (server, peer) = listener.accept().await.unwrap();
        let conn = Conn::new(
            Stream::Tcp(server),
            PeerAddr::Inet(peer),
            CancellationToken::new(),
            Deadlines::idle(Some(Duration::from_secs(5))),
            None,
            NoObserver,
        );
        let config = ServeConfig {
            service: Answer::Echo,
            log_data: false,
            ..ServeConfig::default()
        };
        let mut future = Box::pin(ServeService::new(config).serve(conn));
        let waker = Waker::from(Arc::new(Elsewhere));
        let mut cx = Context::from_waker(&waker);
        assert!(future.as_mut().poll(&mut cx).is_pending());
        let task = tokio::spawn(future);
        let ended = tokio::time::timeout(Duration::from_secs(60), task).await;
        assert!(
            ended.is_ok(),
            "the idle timeout never closed the connection"
        );
        let mut byte = [0u8; 1];
        assert_eq!(client.read(&mut byte).await.unwrap(), 0);
    }
}
