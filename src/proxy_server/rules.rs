//! Access rules for `netcrab proxy`: which destinations (`--allow-dest`,
//! `--deny-dest`) and which clients (`--allow`, `--deny`) are let through.
//! Pure: no I/O, no resolution.
//!
//! A rule is an IP address (`10.0.0.5`, `::1`), a CIDR block
//! (`127.0.0.0/8`, `fd00::/8`) or, for destinations, a host name
//! (`example.com` matches that name and every name under it;
//! `*.example.com` and `.example.com` only the names under it). An
//! IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) is matched as the IPv4
//! address it carries, so it cannot slip past an IPv4 rule.
//!
//! The decision for one address: a deny rule matching the requested name or
//! the address refuses it; otherwise, when allow rules exist, the name or
//! the address must match one; with no rules at all, everything is allowed
//! (loopback included).

use std::fmt;
use std::net::IpAddr;

/// One access rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// An address block: the address and its prefix length (32 or 128 for
    /// a single address).
    Net(IpAddr, u8),
    /// A host name, lowercase, without a trailing dot.
    Name {
        /// The name (without `*.` or the leading dot).
        name: String,
        /// Whether the name itself matches too (`example.com`), or only the
        /// names under it (`*.example.com`, `.example.com`).
        exact_too: bool,
    },
}

impl Rule {
    /// Parses a rule: an address, a CIDR block or (when `names`) a host
    /// name. The error is a short message for a usage error.
    pub fn parse(s: &str, names: bool) -> Result<Rule, String> {
        let t = s.trim();
        if let Some((addr, len)) = t.split_once('/') {
            let addr = strip_brackets(addr);
            let ip: IpAddr = addr
                .parse()
                .map_err(|_| format!("{s:?} is not an address block like 10.0.0.0/8"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let len: u8 = len
                .parse()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?;
            return Ok(Rule::Net(canonical(ip), canonical_len(ip, len)));
        }
        if let Ok(ip) = strip_brackets(t).parse::<IpAddr>() {
            let ip = canonical(ip);
            return Ok(Rule::Net(ip, if ip.is_ipv4() { 32 } else { 128 }));
        }
        if !names {
            return Err(format!("{s:?} is not an address or address block"));
        }
        let lower = t.to_ascii_lowercase();
        let (name, exact_too) = match lower.strip_prefix("*.").or_else(|| lower.strip_prefix('.')) {
            Some(rest) => (rest, false),
            None => (lower.as_str(), true),
        };
        let name = name.strip_suffix('.').unwrap_or(name);
        if !valid_name(name) {
            return Err(format!(
                "{s:?} is not an address, address block or host name"
            ));
        }
        Ok(Rule::Name {
            name: name.to_owned(),
            exact_too,
        })
    }

    fn matches_ip(&self, ip: IpAddr) -> bool {
        let Rule::Net(net, len) = self else {
            return false;
        };
        match (canonical(ip), net) {
            (IpAddr::V4(a), IpAddr::V4(n)) => prefix_eq(&a.octets(), &n.octets(), *len),
            (IpAddr::V6(a), IpAddr::V6(n)) => prefix_eq(&a.octets(), &n.octets(), *len),
            _ => false,
        }
    }

    fn matches_name(&self, host: &str) -> bool {
        let Rule::Name { name, exact_too } = self else {
            return false;
        };
        let host = host.strip_suffix('.').unwrap_or(host);
        if host.len() < name.len() {
            return false;
        }
        let split = host.len() - name.len();
        if !host.is_char_boundary(split) || !host[split..].eq_ignore_ascii_case(name) {
            return false;
        }
        if split == 0 {
            *exact_too
        } else {
            host.as_bytes()[split - 1] == b'.'
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Net(ip, len) if (ip.is_ipv4() && *len == 32) || *len == 128 => write!(f, "{ip}"),
            Rule::Net(ip, len) => write!(f, "{ip}/{len}"),
            Rule::Name {
                name,
                exact_too: true,
            } => f.write_str(name),
            Rule::Name { name, .. } => write!(f, "*.{name}"),
        }
    }
}

/// Allow and deny rules, applied as the module documentation says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// With any allow rule, only what matches one is allowed.
    pub allow: Vec<Rule>,
    /// What matches a deny rule is refused, whatever the allow rules say.
    pub deny: Vec<Rule>,
}

impl Rules {
    /// Whether no rule restricts anything.
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }

    /// Whether a destination asked for by `name` (if it was asked for by
    /// name) is refused before resolution: by a deny rule naming it.
    pub fn denies_name(&self, name: &str) -> bool {
        self.deny.iter().any(|r| r.matches_name(name))
    }

    /// Whether the address `ip`, reached by asking for `name` (if any), is
    /// allowed.
    pub fn allows(&self, name: Option<&str>, ip: IpAddr) -> bool {
        let hit = |r: &Rule| r.matches_ip(ip) || name.is_some_and(|n| r.matches_name(n));
        if self.deny.iter().any(hit) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(hit)
    }
}

/// Removes the brackets of `[::1]`.
fn strip_brackets(s: &str) -> &str {
    s.strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(s)
}

/// An IPv4-mapped IPv6 address as the IPv4 address it carries.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The prefix length for [`canonical`]'s address: `::ffff:10.0.0.0/104`
/// is `10.0.0.0/8`.
fn canonical_len(ip: IpAddr, len: u8) -> u8 {
    match ip {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => len.saturating_sub(96),
        _ => len,
    }
}

/// Whether the first `len` bits of `a` and `b` agree.
fn prefix_eq(a: &[u8], b: &[u8], len: u8) -> bool {
    let len = usize::from(len).min(a.len() * 8);
    let (bytes, bits) = (len / 8, len % 8);
    if a[..bytes] != b[..bytes] {
        return false;
    }
    if bits == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - bits);
    a[bytes] & mask == b[bytes] & mask
}

/// Whether `name` is a plausible host name: 1 to 253 bytes of labels of
/// letters, digits, `-` and `_`, each 1 to 63 bytes.
pub(crate) fn valid_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(allow: &[&str], deny: &[&str]) -> Rules {
        Rules {
            allow: allow
                .iter()
                .map(|r| Rule::parse(r, true).unwrap())
                .collect(),
            deny: deny.iter().map(|r| Rule::parse(r, true).unwrap()).collect(),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn rules_parse_and_print() {
        for (given, shown) in [
            ("127.0.0.1", "127.0.0.1"),
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("[::1]", "::1"),
            ("fd00::/8", "fd00::/8"),
            ("::ffff:127.0.0.1", "127.0.0.1"),
            ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
            ("Example.COM.", "example.com"),
            ("*.example.com", "*.example.com"),
            (".example.com", "*.example.com"),
        ] {
            assert_eq!(Rule::parse(given, true).unwrap().to_string(), shown);
        }
        for bad in ["10.0.0.0/33", "::/129", "x/8", "", "a..b", "exa mple", "*."] {
            assert!(Rule::parse(bad, true).is_err(), "{bad}");
        }
        assert!(Rule::parse("example.com", false).is_err());
        assert!(Rule::parse("127.0.0.0/8", false).is_ok());
    }

    #[test]
    fn no_rules_allow_everything_loopback_included() {
        let r = Rules::default();
        assert!(r.is_empty());
        assert!(r.allows(None, ip("127.0.0.1")));
        assert!(r.allows(Some("localhost"), ip("::1")));
    }

    #[test]
    fn deny_wins_and_is_checked_on_the_resolved_address() {
        let r = rules(&["example.com"], &["127.0.0.0/8"]);
        // Allowed by name, but it resolved into a denied block.
        assert!(!r.allows(Some("example.com"), ip("127.0.0.1")));
        assert!(r.allows(Some("www.example.com"), ip("192.0.2.1")));
        // Not named by an allow rule and its address is not allowed either.
        assert!(!r.allows(Some("other.org"), ip("192.0.2.1")));
        // A mapped address does not slip past the IPv4 rule.
        assert!(!r.allows(None, ip("::ffff:127.0.0.2")));
    }

    #[test]
    fn names_match_themselves_and_below() {
        let r = rules(&[], &["example.com", "*.internal"]);
        assert!(r.denies_name("example.com"));
        assert!(r.denies_name("A.Example.com."));
        assert!(!r.denies_name("badexample.com"));
        assert!(!r.denies_name("internal"));
        assert!(r.denies_name("db.internal"));
        assert!(!r.denies_name("com"));
    }

    #[test]
    fn blocks_match_by_prefix() {
        let r = rules(&["10.1.0.0/16", "fd00::/8", "192.0.2.7"], &[]);
        assert!(r.allows(None, ip("10.1.200.3")));
        assert!(!r.allows(None, ip("10.2.0.1")));
        assert!(r.allows(None, ip("fdab::1")));
        assert!(!r.allows(None, ip("fe80::1")));
        assert!(r.allows(None, ip("192.0.2.7")));
        assert!(!r.allows(None, ip("192.0.2.8")));
        let odd = rules(&["10.0.0.0/12"], &[]);
        assert!(odd.allows(None, ip("10.15.255.255")));
        assert!(!odd.allows(None, ip("10.16.0.0")));
        let all = rules(&["0.0.0.0/0"], &[]);
        assert!(all.allows(None, ip("203.0.113.9")));
        assert!(!all.allows(None, ip("::2")));
    }

    #[test]
    fn host_names_are_validated() {
        assert!(valid_name("a.b-c.example"));
        assert!(valid_name("under_score.local."));
        assert!(!valid_name(""));
        assert!(!valid_name("a..b"));
        assert!(!valid_name("white space"));
        assert!(!valid_name(&"a".repeat(64)));
        assert!(!valid_name("ünï"));
    }
}
