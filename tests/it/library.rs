//! The library embedded in-process, through the API `examples/` uses: a
//! custom service on the shared accept loop, an observer, shutdown handed
//! to each connection, relay as a service.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use netcrab::relay::{RelayConfig, RelayService};
use netcrab::serve::{Answer, ServeConfig, ServeService};
use netcrab::server::{self, ServerLimits, ServerReport};
use netcrab::service::{Conn, Observer, Service};
use netcrab::transport::{Listener, PeerAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Far longer than any test: a test that waits for it fails on time.
const PATIENCE: Duration = Duration::from_secs(20);

/// Runs `service` on 127.0.0.1:0 with `limits` and `observer`; returns the
/// address and the server's task.
async fn start<S: Service, O: Observer>(
    service: S,
    limits: ServerLimits,
    observer: O,
    shutdown: &CancellationToken,
) -> (String, JoinHandle<netcrab::error::Result<ServerReport>>) {
    let listener = Listener::bind(&"127.0.0.1:0".parse().expect("endpoint"))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address").to_string();
    let shutdown = shutdown.clone();
    let task = tokio::spawn(async move {
        server::run_observed(listener, &limits, shutdown, service, observer).await
    });
    (addr, task)
}

/// Waits for the server to stop, within [`PATIENCE`].
async fn stopped(task: JoinHandle<netcrab::error::Result<ServerReport>>) -> ServerReport {
    tokio::time::timeout(PATIENCE, task)
        .await
        .expect("the server did not stop in time")
        .expect("server task")
        .expect("server")
}

/// Counts what it is told.
#[derive(Clone, Default)]
struct Counts(Arc<[AtomicU64; 4]>);

impl Observer for Counts {
    fn received(&self, n: usize) {
        self.0[0].fetch_add(n as u64, Ordering::Relaxed);
    }
    fn sent(&self, n: usize) {
        self.0[1].fetch_add(n as u64, Ordering::Relaxed);
    }
    fn closed(&self, _: &PeerAddr, received: u64, sent: u64) {
        self.0[2].fetch_add(received + sent, Ordering::Relaxed);
        self.0[3].fetch_add(1, Ordering::Relaxed);
    }
}

impl Counts {
    fn get(&self) -> [u64; 4] {
        std::array::from_fn(|i| self.0[i].load(Ordering::Relaxed))
    }
}

fn echo() -> ServeService {
    let mut config = ServeConfig::default();
    config.service = Answer::Echo;
    config.log_data = false;
    ServeService::new(config)
}

fn limits(drain: Duration) -> ServerLimits {
    let mut limits = ServerLimits::default();
    limits.drain_timeout = drain;
    limits
}

#[tokio::test]
async fn the_observer_sees_every_byte_and_the_end() {
    let shutdown = CancellationToken::new();
    let counts = Counts::default();
    let (addr, task) = start(echo(), limits(PATIENCE), counts.clone(), &shutdown).await;
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"hello").await.unwrap();
    s.shutdown().await.unwrap();
    let mut back = Vec::new();
    s.read_to_end(&mut back).await.unwrap();
    assert_eq!(back, b"hello");
    shutdown.cancel();
    let report = stopped(task).await;
    assert_eq!(report.accepted, 1);
    assert_eq!(counts.get(), [5, 5, 10, 1]);
}

#[tokio::test]
async fn shutdown_closes_idle_connections_without_waiting_for_the_drain() {
    let shutdown = CancellationToken::new();
    let hour = Duration::from_secs(3600);
    let (addr, task) = start(
        echo(),
        limits(hour),
        netcrab::service::NoObserver,
        &shutdown,
    )
    .await;
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"x").await.unwrap();
    let mut b = [0u8; 1];
    s.read_exact(&mut b).await.unwrap();
    shutdown.cancel();
    let report = stopped(task).await;
    assert_eq!(report.closed_at_shutdown, 1);
    assert_eq!(report.closed_at_drain, 0);
    assert_eq!(s.read(&mut b).await.unwrap(), 0, "not closed");
}

/// Greets each connection and holds it until its peer closes, saying
/// nothing about its messages: at shutdown it is drained.
struct Hold;

impl Service for Hold {
    #[allow(clippy::manual_async_fn, reason = "an async fn would borrow self")]
    fn serve<O: Observer>(&self, conn: Conn<O>) -> impl Future<Output = ()> + Send + 'static {
        async move {
            let mut stream = conn.stream;
            if stream.write_all(b"!").await.is_err() {
                return;
            }
            let mut sink = [0u8; 64];
            while let Ok(1..) = stream.read(&mut sink).await {}
        }
    }
}

#[tokio::test]
async fn a_service_that_reports_nothing_is_drained() {
    let shutdown = CancellationToken::new();
    let drain = Duration::from_millis(100);
    let (addr, task) = start(Hold, limits(drain), netcrab::service::NoObserver, &shutdown).await;
    let mut s = TcpStream::connect(&addr).await.unwrap();
    // Greeted: the service has the connection.
    let mut b = [0u8; 1];
    s.read_exact(&mut b).await.unwrap();
    shutdown.cancel();
    let report = stopped(task).await;
    assert_eq!(report.accepted, 1);
    assert_eq!(report.closed_at_shutdown, 0);
    assert_eq!(report.closed_at_drain, 1);
}

#[tokio::test]
async fn relay_runs_as_a_service() {
    let shutdown = CancellationToken::new();
    let none = netcrab::service::NoObserver;
    let (upstream, echo_task) = start(echo(), limits(PATIENCE), none, &shutdown).await;
    let relay = RelayService::new(RelayConfig::new(upstream.parse().unwrap())).unwrap();
    let counts = Counts::default();
    let (front, relay_task) = start(relay, limits(PATIENCE), counts.clone(), &shutdown).await;
    let mut s = TcpStream::connect(&front).await.unwrap();
    s.write_all(b"relayed").await.unwrap();
    s.shutdown().await.unwrap();
    let mut back = Vec::new();
    s.read_to_end(&mut back).await.unwrap();
    assert_eq!(back, b"relayed");
    shutdown.cancel();
    assert_eq!(stopped(relay_task).await.accepted, 1);
    assert_eq!(stopped(echo_task).await.accepted, 1);
    assert_eq!(counts.get()[2..], [14, 1]);
}
