//! `netcrab relay udp://LISTEN udp://UPSTREAM`: the UDP relay's flag, its
//! checks (the stream-only flags are usage errors), and its start-up.

use std::time::Duration;

use clap::Args;
use netcrab::endpoint::{Endpoint, HostPort, Scheme};
use netcrab::error::{Error, Result};
use netcrab::relay::udp::{self as udp_relay, UdpRelayConfig, UdpRelayReport};

use super::common::{DurationIn, duration_in};
use super::relay::RelayArgs;

/// `--udp-idle` when not given: a minute, Envoy's UDP proxy's default.
pub const DEFAULT_UDP_IDLE: Duration = Duration::from_secs(60);
/// The shortest `--udp-idle`: shorter would close sessions between a
/// request and its reply.
pub const MIN_UDP_IDLE: Duration = Duration::from_millis(100);
/// The longest `--udp-idle`: a day (a session whose client vanished holds
/// a socket until then).
pub const MAX_UDP_IDLE: Duration = Duration::from_secs(86_400);

/// The UDP relay's own flag.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "UDP relay (udp:// to udp://)")]
pub struct UdpRelayArgs {
    /// Close a client's session (its upstream socket) when no datagram has moved either way for this long (100ms to 1d) [default: 60s]
    #[arg(long, value_name = "DURATION", value_parser = udp_idle())]
    pub udp_idle: Option<Duration>,
}

/// `--udp-idle`'s parser: [`MIN_UDP_IDLE`] to [`MAX_UDP_IDLE`].
fn udp_idle() -> DurationIn {
    duration_in(MIN_UDP_IDLE, MAX_UDP_IDLE)
}

/// The two ends of a UDP relay, if LISTEN or UPSTREAM is `udp://`: both
/// must be, and the flags that only make sense for byte streams must not
/// be given.
pub fn endpoints(args: &RelayArgs) -> Result<Option<(HostPort, HostPort)>> {
    let listen = Endpoint::parse_with_default(&args.listen, Scheme::Tcp)?;
    let upstream = Endpoint::parse_with_default(&args.upstream, Scheme::Tcp)?;
    let udp = |e: &Endpoint| e.scheme() == Scheme::Udp;
    match (udp(&listen), udp(&upstream)) {
        (false, false) if args.udp.udp_idle.is_some() => {
            return Err(Error::usage("--udp-idle applies to udp:// relays"));
        }
        (false, false) => return Ok(None),
        (true, true) => {}
        (true, false) => {
            return Err(Error::usage(format!(
                "a udp:// listener relays to a udp:// upstream, not {upstream}"
            )));
        }
        (false, true) => {
            return Err(Error::usage(format!(
                "a udp:// upstream is relayed from a udp:// listener, not {listen}"
            )));
        }
    }
    let stream_only = [
        ("--tls", args.tls.tls),
        ("--upstream-tls", args.upstream_tls.upstream_tls),
        ("--accept-proxy", args.accept_proxy),
        ("--send-proxy", args.send_proxy.is_some()),
        ("--proxy", !args.proxy.proxy.is_empty()),
        ("--keepalive", args.keepalive.is_some()),
        ("--output/--hex-dump", args.transcript.is_wanted()),
        (
            "--allow/--deny",
            !(args.access.allow.is_empty()
                && args.access.allow_file.is_empty()
                && args.access.deny.is_empty()
                && args.access.deny_file.is_empty()),
        ),
    ];
    if let Some((flag, _)) = stream_only.iter().find(|(_, given)| *given) {
        return Err(Error::usage(format!(
            "{flag} applies to stream relays (tcp, tls, unix, ws, quic), not udp"
        )));
    }
    args.family.check(&listen)?;
    args.family.check(&upstream)?;
    // The TLS and WebSocket flags name themselves when given without such
    // an endpoint.
    args.tls.resolve(&listen)?;
    args.upstream_tls.resolve(&upstream)?;
    args.ws.resolve(&[&listen, &upstream], None)?;
    if args.source.source_port.is_some() && args.max_conns != 1 {
        return Err(Error::usage(
            "--source-port needs --max-conns 1: two sessions cannot share a source port",
        ));
    }
    match (listen.host_port(), upstream.host_port()) {
        (Some(l), Some(u)) => Ok(Some((l.clone(), u.clone()))),
        _ => Err(Error::usage("udp:// needs HOST:PORT")),
    }
}

/// Runs the UDP relay until a signal stops it and the drain is over.
pub async fn run(args: &RelayArgs, listen: &HostPort, upstream: &HostPort) -> Result<()> {
    let family = args.family.family();
    let addr = *upstream
        .resolve_in(false, family)
        .await?
        .first()
        .ok_or_else(|| Error::usage(format!("{upstream} resolves to no address")))?;
    let shutdown = super::on_signals()?;
    // One socket per session, and the listening one.
    super::fdlimit::check("--max-conns", args.max_conns, 1);
    let socket = netcrab::transport::udp::bind_udp(listen, family).await?;
    let local = socket
        .local_addr()
        .map_err(|e| Error::io("read the bound address", e))?;
    if let Some(path) = &args.port_file {
        super::serve::write_port_file(path, local.port())?;
    }
    let mut config = UdpRelayConfig::new(addr);
    config.source = args.source.source();
    config.idle_timeout = args.udp.udp_idle.unwrap_or(DEFAULT_UDP_IDLE);
    config.max_sessions = args.max_conns;
    config.drain_timeout = args.drain_timeout;
    let shown = match upstream.to_string() {
        name if name == addr.to_string() => name,
        name => format!("{name} ({addr})"),
    };
    tracing::info!("listening on udp://{local} (relay to udp://{shown})");
    let faults = args.faults.resolve_for(false)?;
    if let Some(state) = &faults {
        args.faults.start(state, &shutdown).await?;
    }
    let _stopping = super::systemd::notify_ready(&shutdown);
    let report = match faults {
        Some(state) => {
            let filter = udp_relay::FaultFilter(state);
            udp_relay::run_filtered(socket, config, filter, shutdown).await?
        }
        None => udp_relay::run(socket, config, shutdown).await?,
    };
    stopped(&report);
    Ok(())
}

/// The stopped line: sessions, datagrams each way, and every drop.
fn stopped(report: &UdpRelayReport) {
    let mut drops = String::new();
    let mut add = |n: u64, what: &str| {
        if n > 0 {
            drops += &format!(", {n} {what}");
        }
    };
    add(
        report.dropped_at_limit,
        "from new clients dropped at the session limit",
    );
    add(report.unsent, "not sent");
    add(report.refused, "refused by the upstream");
    add(report.filtered, "dropped by faults");
    add(
        report.closed_at_drain,
        "session(s) closed at the drain timeout",
    );
    tracing::info!(
        "stopped after {} session(s): {} datagram(s) up, {} down{drops}",
        report.sessions,
        report.datagrams_up,
        report.datagrams_down
    );
}
