//! systemd for serve and relay: listen on the socket the service manager
//! passed when socket-activated (detected from `LISTEN_PID`/`LISTEN_FDS`),
//! and tell it `READY=1` once listening and `STOPPING=1` when a signal
//! starts the shutdown, when `NOTIFY_SOCKET` is set.

use netcrab::endpoint::Endpoint;
use netcrab::error::Result;
use netcrab::transport::{ListenOptions, Listener};
use tokio_util::sync::CancellationToken;

/// The listener: the passed socket when socket-activated (the address on
/// the command line then gives only the scheme: its layers, such as TLS),
/// else `endpoint` bound with `opts`.
pub async fn listen(endpoint: &Endpoint, opts: &ListenOptions) -> Result<Listener> {
    #[cfg(target_os = "linux")]
    {
        let mut sockets = netcrab::systemd::take_listen_sockets()?;
        if !sockets.is_empty() {
            if sockets.len() > 1 {
                tracing::warn!(
                    "socket activation: {} sockets passed; listening on the first only",
                    sockets.len()
                );
            }
            let passed = sockets.swap_remove(0);
            let listener = Listener::from_inherited(endpoint.scheme(), passed.socket, opts)?;
            let name = passed.name.map(|n| format!(" ({n})")).unwrap_or_default();
            tracing::info!(
                "socket activation: using the passed socket{name} instead of {endpoint}"
            );
            return Ok(listener);
        }
    }
    Listener::bind_with(endpoint, opts).await
}

/// Sends `READY=1` now and `STOPPING=1` once `shutdown` fires, when
/// `NOTIFY_SOCKET` is set. A failed notification is a warning: the
/// service itself works.
pub fn notify_ready(shutdown: &CancellationToken) {
    #[cfg(target_os = "linux")]
    {
        match netcrab::systemd::notify("READY=1") {
            Ok(false) => return,
            Ok(true) => {}
            Err(err) => {
                tracing::warn!("{err}");
                return;
            }
        }
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            shutdown.cancelled().await;
            if let Err(err) = netcrab::systemd::notify("STOPPING=1") {
                tracing::warn!("{err}");
            }
        });
    }
    #[cfg(not(target_os = "linux"))]
    let _ = shutdown;
}
