//! A client built from the connect chain: parse an endpoint, make a
//! [`Connector`] (resolve, Happy Eyeballs dial, then each layer: TLS for
//! `tls://` and `tls+unix://`), connect with the retry policy, talk.
//! Run it against any server, e.g. `netcrab serve` (the seed's
//! `hello, world` server) and `cargo run --example client 127.0.0.1:8080`.

use netcrab::error::{Error, Result};
use netcrab::retry::{RetryPolicy, retry};
use netcrab::transport::{ConnectOptions, Connector};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() -> Result<()> {
    let target = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let connector = Connector::new(&target.parse()?, &ConnectOptions::default())?;
    let policy = RetryPolicy::default();
    let mut stream = retry(&policy, "connect", |_attempt| connector.connect()).await?;
    stream
        .write_all(b"hello, world")
        .await
        .map_err(|e| Error::io("write", e))?;
    let mut buf = vec![0u8; 1024];
    let n = stream
        .read(&mut buf)
        .await
        .map_err(|e| Error::io("read", e))?;
    println!("recv {}", String::from_utf8_lossy(&buf[..n]));
    Ok(())
}
