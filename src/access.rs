//! Access control for listening servers (`--allow`, `--deny` and their
//! `-file` forms): which peers may connect.
//!
//! Rules are addresses (`192.0.2.7`, `::1`, `[::1]`), CIDR blocks
//! (`10.0.0.0/8`, `fd00::/8`) or host names (`db.internal`, resolved once
//! at start, every address it has; a name may carry a prefix too,
//! `gateway/24`). Parsing ([`Entry::parse`], [`parse_list`]) and matching
//! ([`AccessList::permits`]) are pure; only [`AccessList::build`] does I/O
//! (resolving names). No CIDR crate: a block is an address and a prefix
//! length, and matching is a masked compare of two integers.
//!
//! The decision follows ncat: a peer is refused when an allow list exists
//! and it matches no entry of it, or when it matches any deny entry (deny
//! wins over allow). An IPv4-mapped IPv6 peer (`::ffff:a.b.c.d`, what a
//! dual-stack `[::]` listener sees for an IPv4 client) is matched as the
//! IPv4 address it carries, and so is an IPv4-mapped rule.
//!
//! The accept loop ([`server`](crate::server)) checks the list right after
//! `accept(2)`, before any TLS handshake, and closes a refused connection at
//! once; [`AccessList::log_denied`] logs refusals at most once a second,
//! with a count of the ones it did not log.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};
use crate::settings::Setting;

/// An address block: every address whose first `prefix` bits are those of
/// `addr` (IPv4-mapped IPv6 blocks are stored as IPv4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    /// The block of `addr`'s first `prefix` bits; `None` when the prefix
    /// is longer than the address.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Net> {
        let (addr, prefix) = match addr {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) if prefix >= 96 => (IpAddr::V4(v4), prefix - 96),
                _ => (addr, prefix),
            },
            IpAddr::V4(_) => (addr, prefix),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Net { addr, prefix })
    }

    /// The block holding exactly `addr`.
    pub fn host(addr: IpAddr) -> Net {
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        // A full-length prefix always fits.
        Net::new(addr, prefix).unwrap_or(Net { addr, prefix })
    }

    /// Whether `ip` is in the block (an IPv4-mapped `ip` as its IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = mask32(self.prefix);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = mask128(self.prefix);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn mask32(prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p => u32::MAX << (32 - u32::from(p.min(32))),
    }
}

fn mask128(prefix: u8) -> u128 {
    match prefix {
        0 => 0,
        p => u128::MAX << (128 - u32::from(p.min(128))),
    }
}

/// `ip`, with an IPv4-mapped IPv6 address turned into its IPv4 address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

/// One rule as written: a block, or a host name still to resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// An address or a CIDR block.
    Net(Net),
    /// A host name, with an optional prefix applied to each of its
    /// addresses.
    Name {
        /// The name.
        name: String,
        /// The prefix length, if one was given.
        prefix: Option<u8>,
    },
}

impl Entry {
    /// Parses one rule: `ADDR`, `[IPV6]`, `ADDR/PREFIX` or `NAME[/PREFIX]`.
    /// The error is a short reason, without the rule itself.
    pub fn parse(s: &str) -> std::result::Result<Entry, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty rule".into());
        }
        let (host, prefix) = match s.rsplit_once('/') {
            Some((host, p)) => {
                let p: u8 = p
                    .parse()
                    .map_err(|_| format!("prefix {p:?} is not a number from 0 to 128"))?;
                (host, Some(p))
            }
            None => (s, None),
        };
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            let full = if canonical(ip).is_ipv4() && ip.is_ipv4() {
                32
            } else {
                128
            };
            return Net::new(ip, prefix.unwrap_or(full))
                .map(Entry::Net)
                .ok_or_else(|| {
                    format!(
                        "prefix /{} is longer than the address ({full} bits)",
                        prefix.unwrap_or(full)
                    )
                });
        }
        let valid_name = !bare.is_empty()
            && bare.len() <= 253
            && bare
                .split('.')
                .all(|label| !label.is_empty() || bare.ends_with('.'))
            && bare
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
        if !valid_name {
            return Err("not an address, a cidr block or a host name".into());
        }
        if let Some(p) = prefix
            && p > 128
        {
            return Err(format!("prefix /{p} is longer than any address"));
        }
        Ok(Entry::Name {
            name: bare.to_owned(),
            prefix,
        })
    }
}

/// The rules of an allow or deny file: one a line, `#` starts a comment,
/// blank lines ignored. The error names the line.
pub fn parse_list(text: &str) -> std::result::Result<Vec<Entry>, String> {
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let entry = Entry::parse(line).map_err(|e| format!("line {}: {line:?}: {e}", i + 1))?;
        entries.push(entry);
    }
    Ok(entries)
}

/// Where rules come from, as the command line gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessRules {
    /// `--allow` values.
    pub allow: Vec<String>,
    /// `--allow-file` paths.
    pub allow_files: Vec<std::path::PathBuf>,
    /// `--deny` values.
    pub deny: Vec<String>,
    /// `--deny-file` paths.
    pub deny_files: Vec<std::path::PathBuf>,
}

impl AccessRules {
    /// Whether any rule source is given.
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty()
            && self.allow_files.is_empty()
            && self.deny.is_empty()
            && self.deny_files.is_empty()
    }
}

/// How often a refused connection is logged, at most.
const LOG_EVERY: Duration = Duration::from_secs(1);

/// The resolved allow and deny lists of a server.
#[derive(Debug)]
pub struct AccessList {
    /// `None`: no allow list, everyone not denied may connect.
    allow: Option<Vec<Net>>,
    deny: Vec<Net>,
    denied: AtomicU64,
    log: Mutex<RateLimit>,
}

impl PartialEq for AccessList {
    fn eq(&self, other: &AccessList) -> bool {
        self.allow == other.allow && self.deny == other.deny
    }
}

impl Eq for AccessList {}

impl AccessList {
    /// A list from resolved blocks. An `allow` of `Some(vec![])` refuses
    /// everyone (an allow file with no entries, say).
    pub fn new(allow: Option<Vec<Net>>, deny: Vec<Net>) -> AccessList {
        AccessList {
            allow,
            deny,
            denied: AtomicU64::new(0),
            log: Mutex::new(RateLimit::new(LOG_EVERY)),
        }
    }

    /// Reads the files, parses every rule and resolves the names (all of
    /// their addresses). Errors are usage errors naming the flag and rule,
    /// or resolution errors (exit code 3) naming the host.
    pub async fn build(rules: &AccessRules) -> Result<AccessList> {
        let allow_given = !rules.allow.is_empty() || !rules.allow_files.is_empty();
        let allow = resolve_all(
            collect(
                Setting::Allow,
                &rules.allow,
                Setting::AllowFile,
                &rules.allow_files,
            )?,
            Setting::Allow,
        )
        .await?;
        let deny = resolve_all(
            collect(
                Setting::Deny,
                &rules.deny,
                Setting::DenyFile,
                &rules.deny_files,
            )?,
            Setting::Deny,
        )
        .await?;
        Ok(AccessList::new(allow_given.then_some(allow), deny))
    }

    /// Whether a peer at `ip` may connect.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let allowed = match &self.allow {
            None => true,
            Some(allow) => allow.iter().any(|net| net.contains(ip)),
        };
        allowed && !self.deny.iter().any(|net| net.contains(ip))
    }

    /// Counts a refused connection from `peer` and logs it, at most once
    /// a second (saying how many went unlogged in between). An
    /// IPv4-mapped peer is shown as the IPv4 address it is.
    pub fn log_denied(&self, peer: SocketAddr) {
        let peer = SocketAddr::new(canonical(peer.ip()), peer.port());
        self.denied.fetch_add(1, Ordering::Relaxed);
        let decision = match self.log.lock() {
            Ok(mut limit) => limit.check(Instant::now()),
            Err(_) => return,
        };
        if let Some(skipped) = decision {
            if skipped > 0 {
                tracing::info!(
                    "{peer}: connection denied by the access rules ({skipped} more denied since the last message)"
                );
            } else {
                tracing::info!("{peer}: connection denied by the access rules");
            }
        }
    }

    /// Connections refused so far.
    pub fn denied(&self) -> u64 {
        self.denied.load(Ordering::Relaxed)
    }
}

/// The entries of the `flag` values and `file_flag` files.
fn collect(
    flag: Setting,
    values: &[String],
    file_flag: Setting,
    files: &[std::path::PathBuf],
) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for value in values {
        // A value may list several rules separated by commas, as ncat's.
        for rule in value.split(',') {
            let entry = Entry::parse(rule)
                .map_err(|e| Error::usage(format!("invalid {flag} {rule:?}: {e}")))?;
            entries.push(entry);
        }
    }
    for path in files {
        entries.extend(read_file(file_flag, path)?);
    }
    Ok(entries)
}

fn read_file(flag: Setting, path: &Path) -> Result<Vec<Entry>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("read {flag} {}", path.display()), e))?;
    parse_list(&text).map_err(|e| Error::usage(format!("{flag} {}: {e}", path.display())))
}

/// Resolves the names among `entries` (once, at start).
async fn resolve_all(entries: Vec<Entry>, flag: Setting) -> Result<Vec<Net>> {
    let mut nets = Vec::new();
    for entry in entries {
        match entry {
            Entry::Net(net) => nets.push(net),
            Entry::Name { name, prefix } => {
                let addrs = tokio::net::lookup_host((name.as_str(), 0))
                    .await
                    .map_err(|e| {
                        Error::new(ErrorKind::Resolve, format!("resolve {flag} {name}"))
                            .with_detail(e.to_string())
                    })?;
                let mut found = false;
                for addr in addrs {
                    let ip = addr.ip();
                    let full = if canonical(ip).is_ipv4() { 32 } else { 128 };
                    let net = Net::new(ip, prefix.unwrap_or(full).min(full))
                        .unwrap_or_else(|| Net::host(ip));
                    if !nets.contains(&net) {
                        nets.push(net);
                    }
                    found = true;
                }
                if !found {
                    return Err(
                        Error::new(ErrorKind::Resolve, format!("resolve {flag} {name}"))
                            .with_detail("no addresses"),
                    );
                }
            }
        }
    }
    Ok(nets)
}

/// At most one message per period; counts the ones held back.
#[derive(Debug)]
struct RateLimit {
    period: Duration,
    last: Option<Instant>,
    skipped: u64,
}

impl RateLimit {
    fn new(period: Duration) -> RateLimit {
        RateLimit {
            period,
            last: None,
            skipped: 0,
        }
    }

    /// `Some(held back since the last message)` when a message may go out
    /// at `now`; `None` when it is held back.
    fn check(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.saturating_duration_since(last) < self.period => {
                self.skipped += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.skipped))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn net(s: &str) -> Net {
        match Entry::parse(s).expect("rule") {
            Entry::Net(n) => n,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn addresses_blocks_and_names_parse() {
        assert_eq!(net("192.0.2.7"), Net::host(ip("192.0.2.7")));
        assert_eq!(net("[::1]"), Net::host(ip("::1")));
        assert_eq!(net("10.0.0.0/8").to_string(), "10.0.0.0/8");
        assert_eq!(net("fd00::/8").to_string(), "fd00::/8");
        // A mapped rule is an IPv4 rule.
        assert_eq!(net("::ffff:10.1.0.0/112").to_string(), "10.1.0.0/16");
        assert_eq!(net("::ffff:127.0.0.1"), Net::host(ip("127.0.0.1")));
        assert_eq!(
            Entry::parse("localhost"),
            Ok(Entry::Name {
                name: "localhost".into(),
                prefix: None
            })
        );
        assert_eq!(
            Entry::parse("gw.example/24"),
            Ok(Entry::Name {
                name: "gw.example".into(),
                prefix: Some(24)
            })
        );
    }

    #[test]
    fn bad_rules_are_refused_with_a_reason() {
        for (rule, reason) in [
            ("", "empty"),
            ("10.0.0.0/33", "longer than the address"),
            ("::/129", "longer than the address"),
            ("10.0.0.0/x", "not a number"),
            ("a b", "not an address"),
            ("host/200", "longer than any address"),
            ("1.2.3.4:80", "not an address"),
        ] {
            let err = Entry::parse(rule).expect_err(rule);
            assert!(err.contains(reason), "{rule}: {err}");
        }
    }

    #[test]
    fn blocks_match_by_prefix() {
        let n = net("10.1.0.0/16");
        assert!(n.contains(ip("10.1.255.3")));
        assert!(!n.contains(ip("10.2.0.1")));
        assert!(net("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(!net("0.0.0.0/0").contains(ip("::1")));
        assert!(net("::/0").contains(ip("2001:db8::1")));
        assert!(net("2001:db8::/32").contains(ip("2001:db8:ffff::1")));
        assert!(!net("2001:db8::/32").contains(ip("2001:db9::1")));
        assert!(net("127.0.0.1").contains(ip("127.0.0.1")));
        assert!(!net("127.0.0.1").contains(ip("127.0.0.2")));
    }

    #[test]
    fn a_mapped_peer_matches_its_ipv4_rules_only() {
        let mapped = ip("::ffff:127.0.0.1");
        assert!(net("127.0.0.0/8").contains(mapped));
        assert!(!net("::1").contains(mapped));
        assert!(!net("::/0").contains(mapped));
        let list = AccessList::new(Some(vec![net("127.0.0.1")]), vec![]);
        assert!(list.permits(mapped));
        assert!(!list.permits(ip("::1")));
    }

    #[test]
    fn deny_wins_over_allow_and_no_allow_list_allows_all() {
        let list = AccessList::new(Some(vec![net("10.0.0.0/8")]), vec![net("10.0.0.5")]);
        assert!(list.permits(ip("10.0.0.4")));
        assert!(!list.permits(ip("10.0.0.5")));
        assert!(!list.permits(ip("192.0.2.1")));
        let deny_only = AccessList::new(None, vec![net("::1")]);
        assert!(deny_only.permits(ip("127.0.0.1")));
        assert!(!deny_only.permits(ip("::1")));
        let empty_allow = AccessList::new(Some(vec![]), vec![]);
        assert!(!empty_allow.permits(ip("127.0.0.1")));
    }

    #[test]
    fn files_have_comments_and_blank_lines() {
        let text = "# office\n10.0.0.0/8   # lan\n\n  ::1\nlocalhost\n";
        let entries = parse_list(text).expect("list");
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0], Entry::Net(net("10.0.0.0/8")));
        let err = parse_list("::1\n10.0.0.0/99\n").expect_err("bad line");
        assert!(err.starts_with("line 2: \"10.0.0.0/99\""), "{err}");
    }

    #[tokio::test]
    async fn names_resolve_at_build() {
        let rules = AccessRules {
            allow: vec!["localhost,192.0.2.0/24".into()],
            ..AccessRules::default()
        };
        let list = AccessList::build(&rules).await.expect("build");
        assert!(list.permits(ip("127.0.0.1")));
        assert!(list.permits(ip("192.0.2.200")));
        assert!(!list.permits(ip("198.51.100.1")));
        let bad = AccessRules {
            deny: vec!["10.0.0.0/40".into()],
            ..AccessRules::default()
        };
        let err = AccessList::build(&bad).await.expect_err("bad rule");
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("deny"), "{err}");
    }

    #[test]
    fn refusals_are_logged_at_most_once_a_period() {
        let mut limit = RateLimit::new(Duration::from_secs(1));
        let t0 = Instant::now();
        assert_eq!(limit.check(t0), Some(0));
        assert_eq!(limit.check(t0 + Duration::from_millis(10)), None);
        assert_eq!(limit.check(t0 + Duration::from_millis(900)), None);
        assert_eq!(limit.check(t0 + Duration::from_millis(1000)), Some(2));
        assert_eq!(limit.check(t0 + Duration::from_millis(1500)), None);
        assert_eq!(limit.check(t0 + Duration::from_secs(3)), Some(1));
    }
}
