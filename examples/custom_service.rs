//! A server with a service of its own: it answers every line in capitals.
//! Run it with `cargo run --example custom_service`, then
//! `netcrab connect 127.0.0.1:7878 --send "hello"` (Ctrl-C to stop).

use netcrab::server::{self, ServerLimits};
use netcrab::service::{Conn, Observer, Service};
use netcrab::transport::Listener;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Answers each line with the line in capitals, and this.
struct Shout {
    end: &'static str,
}

impl Service for Shout {
    fn serve<O: Observer>(&self, conn: Conn<O>) -> impl Future<Output = ()> + Send + 'static {
        // The future outlives `&self`: take what it needs from the service.
        let end = self.end;
        async move {
            let mut lines = BufReader::new(conn.stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let answer = format!("{}{end}\n", line.to_uppercase());
                if lines
                    .get_mut()
                    .get_mut()
                    .write_all(answer.as_bytes())
                    .await
                    .is_err()
                {
                    break;
                }
            }
        }
    }
}

#[tokio::main]
async fn main() -> netcrab::error::Result<()> {
    let listener = Listener::bind(&"127.0.0.1:7878".parse()?).await?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move { tokio::signal::ctrl_c().await.map(|()| stop.cancel()) });
    server::run(
        listener,
        &ServerLimits::default(),
        shutdown,
        Shout { end: "!" },
    )
    .await?;
    Ok(())
}
