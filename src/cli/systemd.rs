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
/// service itself works. The guard sends `STOPPING=1` when dropped, if the
/// shutdown task has not yet: a quick drain can end the command before
/// that task runs.
#[must_use = "the guard sends STOPPING=1 when dropped"]
pub fn notify_ready(shutdown: &CancellationToken) -> Stopping {
    #[cfg(target_os = "linux")]
    {
        match netcrab::systemd::notify("READY=1") {
            Ok(false) => return Stopping { armed: false },
            Ok(true) => {}
            Err(err) => {
                tracing::warn!("{err}");
                return Stopping { armed: false };
            }
        }
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            shutdown.cancelled().await;
            stopping();
        });
        Stopping { armed: true }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = shutdown;
        Stopping { armed: false }
    }
}

/// Sends `STOPPING=1` when dropped, unless it was sent already.
#[derive(Debug)]
pub struct Stopping {
    armed: bool,
}

impl Drop for Stopping {
    fn drop(&mut self) {
        if self.armed {
            stopping();
        }
    }
}

/// Sends `STOPPING=1`, once per process.
fn stopping() {
    static SENT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if SENT.swap(true, std::sync::atomic::Ordering::AcqRel) {
        return;
    }
    #[cfg(target_os = "linux")]
    if let Err(err) = netcrab::systemd::notify("STOPPING=1") {
        tracing::warn!("{err}");
    }
}
