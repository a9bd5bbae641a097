//! `relay`'s fault flags, `--faults FILE` (re-read on SIGHUP) and
//! `--control ADDR`: the flags become fault keys for the library's one
//! parser ([`FaultKeys`]), as the file's TOML and the API's JSON do.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use netcrab::error::{Error, Result};
use netcrab::faults::control::{self, FaultState};
use netcrab::faults::{FaultError, FaultKeys, Faults, Value};
use tokio_util::sync::CancellationToken;

/// A clap value parser checking one fault key's value with the library's
/// parser (the error names the flag through clap).
fn key(name: &'static str) -> impl Fn(&str) -> std::result::Result<String, String> + Clone {
    move |s: &str| {
        FaultKeys::check_one(name, s)
            .map(|()| s.to_owned())
            .map_err(|e| e.message)
    }
}

/// The fault flags (all of them are also keys of `--faults FILE` and of
/// the `--control` API).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Faults (applied upstream to client unless --up or --both)")]
pub struct FaultArgs {
    /// Apply the faults client to upstream instead
    #[arg(long, conflicts_with = "both")]
    pub up: bool,
    /// Apply the faults both ways
    #[arg(long)]
    pub both: bool,
    /// Deliver every chunk this long after it was read (order kept; reading goes on meanwhile)
    #[arg(long, value_name = "DURATION", value_parser = key("latency"))]
    pub latency: Option<String>,
    /// Vary the latency uniformly by up to this much either way (never below 0, never reordering)
    #[arg(long, value_name = "DURATION", value_parser = key("jitter"))]
    pub jitter: Option<String>,
    /// Deliver at most this rate: B/s, KiB/s, MiB/s, GiB/s; kB/s, MB/s, GB/s; kbit/s, Mbit/s, Gbit/s
    #[arg(long, value_name = "RATE", value_parser = key("bandwidth"))]
    pub bandwidth: Option<String>,
    /// Split every write into pieces of at most SIZE bytes (1 to 16MiB)
    #[arg(long, value_name = "SIZE", value_parser = key("slice"))]
    pub slice: Option<String>,
    /// With --slice: wait this long between two pieces
    #[arg(long, value_name = "DURATION", value_parser = key("slice-delay"), requires = "slice")]
    pub slice_delay: Option<String>,
    /// Deliver exactly this many bytes, then reset the client (RST) and close the upstream
    #[arg(long, value_name = "BYTES", value_parser = key("reset-after"))]
    pub reset_after: Option<String>,
    /// Reset the client and close the upstream this long after the connection started
    #[arg(long, value_name = "DURATION", value_parser = key("reset-after-time"))]
    pub reset_after_time: Option<String>,
    /// Stop forwarding and close both sides this long after the connection started
    #[arg(long, value_name = "DURATION", value_parser = key("timeout-after"))]
    pub timeout_after: Option<String>,
    /// Accept and swallow: read and discard, never forward
    #[arg(long)]
    pub blackhole: bool,
    /// Drop this share of datagrams, 0 to 1 (UDP relays only)
    #[arg(long, value_name = "FRACTION", value_parser = key("drop"))]
    pub drop: Option<String>,
    /// Affect this share of connections, 0 to 1 (0: none, exactly; default 1: all)
    #[arg(long, value_name = "P", value_parser = key("fault-rate"))]
    pub fault_rate: Option<String>,
    /// Read the faults from a TOML file with the same keys (latency = "100ms"); re-read on SIGHUP
    #[arg(
        long = "faults",
        value_name = "FILE",
        conflicts_with_all = ["up", "both", "latency", "jitter", "bandwidth", "slice", "slice_delay",
            "reset_after", "reset_after_time", "timeout_after", "blackhole", "drop", "fault_rate"]
    )]
    pub file: Option<PathBuf>,
    /// Serve the HTTP/JSON control API on ADDR: GET/PUT/DELETE /faults, GET /connections
    #[arg(long, value_name = "ADDR")]
    pub control: Option<String>,
}

/// A file's faults, or the error naming the file and the key.
fn load(path: &Path) -> std::result::Result<Faults, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    FaultKeys::from_toml(&text)
        .and_then(|k| k.resolve())
        .and_then(|f| f.check_streams().map(|()| f))
        .map_err(|e| format!("{}: {e}", path.display()))
}

impl FaultArgs {
    /// Whether any fault machinery is wanted.
    fn wanted(&self) -> bool {
        self.file.is_some() || self.control.is_some() || !self.flag_pairs().is_empty()
    }

    /// The flags given, as fault keys.
    fn flag_pairs(&self) -> Vec<(&'static str, Value)> {
        let mut pairs = Vec::new();
        if self.up {
            pairs.push(("direction", "up".into()));
        }
        if self.both {
            pairs.push(("direction", "both".into()));
        }
        for (key, value) in [
            ("latency", &self.latency),
            ("jitter", &self.jitter),
            ("bandwidth", &self.bandwidth),
            ("slice", &self.slice),
            ("slice-delay", &self.slice_delay),
            ("reset-after", &self.reset_after),
            ("reset-after-time", &self.reset_after_time),
            ("timeout-after", &self.timeout_after),
            ("drop", &self.drop),
            ("fault-rate", &self.fault_rate),
        ] {
            if let Some(v) = value {
                pairs.push((key, v.as_str().into()));
            }
        }
        if self.blackhole {
            pairs.push(("blackhole", Value::Bool(true)));
        }
        pairs
    }

    /// The fault state to start with, or `None` when no fault flag,
    /// `--faults` nor `--control` was given. A bad file or value is a
    /// usage error.
    pub fn resolve(&self) -> Result<Option<Arc<FaultState>>> {
        self.resolve_for(true)
    }

    /// [`resolve`](Self::resolve) for a relay of byte streams (`streams`)
    /// or of datagrams (where `drop` applies).
    pub fn resolve_for(&self, streams: bool) -> Result<Option<Arc<FaultState>>> {
        if !self.wanted() {
            return Ok(None);
        }
        let faults = match &self.file {
            Some(path) => load(path).map_err(Error::usage)?,
            None => FaultKeys::from_pairs(self.flag_pairs())
                .and_then(|k| k.resolve())
                .map_err(flag_error)?,
        };
        let state = FaultState::new(faults, streams).map_err(flag_error)?;
        Ok(Some(Arc::new(state)))
    }

    /// Starts what runs beside the relay: the control API (bound now, its
    /// address logged) and the SIGHUP reloads of `--faults`.
    pub async fn start(&self, state: &Arc<FaultState>, shutdown: &CancellationToken) -> Result<()> {
        let faults = state.faults();
        if !faults.is_none() {
            tracing::info!("faults: {}", faults.to_json());
        }
        if let Some(addr) = &self.control {
            let listener = tokio::net::TcpListener::bind(addr.as_str())
                .await
                .map_err(|e| Error::io(format!("control API: bind {addr}"), e))?;
            let local = listener
                .local_addr()
                .map_err(|e| Error::io("control API: read the bound address", e))?;
            // Not "listening on": that line announces the relay itself.
            tracing::info!("control API at http://{local}");
            if !local.ip().is_loopback() {
                tracing::warn!(
                    "control API on {local}: it has no authentication, anyone who reaches it can change the faults"
                );
            }
            tokio::spawn(control::serve(listener, state.clone(), shutdown.clone()));
        }
        if let Some(path) = &self.file {
            let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                .map_err(|e| Error::io("install the SIGHUP handler", e))?;
            let (path, state, shutdown) = (path.clone(), state.clone(), shutdown.clone());
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        got = hup.recv() => if got.is_none() { return },
                    }
                    match load(&path) {
                        Ok(faults) => {
                            let shown = faults.to_json();
                            // load() made the stream checks already.
                            let _ = state.set(faults);
                            tracing::info!("SIGHUP: faults now {shown} (from {})", path.display());
                        }
                        Err(err) => {
                            tracing::error!("SIGHUP: {err}; the faults in force are kept")
                        }
                    }
                }
            });
        }
        Ok(())
    }
}

/// A fault error from the flags: named as the flag.
fn flag_error(e: FaultError) -> Error {
    match e.key {
        Some(key) => Error::usage(format!("--{key}: {}", e.message)),
        None => Error::usage(e.message),
    }
}
