//! Arguments shared by several commands (retry, socket options) and the
//! value parsers for durations.

use std::io::{self, Write};
use std::path::PathBuf;
use std::time::Duration;

use std::net::IpAddr;

use clap::Args;
use netcrab::endpoint::{Endpoint, Family, Scheme};
use netcrab::error::{Error, Result};
use netcrab::proxy::{ProxyOptions, ProxyUrl};
use netcrab::retry::RetryPolicy;
use netcrab::tls::{ServerVerification, TlsClientOptions};
use netcrab::transport::Source;

/// The ranges of duration, size and count flags, shown in `--help`. Keep
/// in step with the parsers below and the README.
pub const RANGES: &str = "\
Ranges (a value outside one is a usage error, exit 2):
  DURATION  250ms, 10s, 1m30s, 2d or a number of seconds; 0 to 30d
            (--keepalive: 1s to 32767s, Linux's cap; relay --udp-idle: 100ms to 1d)
  BYTES     512, 4k/4KiB, 1m/1MiB, 1g/1GiB (powers of 1024); 1 to 1GiB
  N         --max-conns and --connections: 1 to 1000000; --retry: 0 to 1000000;
            --pipeline: 1 to 65536; scan -c: 1 to 16384; scan --retries: 0 to 10
  PORT      --source-port: 1 to 65535
  CODES     wait --expect-status: status codes and ranges from 100 to 599, e.g. 200,204,300-399";

/// The long help's epilogue: a command's examples, then the flag ranges
/// and the exit codes (`after_long_help` replaces `after_help` under
/// `--help`, so all go in).
pub fn with_exit_codes(examples: &str) -> String {
    format!("{examples}\n\n{RANGES}\n\n{}", super::exit_codes::text())
}

/// The longest duration any flag accepts: 30 days. Longer is a typo, not
/// a plan, and every deadline computed from it stays far from overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 86_400);

/// Linux's cap on TCP keepalive times (`TCP_KEEPIDLE`, `TCP_KEEPINTVL`):
/// 32767 s. A longer `--keepalive` would fail on every connection.
pub const MAX_KEEPALIVE: Duration = Duration::from_secs(32_767);

/// The largest byte count a size flag accepts: 1 GiB.
pub const MAX_SIZE: u64 = 1 << 30;

/// The most connections `--max-conns` and `bench -c` accept: a million
/// (the kernel's default `fs.nr_open` is 1,048,576 file descriptors).
pub const MAX_CONNS: u64 = 1_000_000;

/// The most retries `--retry` accepts (with backoff, years of attempts).
pub const MAX_RETRIES: i64 = 1_000_000;

/// Parses a duration such as `250ms`, `10s`, `1m30s`, `2d` or a bare
/// number of seconds. Never panics, whatever the input (huge numbers are
/// errors, not overflows).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        if !(secs.is_finite() && secs >= 0.0) {
            return Err(format!("{s:?} is not a non-negative duration"));
        }
        return Duration::try_from_secs_f64(secs).map_err(|_| format!("{s} is too large"));
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("{s:?} is not a duration like 500ms, 10s or 2m ({e})"))
}

/// Parses a duration and checks it lies in `min..=max`; the error names
/// the range.
pub fn parse_duration_in(s: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let range = || format!("{} to {}", fmt_limit(min), fmt_limit(max));
    match parse_duration(s) {
        Ok(d) if d >= min && d <= max => Ok(d),
        Ok(_) => Err(format!("{} is out of range ({})", s.trim(), range())),
        // A number too large for a Duration is out of range too.
        Err(_) if s.trim().parse::<f64>().is_ok_and(|n| n >= 0.0) => {
            Err(format!("{} is out of range ({})", s.trim(), range()))
        }
        Err(e) => Err(e),
    }
}

/// A range's bound as people write it: `0`, `500ms`, `32767s`, `30d`.
fn fmt_limit(d: Duration) -> String {
    let secs = d.as_secs();
    if d.is_zero() {
        "0".to_owned()
    } else if d.subsec_nanos() != 0 {
        format!("{}ms", d.as_millis())
    } else if secs.is_multiple_of(86_400) {
        format!("{}d", secs / 86_400)
    } else if secs.is_multiple_of(3_600) && secs < 86_400 {
        format!("{}h", secs / 3_600)
    } else {
        format!("{secs}s")
    }
}

/// A clap value parser for a duration flag with a range: a value outside
/// it is a usage error (exit 2) naming the flag and the range, e.g.
/// `error: --wait: 1e20 is out of range (0 to 30d)`.
#[derive(Debug, Clone, Copy)]
pub struct DurationIn {
    min: Duration,
    max: Duration,
}

/// A duration flag from 0 to [`MAX_DURATION`] (timeouts, delays).
pub const fn duration() -> DurationIn {
    DurationIn {
        min: Duration::ZERO,
        max: MAX_DURATION,
    }
}

/// A duration flag from `min` to `max`.
pub const fn duration_in(min: Duration, max: Duration) -> DurationIn {
    DurationIn { min, max }
}

/// A duration flag from 0 to `max`.
pub const fn duration_up_to(max: Duration) -> DurationIn {
    DurationIn {
        min: Duration::ZERO,
        max,
    }
}

/// `--keepalive`: 1 s to [`MAX_KEEPALIVE`] (the kernel counts in whole
/// seconds, from 1 to 32767).
pub const fn keepalive() -> DurationIn {
    DurationIn {
        min: Duration::from_secs(1),
        max: MAX_KEEPALIVE,
    }
}

impl clap::builder::TypedValueParser for DurationIn {
    type Value = Duration;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Duration, clap::Error> {
        let s = value.to_string_lossy();
        parse_duration_in(&s, self.min, self.max).map_err(|msg| flag_error(cmd, arg, &msg))
    }
}

/// A clap value parser for a byte count with a range (see [`parse_size`]).
#[derive(Debug, Clone, Copy)]
pub struct SizeIn {
    min: u64,
    max: u64,
}

/// A size flag from `min` to [`MAX_SIZE`] bytes.
pub const fn size(min: u64) -> SizeIn {
    SizeIn { min, max: MAX_SIZE }
}

impl clap::builder::TypedValueParser for SizeIn {
    type Value = usize;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<usize, clap::Error> {
        let s = value.to_string_lossy();
        parse_size_in(&s, self.min, self.max).map_err(|msg| flag_error(cmd, arg, &msg))
    }
}

/// A usage error for `arg`: `error: --flag: MESSAGE`, exit 2.
fn flag_error(cmd: &clap::Command, arg: Option<&clap::Arg>, msg: &str) -> clap::Error {
    let flag = arg.map_or_else(
        || "value".to_owned(),
        |a| match (a.get_long(), a.get_short()) {
            (Some(long), _) => format!("--{long}"),
            (None, Some(short)) => format!("-{short}"),
            (None, None) => a.get_id().to_string(),
        },
    );
    let mut cmd = cmd.clone();
    clap::Error::raw(
        clap::error::ErrorKind::ValueValidation,
        format!("{flag}: {msg}"),
    )
    .format(&mut cmd)
}

/// Parses a byte count: `512`, `4k`/`4KiB` (x1024), `1m`/`1MiB`, `1g`/`1GiB`.
/// Never panics, whatever the input.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("{s:?} is not a size like 512, 4k or 1MiB")),
    };
    if digits.is_empty() {
        return Err(format!("{s:?} is not a size like 512, 4k or 1MiB"));
    }
    // All digits: the only failure left is overflow.
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("{t} is too large"))
}

/// Parses a byte count and checks it lies in `min..=max`.
pub fn parse_size_in(s: &str, min: u64, max: u64) -> Result<usize, String> {
    let range = || format!("{} to {}", fmt_size(min), fmt_size(max));
    let n = match parse_size(s) {
        Ok(n) => n,
        Err(e) if e.ends_with("too large") => {
            return Err(format!("{} is out of range ({})", s.trim(), range()));
        }
        Err(e) => return Err(e),
    };
    if n < min || n > max {
        return Err(format!("{} is out of range ({})", s.trim(), range()));
    }
    usize::try_from(n).map_err(|_| format!("{} is out of range ({})", s.trim(), range()))
}

/// A byte count as people write it: `1`, `64KiB`, `1GiB`.
fn fmt_size(n: u64) -> String {
    match n {
        0 => "0".to_owned(),
        n if n.is_multiple_of(1 << 30) => format!("{}GiB", n >> 30),
        n if n.is_multiple_of(1 << 20) => format!("{}MiB", n >> 20),
        n if n.is_multiple_of(1 << 10) => format!("{}KiB", n >> 10),
        n => n.to_string(),
    }
}

/// A clap value parser for a count in `min..=max` (`--max-conns`, `-c`).
pub fn count(min: u64, max: u64) -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(min..=max)
}

/// A duration where `0` means "never" (used for timeouts that can be off).
pub fn optional(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

/// `-u`/`-U`: the transport of an address written without a scheme, as in
/// netcat.
#[derive(Debug, Clone, Default, Args)]
pub struct SchemeArgs {
    /// UDP: an address without a scheme means udp://HOST:PORT
    #[arg(short = 'u', long)]
    pub udp: bool,
    /// Unix socket: an address without a scheme is a socket path (or @NAME, an abstract socket); with --tls, TLS over it (tls+unix); with -u, a Unix datagram socket (unixgram)
    #[arg(short = 'U', long)]
    pub unix: bool,
}

impl SchemeArgs {
    /// The scheme the flags ask for, if any.
    pub fn scheme(&self) -> Option<Scheme> {
        if self.udp && self.unix {
            Some(Scheme::Unixgram)
        } else if self.udp {
            Some(Scheme::Udp)
        } else if self.unix {
            Some(Scheme::Unix)
        } else {
            None
        }
    }

    /// Parses `addr` with the flags' scheme as the default (`tls` is the
    /// `--tls` flag; with `-U` it means tls+unix); an address whose own
    /// scheme contradicts a flag is an error rather than a guess.
    pub fn parse(&self, addr: &str, tls: bool) -> Result<Endpoint> {
        let wanted = match (tls, self.scheme()) {
            (true, Some(other)) => match Scheme::Tls.with_base(other.base()) {
                Some(layered) => layered,
                None if other == Scheme::Unixgram => {
                    return Err(Error::usage("--tls conflicts with -U -u (unixgram)"));
                }
                None => {
                    return Err(Error::usage(format!(
                        "--tls conflicts with --{}",
                        other.as_str()
                    )));
                }
            },
            (true, None) => Scheme::Tls,
            (false, Some(wanted)) => wanted,
            (false, None) => return addr.parse(),
        };
        let endpoint = Endpoint::parse_with_default(addr, wanted)?;
        if endpoint.scheme() != wanted {
            let flag = match wanted {
                Scheme::Udp => "-u",
                Scheme::Unixgram => "-U -u",
                Scheme::Unix => "-U",
                Scheme::TlsUnix => "-U --tls",
                _ => "--tls",
            };
            return Err(Error::usage(format!(
                "{flag} asks for {} but the address {addr:?} is {}",
                wanted.as_str(),
                endpoint.scheme().as_str()
            )));
        }
        Ok(endpoint)
    }
}

/// `-4`/`-6`: restrict name resolution, connecting and listening to one
/// address family.
#[derive(Debug, Clone, Default, Args)]
pub struct FamilyArgs {
    /// IPv4 only: names resolve to IPv4 addresses, localhost is 127.0.0.1
    #[arg(short = '4', long = "ipv4")]
    pub ipv4: bool,
    /// IPv6 only: names resolve to IPv6 addresses, localhost is ::1
    #[arg(short = '6', long = "ipv6", conflicts_with = "ipv4")]
    pub ipv6: bool,
}

impl FamilyArgs {
    /// The family the flags ask for.
    pub fn family(&self) -> Family {
        if self.ipv4 {
            Family::V4
        } else if self.ipv6 {
            Family::V6
        } else {
            Family::Any
        }
    }

    /// The family, checked against an address given on the command line
    /// (`-6 127.0.0.1:80` is a usage error).
    pub fn check(&self, endpoint: &Endpoint) -> Result<Family> {
        let family = self.family();
        if let Some(hp) = endpoint.host_port() {
            family.check_host(&hp.host)?;
        }
        Ok(family)
    }
}

/// `-s`/`-p`: the local address and port connections are made from.
#[derive(Debug, Clone, Default, Args)]
pub struct SourceArgs {
    /// Connect from this local IP address (it must be one of this host's)
    #[arg(short = 's', long = "source", value_name = "ADDR", value_parser = parse_source_ip)]
    pub source: Option<IpAddr>,
    /// Connect from this local port (1 to 65535; not SO_REUSEADDR: a busy port is an error, exit 9)
    #[arg(short = 'p', long = "source-port", value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub source_port: Option<u16>,
}

impl SourceArgs {
    /// The source the flags ask for.
    pub fn source(&self) -> Source {
        Source {
            ip: self.source,
            port: self.source_port,
        }
    }
}

/// Parses a source address: an IP address, IPv6 with or without brackets.
pub fn parse_source_ip(s: &str) -> Result<IpAddr, String> {
    let t = s.trim();
    let bare = t
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(t);
    bare.parse::<IpAddr>()
        .map_err(|_| format!("{s:?} is not an IP address (a source is an address of this host, such as 127.0.0.2 or ::1)"))
}

/// The environment variables a proxy URL is taken from when no `--proxy`
/// is given, first set first (curl reads `ALL_PROXY` and `all_proxy`).
pub const PROXY_ENV: [&str; 3] = ["NETCRAB_PROXY", "ALL_PROXY", "all_proxy"];

/// `--proxy` and friends: the proxies a connection goes through.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Proxy")]
pub struct ProxyArgs {
    /// Connect through this proxy: socks5://[USER:PASSWORD@]HOST:PORT, socks5h:// (the proxy resolves names), socks4://, socks4a://, http:// (CONNECT) or https:// (TLS to the proxy); repeat to chain, each reached through the one before. Default: $NETCRAB_PROXY, else $ALL_PROXY, else $all_proxy
    #[arg(long, value_name = "URL")]
    pub proxy: Vec<String>,
    /// Connect directly, ignoring NETCRAB_PROXY and ALL_PROXY
    #[arg(long, conflicts_with = "proxy")]
    pub no_proxy: bool,
    /// https:// proxies: also trust the CA certificates in this PEM file (repeatable)
    #[arg(long, value_name = "FILE")]
    pub proxy_ca: Vec<PathBuf>,
    /// https:// proxies: do not verify the proxy's certificate
    #[arg(long, conflicts_with = "proxy_ca")]
    pub proxy_insecure: bool,
}

impl ProxyArgs {
    /// The proxies to use, from the flags or else the process environment.
    pub fn resolve(&self) -> Result<ProxyOptions> {
        self.resolve_with(|name| std::env::var(name).ok())
    }

    /// The proxies to use, from the flags or else from `env`.
    pub fn resolve_with(&self, env: impl Fn(&str) -> Option<String>) -> Result<ProxyOptions> {
        let mut from_env = false;
        let urls: Vec<String> = if !self.proxy.is_empty() {
            self.proxy.clone()
        } else if self.no_proxy {
            Vec::new()
        } else {
            match PROXY_ENV.iter().find_map(|name| {
                env(name)
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| (name, v))
            }) {
                Some((name, value)) => {
                    from_env = true;
                    let url = ProxyUrl::parse(value.trim())
                        .map_err(|e| Error::usage(format!("${name}: {}", e.detail())))?;
                    tracing::debug!("proxy {url} from ${name}");
                    vec![value.trim().to_owned()]
                }
                None => Vec::new(),
            }
        };
        let chain = urls
            .iter()
            .map(|u| ProxyUrl::parse(u))
            .collect::<Result<Vec<_>>>()?;
        let mut tls = TlsClientOptions::default();
        if self.proxy_insecure {
            tls.verification = ServerVerification::Insecure;
        } else if !self.proxy_ca.is_empty() {
            tls.verification = ServerVerification::Roots {
                ca: self.proxy_ca.clone(),
            };
        }
        let mut opts = ProxyOptions::default();
        opts.chain = chain;
        opts.tls = tls;
        opts.from_env = from_env;
        Ok(opts)
    }
}

/// `--retry*`: how connection attempts are retried.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Retry")]
pub struct RetryArgs {
    /// Retry a failed connection attempt up to N times (0 to 1000000)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=MAX_RETRIES))]
    pub retry: Option<u32>,
    /// Keep retrying for at most this long overall (no attempt cap unless --retry is given)
    #[arg(long, value_name = "DURATION", value_parser = duration())]
    pub retry_for: Option<Duration>,
    /// The backoff before the first retry; it doubles after each, with full jitter
    #[arg(long, value_name = "DURATION", value_parser = duration(), default_value = "100ms")]
    pub retry_delay: Duration,
    /// The largest backoff between retries
    #[arg(long, value_name = "DURATION", value_parser = duration(), default_value = "10s")]
    pub retry_max_delay: Duration,
}

impl RetryArgs {
    /// The policy these flags ask for; `default_retries` applies when
    /// neither `--retry` nor `--retry-for` is given.
    pub fn policy(&self, default_retries: u32) -> RetryPolicy {
        let max_retries = match (self.retry, self.retry_for) {
            (Some(n), _) => Some(n),
            (None, Some(_)) => None,
            (None, None) => Some(default_retries),
        };
        RetryPolicy {
            max_retries,
            deadline: self.retry_for,
            initial_delay: self.retry_delay,
            max_delay: self.retry_max_delay.max(self.retry_delay),
        }
    }
}

/// Writes `text` to stdout and flushes it. A closed stdout (`| head -1`)
/// is not an error for a command-line tool: the reader has what it wanted,
/// so `EPIPE` counts as success. Other write errors are i/o errors.
pub fn write_stdout(text: &str) -> Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(Error::io("write to stdout", e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_flags_set_the_default_and_must_agree() {
        let udp = SchemeArgs {
            udp: true,
            unix: false,
        };
        let unix = SchemeArgs {
            udp: false,
            unix: true,
        };
        assert_eq!(
            udp.parse("127.0.0.1:53", false).unwrap().scheme(),
            Scheme::Udp
        );
        assert_eq!(udp.parse("udp://h:1", false).unwrap().scheme(), Scheme::Udp);
        assert!(
            udp.parse("tcp://h:1", false)
                .unwrap_err()
                .to_string()
                .contains("-u asks for udp")
        );
        assert_eq!(
            unix.parse("/run/x.sock", false).unwrap().to_string(),
            "unix:///run/x.sock"
        );
        assert_eq!(
            unix.parse("@name", false).unwrap().to_string(),
            "unix:@name"
        );
        assert!(unix.parse("udp://h:1", false).is_err());
        assert_eq!(
            SchemeArgs::default().parse("h:1", false).unwrap().scheme(),
            Scheme::Tcp
        );
        let none = SchemeArgs::default();
        assert_eq!(none.parse("h:1", true).unwrap().scheme(), Scheme::Tls);
        assert!(
            none.parse("tcp://h:1", true)
                .unwrap_err()
                .to_string()
                .contains("--tls asks for tls")
        );
        assert!(
            udp.parse("h:1", true)
                .unwrap_err()
                .to_string()
                .contains("--tls conflicts with --udp")
        );
        // -U --tls: TLS over the Unix socket.
        assert_eq!(
            unix.parse("/run/x.sock", true).unwrap().to_string(),
            "tls+unix:///run/x.sock"
        );
        assert_eq!(
            unix.parse("tls+unix:@n", true).unwrap().to_string(),
            "tls+unix:@n"
        );
        assert!(
            unix.parse("unix:///x", true)
                .unwrap_err()
                .to_string()
                .contains("-U --tls asks for tls+unix")
        );
    }

    #[test]
    fn proxies_come_from_the_flags_else_the_environment() {
        let env = |name: &str| match name {
            "ALL_PROXY" => Some("socks5h://127.0.0.1:9050".to_owned()),
            "all_proxy" => Some("http://127.0.0.1:1".to_owned()),
            _ => None,
        };
        let none = ProxyArgs::default();
        let got = none.resolve_with(env).unwrap();
        assert!(got.from_env);
        assert_eq!(got.chain[0].to_string(), "socks5h://127.0.0.1:9050");
        // NETCRAB_PROXY first.
        let got = none
            .resolve_with(|n| {
                (n == "NETCRAB_PROXY")
                    .then(|| "socks4://127.0.0.1:2".to_owned())
                    .or_else(|| env(n))
            })
            .unwrap();
        assert_eq!(got.chain[0].to_string(), "socks4://127.0.0.1:2");
        // The lowercase one, as curl.
        let got = none
            .resolve_with(|n| (n == "all_proxy").then(|| "http://127.0.0.1:3".to_owned()))
            .unwrap();
        assert_eq!(got.chain[0].to_string(), "http://127.0.0.1:3");
        // --no-proxy and --proxy win over the environment.
        let direct = ProxyArgs {
            no_proxy: true,
            ..ProxyArgs::default()
        };
        assert!(direct.resolve_with(env).unwrap().chain.is_empty());
        let flags = ProxyArgs {
            proxy: vec!["socks5://127.0.0.1:1".into(), "http://127.0.0.1:2".into()],
            ..ProxyArgs::default()
        };
        let got = flags.resolve_with(env).unwrap();
        assert!(!got.from_env);
        assert_eq!(got.chain.len(), 2);
        // A bad variable is a usage error naming it, not its value.
        let err = none
            .resolve_with(|n| (n == "ALL_PROXY").then(|| "gopher://u:secret@h:1".to_owned()))
            .unwrap_err();
        assert!(err.to_string().starts_with("$ALL_PROXY: "), "{err}");
        assert!(!err.to_string().contains("secret"), "{err}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("128KiB"), Ok(131072));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert!(parse_size("1x").is_err());
        assert!(parse_size("k").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999999999999999").is_err());
    }

    #[test]
    fn ranges_name_their_bounds() {
        assert_eq!(
            parse_duration_in("1e20", Duration::ZERO, MAX_DURATION),
            Err("1e20 is out of range (0 to 30d)".to_owned())
        );
        assert_eq!(
            parse_duration_in("100000s", Duration::from_secs(1), MAX_KEEPALIVE),
            Err("100000s is out of range (1s to 32767s)".to_owned())
        );
        assert_eq!(
            parse_duration_in("30d", Duration::ZERO, MAX_DURATION),
            Ok(MAX_DURATION)
        );
        assert!(parse_duration_in("soon", Duration::ZERO, MAX_DURATION).is_err());
        assert_eq!(
            parse_size_in("18446744073709551615", 1, MAX_SIZE),
            Err("18446744073709551615 is out of range (1 to 1GiB)".to_owned())
        );
        assert_eq!(
            parse_size_in("99999999999999999999k", 1, MAX_SIZE),
            Err("99999999999999999999k is out of range (1 to 1GiB)".to_owned())
        );
        assert_eq!(parse_size_in("1GiB", 1, MAX_SIZE), Ok(1 << 30));
        assert_eq!(fmt_limit(Duration::from_millis(1500)), "1500ms");
        assert_eq!(fmt_limit(Duration::from_secs(7200)), "2h");
    }

    proptest::proptest! {
        /// No string makes a duration or size parser panic, and whatever
        /// they accept lies in the range.
        #[test]
        fn parsers_never_panic_on_any_string(s in "\\PC*") {
            let _ = parse_duration(&s);
            let _ = parse_size(&s);
            if let Ok(d) = parse_duration_in(&s, Duration::from_secs(1), MAX_KEEPALIVE) {
                proptest::prop_assert!(d >= Duration::from_secs(1) && d <= MAX_KEEPALIVE);
            }
            if let Ok(n) = parse_size_in(&s, 1, MAX_SIZE) {
                proptest::prop_assert!(n >= 1 && n as u64 <= MAX_SIZE);
            }
        }

        /// Numbers of every magnitude, with and without units.
        #[test]
        fn parsers_never_panic_on_any_number(
            n in proptest::num::f64::ANY,
            i in proptest::num::u64::ANY,
            unit in proptest::sample::select(vec![
                "", "ns", "us", "ms", "s", "m", "h", "d", "w", "y", "k", "KiB", "m", "MiB", "g", "GiB",
            ]),
        ) {
            for s in [format!("{n}{unit}"), format!("{n:e}{unit}"), format!("{i}{unit}"), format!("{i}{unit}{i}{unit}")] {
                if let Ok(d) = parse_duration_in(&s, Duration::ZERO, MAX_DURATION) {
                    proptest::prop_assert!(d <= MAX_DURATION);
                }
                if let Ok(n) = parse_size_in(&s, 1, MAX_SIZE) {
                    proptest::prop_assert!(n as u64 <= MAX_SIZE);
                }
                let _ = parse_duration(&s);
                let _ = parse_size(&s);
            }
        }
    }

    fn retry_args(retry: Option<u32>, retry_for: Option<u64>) -> RetryArgs {
        RetryArgs {
            retry,
            retry_for: retry_for.map(Duration::from_secs),
            retry_delay: Duration::from_millis(100),
            retry_max_delay: Duration::from_secs(10),
        }
    }

    #[test]
    fn retry_flags_resolve_to_a_policy() {
        assert_eq!(retry_args(None, None).policy(0).max_retries, Some(0));
        assert_eq!(retry_args(Some(3), None).policy(0).max_retries, Some(3));
        let p = retry_args(None, Some(5)).policy(0);
        assert_eq!(p.max_retries, None);
        assert_eq!(p.deadline, Some(Duration::from_secs(5)));
        assert_eq!(retry_args(Some(2), Some(5)).policy(0).max_retries, Some(2));
    }
}
