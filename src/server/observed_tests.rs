//! The accept loop's calls to its [`Observer`]: what it counts itself
//! (accepts, connections it closes at shutdown and at the drain timeout)
//! and each connection's observer living exactly as long as the
//! connection.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::serve::{Answer as Reply, Framing, ServeConfig, ServeService};

#[derive(Debug, Default)]
struct Record {
    accepted: u32,
    received: usize,
    ended: Vec<CloseReason>,
    open: i32,
}

/// Records what it is told; a connection's own observer counts as open
/// until dropped.
#[derive(Debug, Default)]
struct Recorder {
    record: Arc<Mutex<Record>>,
    conn: bool,
}

impl Clone for Recorder {
    fn clone(&self) -> Recorder {
        Recorder {
            record: self.record.clone(),
            conn: false,
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if self.conn {
            self.record.lock().expect("lock").open -= 1;
        }
    }
}

impl Observer for Recorder {
    fn received(&self, n: usize) {
        self.record.lock().expect("lock").received += n;
    }

    fn ended(&self, reason: CloseReason) {
        self.record.lock().expect("lock").ended.push(reason);
    }

    fn accepted(&self) {
        self.record.lock().expect("lock").accepted += 1;
    }

    fn connection(&self) -> Recorder {
        self.record.lock().expect("lock").open += 1;
        Recorder {
            record: self.record.clone(),
            conn: true,
        }
    }
}

#[tokio::test]
async fn the_loop_counts_the_connections_it_closes() {
    let listener = Listener::bind(&"127.0.0.1:0".parse().expect("endpoint"))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let config = ServeConfig {
        service: Reply::Echo,
        framing: Framing::Lines { max_line: 1024 },
        limits: ServerLimits {
            // Long enough for the third connection to finish its line.
            drain_timeout: Duration::from_secs(1),
            ..ServerLimits::default()
        },
        ..ServeConfig::default()
    };
    let limits = config.limits.clone();
    let recorder = Recorder::default();
    let record = recorder.record.clone();
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let server = tokio::spawn(async move {
        let service = ServeService::new(config);
        run_observed(listener, &limits, stop, service, recorder).await
    });

    // One connection served a line and waits for the next: idle.
    let mut idle = TcpStream::connect(&addr).await.expect("connect");
    idle.write_all(b"hi\n").await.expect("send");
    let mut line = [0u8; 3];
    idle.read_exact(&mut line).await.expect("echo");
    // Another is in the middle of a line that never ends: drained, then
    // closed.
    let mut busy = TcpStream::connect(&addr).await.expect("connect");
    busy.write_all(b"partial").await.expect("send");
    // A third finishes its line during the drain: closed for shutdown.
    let mut finishing = TcpStream::connect(&addr).await.expect("connect");
    finishing.write_all(b"almost").await.expect("send");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while record.lock().expect("lock").received < 16 {
        assert!(tokio::time::Instant::now() < deadline, "never received");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(record.lock().expect("lock").open, 3);

    shutdown.cancel();
    finishing.write_all(b" done\n").await.expect("send");
    let mut echo = Vec::new();
    finishing.read_to_end(&mut echo).await.expect("read");
    assert_eq!(echo, b"almost done\n");
    let report = server.await.expect("join").expect("run");
    assert_eq!(report.closed_at_shutdown, 1);
    assert_eq!(report.closed_at_drain, 1);
    let record = record.lock().expect("lock");
    assert_eq!(record.accepted, 3);
    let mut ended = record.ended.clone();
    ended.sort_by_key(|r| r.as_str());
    assert_eq!(
        ended,
        [
            CloseReason::DrainTimeout,
            CloseReason::Shutdown,
            CloseReason::Shutdown
        ]
    );
    assert_eq!(record.open, 0, "every connection's observer was dropped");
}

#[tokio::test(start_paused = true)]
async fn an_evicted_connection_is_counted_as_evicted() {
    let listener = Listener::bind(&"127.0.0.1:0".parse().expect("endpoint"))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let config = ServeConfig {
        service: Reply::Echo,
        limits: ServerLimits {
            max_conns: 1,
            idle_timeout: None,
            ..ServerLimits::default()
        },
        ..ServeConfig::default()
    };
    let limits = config.limits.clone();
    let recorder = Recorder::default();
    let record = recorder.record.clone();
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let server = tokio::spawn(async move {
        let service = ServeService::new(config);
        run_observed(listener, &limits, stop, service, recorder).await
    });
    let mut first = TcpStream::connect(&addr).await.expect("connect");
    first.write_all(b"a").await.expect("send");
    let mut byte = [0u8; 1];
    first.read_exact(&mut byte).await.expect("echo");
    // At the limit: the first, idle (paused time runs on while all
    // wait), makes room for the second.
    let mut second = TcpStream::connect(&addr).await.expect("connect");
    second.write_all(b"b").await.expect("send");
    second.read_exact(&mut byte).await.expect("echo");
    assert_eq!(first.read(&mut byte).await.unwrap_or(0), 0, "first closed");
    shutdown.cancel();
    server.await.expect("join").expect("run");
    let record = record.lock().expect("lock");
    assert_eq!(record.ended.first(), Some(&CloseReason::Evicted));
    assert_eq!(record.open, 0);
}

/// The accept loop runs in a task of its own (on a runtime worker): when
/// the caller drops `run`, that task ends too, closing the listener and
/// every connection, as when the loop ran in the caller's future.
#[tokio::test]
async fn dropping_run_stops_the_loop_and_its_connections() {
    let listener = Listener::bind(&"127.0.0.1:0".parse().expect("endpoint"))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let config = ServeConfig {
        service: Reply::Echo,
        ..ServeConfig::default()
    };
    let server = tokio::spawn(async move {
        let limits = config.limits.clone();
        run(
            listener,
            &limits,
            CancellationToken::new(),
            ServeService::new(config),
        )
        .await
    });
    let mut conn = TcpStream::connect(&addr).await.expect("connect");
    conn.write_all(b"a").await.expect("send");
    let mut byte = [0u8; 1];
    conn.read_exact(&mut byte).await.expect("echo");

    server.abort();
    assert!(server.await.expect_err("aborted").is_cancelled());
    // The connection is closed (EOF or a reset)...
    let closed = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut byte)).await;
    assert!(matches!(closed, Ok(Ok(0) | Err(_))), "{closed:?}");
    // ...and so is the listener.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(&addr).await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "still listening");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
