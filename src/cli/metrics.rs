//! `--metrics ADDR` (serve, relay, proxy): the flag, its help (every
//! metric, from the library's table), and starting the `/metrics`
//! endpoint beside the server.

use clap::Args;
use netcrab::endpoint::{Endpoint, Scheme};
use netcrab::error::{Error, Result};
use netcrab::metrics::{METRICS, Metrics, MetricsObserver, http};
use netcrab::transport::Listener;
use tokio_util::sync::{CancellationToken, DropGuard};

/// `--metrics`' long help: what it does, then every metric.
fn long_help() -> String {
    let mut help = String::from(
        "Serve Prometheus metrics at http://ADDR/metrics (HOST:PORT, :PORT or PORT; port 0 picks a free port, \
         logged as `metrics on http://ADDR/metrics`). A plain GET gets the Prometheus text format 0.0.4; \
         a client whose Accept header prefers application/openmetrics-text gets OpenMetrics. Other paths get 404. \
         Bind it to loopback or a private address: it has no authentication.\n\nMetrics:",
    );
    for (name, kind, labels, text) in METRICS {
        let labels = match labels {
            "" => String::new(),
            l => format!("{{{l}}}"),
        };
        help.push_str(&format!("\n  {name}{labels} ({kind}): {text}"));
    }
    help
}

/// The `--metrics` flag.
#[derive(Debug, Clone, Args)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics at http://ADDR/metrics (HOST:PORT, :PORT or PORT; port 0 picks a free port, logged); --help lists them
    #[arg(long, value_name = "ADDR", long_help = long_help())]
    pub metrics: Option<String>,
}

/// The running `/metrics` endpoint; it stops when dropped.
pub struct Running {
    metrics: Metrics,
    _stop: DropGuard,
}

impl Running {
    /// The observer the accept loop counts with.
    pub fn observer(&self) -> MetricsObserver {
        self.metrics.observer()
    }
}

impl MetricsArgs {
    /// The address to serve metrics on, checked (a TCP address).
    pub fn endpoint(&self) -> Result<Option<Endpoint>> {
        let Some(addr) = &self.metrics else {
            return Ok(None);
        };
        let endpoint = Endpoint::parse_with_default(addr, Scheme::Tcp)
            .map_err(|e| Error::usage(format!("--metrics: {e}")))?;
        if endpoint.scheme() != Scheme::Tcp {
            return Err(Error::usage(format!(
                "--metrics takes a TCP address (HOST:PORT, :PORT or PORT), not {endpoint}"
            )));
        }
        Ok(Some(endpoint))
    }

    /// Binds the metrics listener and serves `/metrics` from a task of its
    /// own, for `command` (`serve`, `relay`, `proxy`). `None` without
    /// `--metrics`.
    pub async fn start(&self, command: &'static str) -> Result<Option<Running>> {
        let Some(endpoint) = self.endpoint()? else {
            return Ok(None);
        };
        let listener = Listener::bind(&endpoint).await?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::io("read the bound metrics address", e))?;
        tracing::info!("metrics on http://{local}/metrics");
        let metrics = Metrics::new(command);
        let stop = CancellationToken::new();
        tokio::spawn(http::serve(listener, metrics.clone(), stop.clone()));
        Ok(Some(Running {
            metrics,
            _stop: stop.drop_guard(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(addr: &str) -> MetricsArgs {
        MetricsArgs {
            metrics: Some(addr.to_owned()),
        }
    }

    #[test]
    fn addresses_are_tcp() {
        for ok in [
            "127.0.0.1:0",
            ":9100",
            "9100",
            "[::1]:9100",
            "localhost:9100",
        ] {
            assert!(args(ok).endpoint().is_ok_and(|e| e.is_some()), "{ok}");
        }
        for bad in [
            "udp://127.0.0.1:1",
            "unix:///tmp/m.sock",
            "tls://127.0.0.1:1",
            "nope:",
        ] {
            assert!(args(bad).endpoint().is_err(), "{bad}");
        }
        assert!(
            MetricsArgs { metrics: None }
                .endpoint()
                .is_ok_and(|e| e.is_none())
        );
    }

    #[test]
    fn the_help_lists_every_metric() {
        let help = long_help();
        for (name, ..) in METRICS {
            assert!(help.contains(name), "{name}");
        }
    }
}
