//! `netcrab scan`: a TCP connect scan. Each port of each host gets one
//! probe (a full connect, then an abortive close), reported open, closed
//! (refused) or filtered (no answer before the probe timeout, or host
//! unreachable).
//!
//! What to scan is parsed purely ([`parse_ports`], [`parse_hosts`]), with a
//! cap on the number of probes ([`MAX_PROBES`]) checked before anything is
//! expanded, so `10.0.0.0/8` is a usage error and not an allocation. The
//! probes run with a concurrency limit, started as earlier ones finish (at
//! most `concurrency` sockets are open at any time), and a filtered port is
//! retried `retries` times. An open port is closed with `SO_LINGER` 0 (a
//! reset, as scanners do), so tens of thousands of probes leave no
//! TIME_WAIT behind and a fixed source port can be reused at once.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use serde::Serialize;
use socket2::SockRef;
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::endpoint::{Family, Host, HostPort};
use crate::error::{Error, ErrorKind, Result};
use crate::transport::{Source, dial};

/// The most probes (hosts × ports) one scan makes: every port of one host,
/// or 256 ports of a /24. A larger scan is a usage error.
pub const MAX_PROBES: u64 = 65_536;

/// The largest banner kept from an open port (`--banner`).
pub const MAX_BANNER: usize = 1024;

/// What a probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PortState {
    /// The connection was accepted.
    Open,
    /// The connection was refused (or reset): nothing listens there.
    Closed,
    /// No answer before the timeout, or the host was unreachable.
    Filtered,
}

impl PortState {
    /// `open`, `closed` or `filtered`.
    pub fn as_str(self) -> &'static str {
        match self {
            PortState::Open => "open",
            PortState::Closed => "closed",
            PortState::Filtered => "filtered",
        }
    }
}

/// Everything a scan needs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ScanConfig {
    /// The hosts, as given (names resolve at the start of the scan).
    pub hosts: Vec<Host>,
    /// The ports, ascending, without duplicates.
    pub ports: Vec<u16>,
    /// The most probes in flight at once (sockets open at once).
    pub concurrency: usize,
    /// How long one probe may wait for an answer.
    pub timeout: Duration,
    /// How many more times a filtered port is probed.
    pub retries: u32,
    /// Read what an open port says first, for up to this long.
    pub banner: Option<Duration>,
    /// The family names resolve in (and literals must be of).
    pub family: Family,
    /// The local address and port probes are made from.
    pub source: Source,
}

impl ScanConfig {
    /// A scan of `ports` on `hosts` with the command's defaults: 256
    /// probes at once, 1 s per probe, no retries, no banners.
    pub fn new(hosts: Vec<Host>, ports: Vec<u16>) -> ScanConfig {
        ScanConfig {
            hosts,
            ports,
            concurrency: 256,
            timeout: Duration::from_secs(1),
            retries: 0,
            banner: None,
            family: Family::default(),
            source: Source::default(),
        }
    }
}

/// The result of one port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortResult {
    /// The host's address.
    pub addr: IpAddr,
    /// The port.
    pub port: u16,
    /// What the probe found.
    pub state: PortState,
    /// With `--banner`, what an open port sent first (at most
    /// [`MAX_BANNER`] bytes; empty when it sent nothing in time).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "lossy")]
    pub banner: Option<Vec<u8>>,
    /// Probes made (more than 1 when a filtered port was retried).
    pub attempts: u32,
}

fn lossy<S: serde::Serializer>(banner: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match banner {
        Some(b) => s.serialize_str(&String::from_utf8_lossy(b)),
        None => s.serialize_none(),
    }
}

/// What a scan found.
#[derive(Debug, Clone)]
pub struct ScanReport {
    /// Every probed port, by address (in the order the hosts were given)
    /// then port.
    pub results: Vec<PortResult>,
    /// How long the scan took.
    pub elapsed: Duration,
}

impl ScanReport {
    /// How many ports are in `state`.
    pub fn count(&self, state: PortState) -> usize {
        self.results.iter().filter(|r| r.state == state).count()
    }
}

/// Parses a port list: `22,80,8000-8100`. Every port from 1 to 65535;
/// the result is ascending, without duplicates.
pub fn parse_ports(s: &str) -> Result<Vec<u16>> {
    let bad = |why: String| Error::usage(format!("invalid ports {s:?}: {why}"));
    let port = |t: &str| -> Result<u16> {
        match t.trim().parse::<u16>() {
            Ok(p) if p >= 1 => Ok(p),
            _ => Err(bad(format!("{:?} is not a port from 1 to 65535", t.trim()))),
        }
    };
    let mut seen = vec![false; 65_536];
    for part in s.split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (port(lo)?, port(hi)?),
            None => {
                let p = port(part)?;
                (p, p)
            }
        };
        if lo > hi {
            return Err(bad(format!("{:?}: the range runs backwards", part.trim())));
        }
        for p in lo..=hi {
            seen[p as usize] = true;
        }
    }
    Ok((1..=65_535u16).filter(|p| seen[*p as usize]).collect())
}

/// A scan target as given: a name, an address, or a CIDR block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostSpec {
    /// A name or an address.
    One(Host),
    /// A block of addresses (`127.0.0.0/30`): every address in it.
    Block(IpAddr, u8),
}

impl HostSpec {
    /// How many addresses it stands for (a name counts as one: its first
    /// address is scanned).
    pub fn count(&self) -> u128 {
        match self {
            HostSpec::One(_) => 1,
            HostSpec::Block(IpAddr::V4(_), prefix) => 1u128 << (32 - u32::from(*prefix)),
            HostSpec::Block(IpAddr::V6(_), prefix) => {
                let bits = 128 - u32::from(*prefix);
                if bits >= 128 {
                    u128::MAX
                } else {
                    1u128 << bits
                }
            }
        }
    }
}

/// Parses hosts: a comma-separated list of names, addresses (IPv6 with or
/// without brackets) and CIDR blocks (`127.0.0.1/30`, `::1/128`).
pub fn parse_hosts(s: &str) -> Result<Vec<HostSpec>> {
    let bad = |why: String| Error::usage(format!("invalid host {s:?}: {why}"));
    let mut out = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err(bad("empty host".into()));
        }
        let unbracket = |t: &str| -> String {
            t.strip_prefix('[')
                .and_then(|r| r.strip_suffix(']'))
                .unwrap_or(t)
                .to_owned()
        };
        if let Some((addr, prefix)) = part.split_once('/') {
            let ip: IpAddr = unbracket(addr)
                .parse()
                .map_err(|_| bad(format!("{addr:?} is not an IP address")))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let prefix: u8 =
                prefix.parse().ok().filter(|p| *p <= max).ok_or_else(|| {
                    bad(format!("/{prefix} is not a prefix length from 0 to {max}"))
                })?;
            out.push(HostSpec::Block(network(ip, prefix), prefix));
        } else if let Ok(ip) = unbracket(part).parse::<IpAddr>() {
            out.push(HostSpec::One(Host::Ip(ip)));
        } else {
            // Validate the name the way endpoints do.
            let hp: HostPort = match format!("tcp://{part}:1").parse::<crate::endpoint::Endpoint>()
            {
                Ok(e) => e
                    .host_port()
                    .cloned()
                    .ok_or_else(|| bad("not a host".into()))?,
                Err(_) => {
                    return Err(bad(format!(
                        "{part:?} is not a host name, address or CIDR block"
                    )));
                }
            };
            out.push(HostSpec::One(hp.host));
        }
    }
    Ok(out)
}

/// The first address of the block `ip/prefix`.
fn network(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

/// Expands host specs into hosts, checking first that `hosts × ports`
/// stays within [`MAX_PROBES`] (a usage error naming the sizes
/// otherwise).
pub fn expand(specs: &[HostSpec], ports: usize) -> Result<Vec<Host>> {
    let hosts: u128 = specs
        .iter()
        .fold(0u128, |acc, s| acc.saturating_add(s.count()));
    let probes = hosts.saturating_mul(ports as u128);
    if probes > u128::from(MAX_PROBES) {
        return Err(Error::usage(format!(
            "{hosts} host(s) × {ports} port(s) is more than {MAX_PROBES} probes: scan a smaller block or fewer ports"
        )));
    }
    let mut out = Vec::with_capacity(hosts as usize);
    for spec in specs {
        match spec {
            HostSpec::One(host) => out.push(host.clone()),
            HostSpec::Block(IpAddr::V4(base), _) => {
                let first = u32::from(*base);
                for i in 0..spec.count() as u32 {
                    out.push(Host::Ip(IpAddr::V4(Ipv4Addr::from(first.wrapping_add(i)))));
                }
            }
            HostSpec::Block(IpAddr::V6(base), _) => {
                let first = u128::from(*base);
                for i in 0..spec.count() {
                    out.push(Host::Ip(IpAddr::V6(Ipv6Addr::from(first.wrapping_add(i)))));
                }
            }
        }
    }
    Ok(out)
}

/// Resolves the hosts: an address stays itself, a name becomes its first
/// address in the family (127.0.0.1 for `localhost`, ::1 with `-6`).
async fn resolve(config: &ScanConfig, family: Family) -> Result<Vec<IpAddr>> {
    let mut out = Vec::with_capacity(config.hosts.len());
    for host in &config.hosts {
        let hp = HostPort {
            host: host.clone(),
            port: 0,
        };
        let addrs = hp.resolve_in(false, family).await?;
        let addr = addrs
            .first()
            .ok_or_else(|| Error::new(ErrorKind::Resolve, format!("resolve {host}")))?;
        if !out.contains(&addr.ip()) {
            out.push(addr.ip());
        }
    }
    Ok(out)
}

/// Runs the scan. An error only for what makes every probe pointless: a
/// host that does not resolve, a source address that cannot be bound, no
/// file descriptors left.
pub async fn run(config: &ScanConfig) -> Result<ScanReport> {
    let start = Instant::now();
    let family = match config.source.ip {
        Some(ip) => config
            .family
            .and(Family::of(ip), &format!("the source address {ip}"))?,
        None => config.family,
    };
    let addrs = resolve(config, family).await?;
    let concurrency = if config.source.port.is_some() {
        // Two probes cannot hold the same source port at once.
        1
    } else {
        config.concurrency.max(1)
    };
    let mut todo = addrs.iter().enumerate().flat_map(|(h, addr)| {
        config
            .ports
            .iter()
            .map(move |p| (h, SocketAddr::new(*addr, *p)))
    });
    let mut results = Vec::new();
    let mut tasks = JoinSet::new();
    loop {
        while tasks.len() < concurrency {
            let Some((h, addr)) = todo.next() else { break };
            let config = config.clone_probe();
            tasks.spawn(async move { (h, probe(addr, &config).await) });
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        let (h, result) = joined.map_err(|e| {
            Error::new(ErrorKind::Io, "scan").with_detail(format!("probe task failed: {e}"))
        })?;
        results.push((h, result?));
    }
    results.sort_by_key(|(h, r)| (*h, r.port));
    Ok(ScanReport {
        results: results.into_iter().map(|(_, r)| r).collect(),
        elapsed: start.elapsed(),
    })
}

/// What a probe needs of the config (cheap to copy into every task).
#[derive(Debug, Clone, Copy)]
struct ProbeConfig {
    timeout: Duration,
    retries: u32,
    banner: Option<Duration>,
    source: Source,
}

impl ScanConfig {
    fn clone_probe(&self) -> ProbeConfig {
        ProbeConfig {
            timeout: self.timeout,
            retries: self.retries,
            banner: self.banner,
            source: self.source,
        }
    }
}

/// Probes one port, retrying while it looks filtered.
async fn probe(addr: SocketAddr, config: &ProbeConfig) -> Result<PortResult> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let outcome = tokio::time::timeout(config.timeout, dial(addr, config.source)).await;
        let state = match outcome {
            Ok(Ok(stream)) => {
                let banner = match config.banner {
                    Some(wait) => Some(read_banner(&stream, wait).await),
                    None => None,
                };
                // An abortive close: no TIME_WAIT left behind.
                let _ = SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                drop(stream);
                return Ok(PortResult {
                    addr: addr.ip(),
                    port: addr.port(),
                    state: PortState::Open,
                    banner,
                    attempts,
                });
            }
            Ok(Err(err)) => match ErrorKind::of_io(&err) {
                ErrorKind::Refused | ErrorKind::Reset => PortState::Closed,
                ErrorKind::Timeout | ErrorKind::Unreachable => PortState::Filtered,
                _ => return Err(Error::io(format!("probe {addr}"), err)),
            },
            Err(_) => PortState::Filtered,
        };
        if state == PortState::Closed || attempts > config.retries {
            return Ok(PortResult {
                addr: addr.ip(),
                port: addr.port(),
                state,
                banner: None,
                attempts,
            });
        }
    }
}

/// Reads what the peer sends first: up to [`MAX_BANNER`] bytes, for at
/// most `wait` (stopping early at a newline after some text, or at EOF).
async fn read_banner(stream: &TcpStream, wait: Duration) -> Vec<u8> {
    let deadline = crate::deadline::from_now(wait);
    let mut banner = Vec::new();
    let mut buf = [0u8; MAX_BANNER];
    loop {
        let want = MAX_BANNER - banner.len();
        if want == 0 {
            return banner;
        }
        let read = tokio::time::timeout_at(deadline, async {
            stream.readable().await?;
            stream.try_read(&mut buf[..want])
        })
        .await;
        match read {
            // The time is up, or the peer closed.
            Err(_) | Ok(Ok(0)) => return banner,
            Ok(Ok(n)) => {
                banner.extend_from_slice(&buf[..n]);
                if banner.ends_with(b"\n") {
                    return banner;
                }
            }
            // A spurious wake-up: wait again.
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Ok(Err(_)) => return banner,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(timeout_ms: u64, retries: u32) -> ProbeConfig {
        ProbeConfig {
            timeout: Duration::from_millis(timeout_ms),
            retries,
            banner: None,
            source: Source::default(),
        }
    }

    #[tokio::test]
    async fn open_and_closed_ports() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap();
        let r = probe(open, &config(5000, 0)).await.unwrap();
        assert_eq!((r.state, r.attempts), (PortState::Open, 1));
        drop(listener);
        // Refused: closed at once, never retried.
        let r = probe(open, &config(5000, 3)).await.unwrap();
        assert_eq!((r.state, r.attempts), (PortState::Closed, 1));
    }

    #[tokio::test]
    async fn a_port_that_never_answers_is_filtered_after_the_retries() {
        // A listener whose accept queue is full: Linux drops further SYNs,
        // so a connect neither succeeds nor is refused.
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket
            .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .unwrap();
        socket.listen(0).unwrap();
        let addr = socket.local_addr().unwrap().as_socket().unwrap();
        // Fill the queue until a connect times out.
        let mut fill = Vec::new();
        for _ in 0..16 {
            match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                Ok(stream) => fill.push(stream),
                Err(_) => break,
            }
        }
        let r = probe(addr, &config(200, 1)).await.unwrap();
        assert_eq!(r.state, PortState::Filtered, "{} queued", fill.len());
        assert_eq!(r.attempts, 2, "one retry");
    }

    #[test]
    fn ports_as_lists_and_ranges() {
        assert_eq!(
            parse_ports("22,80,8000-8003").unwrap(),
            [22, 80, 8000, 8001, 8002, 8003]
        );
        assert_eq!(parse_ports("80, 22,22,21-23").unwrap(), [21, 22, 23, 80]);
        assert_eq!(parse_ports("1-65535").unwrap().len(), 65_535);
        for bad in ["", "0", "65536", "a", "10-5", "1-", "-5", "1,,2", "1-2-3"] {
            let err = parse_ports(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Usage, "{bad}");
        }
    }

    #[test]
    fn hosts_as_names_addresses_and_blocks() {
        let specs = parse_hosts("127.0.0.1/30,localhost,::1,[::1]").unwrap();
        assert_eq!(
            specs,
            [
                HostSpec::Block("127.0.0.0".parse().unwrap(), 30),
                HostSpec::One(Host::Name("localhost".into())),
                HostSpec::One(Host::Ip("::1".parse().unwrap())),
                HostSpec::One(Host::Ip("::1".parse().unwrap())),
            ]
        );
        let hosts = expand(&specs[..1], 10).unwrap();
        let want: Vec<Host> = (0..4)
            .map(|i| Host::Ip(format!("127.0.0.{i}").parse().unwrap()))
            .collect();
        assert_eq!(hosts, want);
        assert_eq!(HostSpec::Block("::".parse().unwrap(), 0).count(), u128::MAX);
        assert_eq!(
            HostSpec::Block("10.0.0.0".parse().unwrap(), 0).count(),
            1 << 32
        );
        for bad in ["", "1.2.3.4/33", "::1/129", "x y", "1.2.3.4/", "a/8"] {
            assert!(parse_hosts(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn absurd_sizes_are_refused_before_expanding() {
        let all = parse_ports("1-65535").unwrap();
        assert!(expand(&parse_hosts("127.0.0.1").unwrap(), all.len()).is_ok());
        for (hosts, ports) in [("127.0.0.1/31", all.len()), ("10.0.0.0/8", 1), ("::/0", 1)] {
            let err = expand(&parse_hosts(hosts).unwrap(), ports).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Usage);
            assert!(err.to_string().contains("probes"), "{err}");
        }
    }
}
