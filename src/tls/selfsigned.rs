//! The self-signed certificate a TLS server without `--cert` generates at
//! start-up, for the names it is reached by.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::endpoint::{Host, HostPort};
use crate::error::{Error, ErrorKind, Result};

/// A freshly generated self-signed certificate and its key.
#[derive(Debug)]
pub struct SelfSigned {
    /// The certificate, DER-encoded.
    pub cert: CertificateDer<'static>,
    /// Its private key (PKCS#8).
    pub key: PrivateKeyDer<'static>,
    /// The subject alternative names it holds.
    pub names: Vec<String>,
}

impl SelfSigned {
    /// Generates a certificate (ECDSA P-256) valid for `names` (DNS names
    /// or IP addresses).
    pub fn generate(names: Vec<String>) -> Result<SelfSigned> {
        let certified = rcgen::generate_simple_self_signed(names.clone()).map_err(|e| {
            Error::new(ErrorKind::Tls, "generate a self-signed certificate")
                .with_detail(e.to_string())
        })?;
        let key = PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
        Ok(SelfSigned {
            cert: certified.cert.der().clone(),
            key: PrivateKeyDer::Pkcs8(key),
            names,
        })
    }
}

/// The names a self-signed certificate for a server listening on `hp`
/// should hold: the host it listens on, plus `localhost`, `127.0.0.1` and
/// `::1` when that host is a loopback or every-interface address (clients
/// on this machine then verify by any of those names).
pub fn self_signed_names(hp: &HostPort) -> Vec<String> {
    let mut names = Vec::new();
    let local = match &hp.host {
        Host::Ip(ip) => {
            if !ip.is_unspecified() {
                names.push(ip.to_string());
            }
            ip.is_loopback() || ip.is_unspecified()
        }
        Host::Name(name) => {
            names.push(name.clone());
            name == "localhost"
        }
        Host::Unspecified => true,
    };
    if local {
        let loopback = [
            "localhost".to_owned(),
            IpAddr::V4(Ipv4Addr::LOCALHOST).to_string(),
            IpAddr::V6(Ipv6Addr::LOCALHOST).to_string(),
        ];
        for name in loopback {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(addr: &str) -> Vec<String> {
        let endpoint: crate::endpoint::Endpoint = addr.parse().expect("address");
        self_signed_names(endpoint.host_port().expect("host and port"))
    }

    #[test]
    fn loopback_and_wildcard_listeners_cover_the_local_names() {
        assert_eq!(names("127.0.0.1:0"), ["127.0.0.1", "localhost", "::1"]);
        assert_eq!(names("[::1]:0"), ["::1", "localhost", "127.0.0.1"]);
        assert_eq!(names(":443"), ["localhost", "127.0.0.1", "::1"]);
        assert_eq!(names("0.0.0.0:443"), ["localhost", "127.0.0.1", "::1"]);
        assert_eq!(names("localhost:1"), ["localhost", "127.0.0.1", "::1"]);
    }

    #[test]
    fn other_hosts_get_their_own_name_only() {
        assert_eq!(names("example.com:443"), ["example.com"]);
        assert_eq!(names("192.0.2.7:443"), ["192.0.2.7"]);
    }

    #[test]
    fn generates_a_certificate_for_the_names() {
        let ss = SelfSigned::generate(vec!["localhost".into(), "127.0.0.1".into()]).expect("cert");
        assert!(!ss.cert.is_empty());
        assert_eq!(ss.names.len(), 2);
    }
}
