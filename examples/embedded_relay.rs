//! `relay` embedded in a tokio program that decides when it stops: an echo
//! server and a relay to it run in this process, a client talks through the
//! relay, then the program shuts both down. Run it with
//! `cargo run --example embedded_relay`.

use netcrab::relay::{self, RelayConfig};
use netcrab::serve::{self, Answer, ServeConfig};
use netcrab::transport::{self, ConnectOptions, Listener};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> netcrab::error::Result<()> {
    let shutdown = CancellationToken::new();

    // The upstream: an echo server on a port the kernel picks.
    let upstream = Listener::bind(&"127.0.0.1:0".parse()?).await?;
    let upstream_addr = upstream
        .endpoint()
        .map_err(|e| netcrab::error::Error::io("address", e))?;
    let mut echo = ServeConfig::default();
    echo.service = Answer::Echo;
    echo.log_data = false;
    let echo = tokio::spawn(serve::run(upstream, echo, shutdown.clone()));

    // The relay in front of it.
    let front = Listener::bind(&"127.0.0.1:0".parse()?).await?;
    let front_addr = front
        .endpoint()
        .map_err(|e| netcrab::error::Error::io("address", e))?;
    let config = RelayConfig::new(upstream_addr);
    let relayed = tokio::spawn(relay::run(front, config, shutdown.clone()));

    // A client through the relay.
    let mut stream = transport::connect(&front_addr, &ConnectOptions::default()).await?;
    stream
        .write_all(b"through the relay")
        .await
        .map_err(|e| netcrab::error::Error::io("write", e))?;
    stream
        .shutdown()
        .await
        .map_err(|e| netcrab::error::Error::io("shutdown", e))?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .await
        .map_err(|e| netcrab::error::Error::io("read", e))?;
    println!("{answer}");

    // Our own shutdown: both servers stop accepting, drain and return.
    shutdown.cancel();
    for server in [echo, relayed] {
        let report = server.await.expect("server task")?;
        println!("a server stopped after {} connection(s)", report.accepted);
    }
    Ok(())
}
