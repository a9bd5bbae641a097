//! The certificate verifiers that stand in for rustls' WebPKI verifiers:
//!
//! - [`LeafVerifier`] for fingerprint pinning (`--pin-sha256`) and no
//!   verification (`--insecure`);
//! - [`TrustedLeafServer`] and [`TrustedLeafClient`], which wrap the WebPKI
//!   verifiers for `--ca` and `--client-ca` and also accept a presented leaf
//!   byte-identical to a certificate in those files, as ncat
//!   (`--ssl-trustfile`), socat (`cafile=`) and curl (`--cacert`) do. That
//!   is what a self-signed certificate made by plain `openssl req -x509`
//!   needs: it says CA:TRUE, and webpki refuses a CA certificate as a leaf.
//!   Its validity dates and (for a server) its name are still checked, the
//!   name falling back to the subject's common name when the certificate
//!   has no subjectAltName, as OpenSSL's host check does.
//!
//! All of them still check the handshake signature, so the peer must hold
//! the private key of the certificate it presents.

use std::fmt;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, SignatureScheme,
};

use super::{Fingerprint, x509};
use crate::settings::Setting;

/// The pinned fingerprint(s) did not match the server's certificate;
/// carried inside a rustls error so `errors` can explain it.
#[derive(Debug)]
pub(crate) struct PinMismatch {
    /// The fingerprint of the certificate the server presented.
    pub presented: Fingerprint,
    /// The fingerprints that would have been accepted.
    pub expected: Vec<Fingerprint>,
}

impl fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "fingerprint mismatch: the server's certificate is {}",
            self.presented
        )
    }
}

impl std::error::Error for PinMismatch {}

/// Which leaf certificates a [`LeafVerifier`] accepts.
#[derive(Debug)]
pub(crate) enum Accept {
    /// Exactly those with one of these fingerprints (`--pin-sha256`).
    Pinned(Vec<Fingerprint>),
    /// Any (`--insecure`).
    Any,
}

/// Accepts leaf certificates by [`Accept`] alone: chain, names and validity
/// dates are not checked (the pin says which certificate is meant, which is
/// what a self-signed server needs). The handshake signatures are still
/// verified with the provider's algorithms.
#[derive(Debug)]
pub(crate) struct LeafVerifier {
    accept: Accept,
    provider: Arc<CryptoProvider>,
}

impl LeafVerifier {
    pub(crate) fn new(accept: Accept, provider: Arc<CryptoProvider>) -> LeafVerifier {
        LeafVerifier { accept, provider }
    }
}

impl ServerCertVerifier for LeafVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let pins = match &self.accept {
            Accept::Any => return Ok(ServerCertVerified::assertion()),
            Accept::Pinned(pins) => pins,
        };
        let presented = Fingerprint::of_der(end_entity);
        if pins.contains(&presented) {
            return Ok(ServerCertVerified::assertion());
        }
        let mismatch = PinMismatch {
            presented,
            expected: pins.clone(),
        };
        Err(rustls::Error::InvalidCertificate(CertificateError::Other(
            OtherError(Arc::new(mismatch)),
        )))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Checks a presented leaf that is byte-identical to a trusted certificate:
/// its validity dates at `now` and, for a server, its name. Its signature
/// needs no check (the very bytes are trusted); the handshake signature is
/// checked by the caller's `verify_tls1x_signature`.
fn check_trusted_leaf(
    cert: &CertificateDer<'_>,
    server_name: Option<&ServerName<'_>>,
    now: UnixTime,
) -> Result<(), rustls::Error> {
    let invalid = rustls::Error::InvalidCertificate;
    let (not_before, not_after) =
        x509::validity(cert).ok_or(invalid(CertificateError::BadEncoding))?;
    let time = now.as_secs();
    let unix =
        |secs: i64| UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs.max(0) as u64));
    // Dates before 1970 clamp to 0: only a time before the epoch could
    // tell them apart.
    if (time as i128) < i128::from(not_before) {
        return Err(invalid(CertificateError::NotValidYetContext {
            time: now,
            not_before: unix(not_before),
        }));
    }
    if (time as i128) > i128::from(not_after) {
        return Err(invalid(CertificateError::ExpiredContext {
            time: now,
            not_after: unix(not_after),
        }));
    }
    let Some(name) = server_name else {
        return Ok(());
    };
    check_name(cert, name)
}

/// Whether `cert` is valid for `name`: its subjectAltName DNS or IP
/// entries, or the subject's common name when it has no subjectAltName
/// names at all, as OpenSSL's host check falls back to.
fn check_name(cert: &CertificateDer<'_>, name: &ServerName<'_>) -> Result<(), rustls::Error> {
    let invalid = rustls::Error::InvalidCertificate;
    let parsed = ParsedCertificate::try_from(cert)?;
    match rustls::client::verify_server_name(&parsed, name) {
        Ok(()) => Ok(()),
        // No subjectAltName names at all: the subject's common name, as
        // OpenSSL (and so ncat, socat and curl) falls back to.
        Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
            expected,
            presented,
        })) if presented.is_empty() => {
            let common = x509::subject_common_names(cert);
            let wanted = expected.to_str();
            let wanted = wanted.trim_end_matches('.');
            if common
                .iter()
                .any(|cn| cn.trim_end_matches('.').eq_ignore_ascii_case(wanted))
            {
                Ok(())
            } else {
                Err(invalid(CertificateError::NotValidForNameContext {
                    expected,
                    presented: common,
                }))
            }
        }
        Err(err) => Err(err),
    }
}

/// Whether `cert` is one of `trusted`, byte for byte.
fn is_trusted(trusted: &[CertificateDer<'static>], cert: &CertificateDer<'_>) -> bool {
    trusted.iter().any(|t| t.as_ref() == cert.as_ref())
}

/// The `--ca` verifier: WebPKI chain verification, or a leaf byte-identical
/// to a certificate in the `--ca` files (see the module's documentation).
#[derive(Debug)]
pub(crate) struct TrustedLeafServer {
    webpki: Arc<WebPkiServerVerifier>,
    trusted: Vec<CertificateDer<'static>>,
}

impl TrustedLeafServer {
    /// Wraps `webpki`, also accepting the certificates in `trusted` as
    /// leaves.
    pub(crate) fn new(
        webpki: Arc<WebPkiServerVerifier>,
        trusted: Vec<CertificateDer<'static>>,
    ) -> TrustedLeafServer {
        TrustedLeafServer { webpki, trusted }
    }
}

impl ServerCertVerifier for TrustedLeafServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(verified) => Ok(verified),
            Err(_) if is_trusted(&self.trusted, end_entity) => {
                check_trusted_leaf(end_entity, Some(server_name), now)?;
                Ok(ServerCertVerified::assertion())
            }
            Err(err) => Err(err),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// The `--client-ca` verifier: WebPKI chain verification, or a client leaf
/// byte-identical to a certificate in the `--client-ca` file (dates
/// checked; client certificates carry no name to check).
#[derive(Debug)]
pub(crate) struct TrustedLeafClient {
    webpki: Arc<dyn ClientCertVerifier>,
    trusted: Vec<CertificateDer<'static>>,
}

impl TrustedLeafClient {
    /// Wraps `webpki`, also accepting the certificates in `trusted` as
    /// leaves.
    pub(crate) fn new(
        webpki: Arc<dyn ClientCertVerifier>,
        trusted: Vec<CertificateDer<'static>>,
    ) -> TrustedLeafClient {
        TrustedLeafClient { webpki, trusted }
    }
}

impl ClientCertVerifier for TrustedLeafClient {
    fn offer_client_auth(&self) -> bool {
        self.webpki.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.webpki.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.webpki.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match self
            .webpki
            .verify_client_cert(end_entity, intermediates, now)
        {
            Ok(verified) => Ok(verified),
            Err(_) if is_trusted(&self.trusted, end_entity) => {
                check_trusted_leaf(end_entity, None, now)?;
                Ok(ClientCertVerified::assertion())
            }
            Err(err) => Err(err),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// Why a client certificate failed `--client-pin-sha256` or
/// `--client-name`; carried inside a rustls error, whose message the server
/// logs.
#[derive(Debug)]
pub(crate) enum ClientRefused {
    /// The certificate's fingerprint is not pinned.
    Pin {
        /// The fingerprint of the certificate the client presented.
        presented: Fingerprint,
    },
    /// The certificate carries none of the names asked for.
    Name {
        /// The names asked for (`--client-name`).
        wanted: Vec<String>,
        /// The names the certificate carries (subjectAltName, else CN).
        presented: Vec<String>,
    },
}

impl fmt::Display for ClientRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientRefused::Pin { presented } => write!(
                f,
                "not pinned: its sha-256 fingerprint is {presented}, which no \
                 {} names",
                Setting::ClientPinSha256
            ),
            ClientRefused::Name { wanted, presented } => write!(
                f,
                "name mismatch: it is for {}, and {} wants {}",
                if presented.is_empty() {
                    "no names at all".to_owned()
                } else {
                    presented.join(", ")
                },
                Setting::ClientName,
                wanted.join(" or ")
            ),
        }
    }
}

impl std::error::Error for ClientRefused {}

/// A name as rustls presents it in errors (`DnsName("a.test")`), plain
/// (`a.test`).
fn plain_name(name: &str) -> String {
    match (name.find('('), name.rfind(')')) {
        (Some(open), Some(close)) if open < close => {
            name[open + 1..close].trim_matches('"').to_owned()
        }
        _ => name.to_owned(),
    }
}

/// The client verifier for `--client-pin-sha256` and `--client-name`: a
/// client certificate is required; it must pass the `--client-ca`
/// verification when there is one, have a pinned fingerprint when pins are
/// given, and carry one of the names when names are given. Without
/// `--client-ca`, a pinned leaf is accepted whatever signed it (as
/// `--pin-sha256` on the client side). The handshake signature is always
/// checked, so the client must hold the certificate's private key.
#[derive(Debug)]
pub(crate) struct CheckedClient {
    /// The `--client-ca` verifier, if any.
    ca: Option<Arc<dyn ClientCertVerifier>>,
    pins: Vec<Fingerprint>,
    names: Vec<ServerName<'static>>,
    provider: Arc<CryptoProvider>,
}

impl CheckedClient {
    /// A verifier requiring `pins` (if any) and `names` (if any) on top of
    /// `ca` (if any).
    pub(crate) fn new(
        ca: Option<Arc<dyn ClientCertVerifier>>,
        pins: Vec<Fingerprint>,
        names: Vec<ServerName<'static>>,
        provider: Arc<CryptoProvider>,
    ) -> CheckedClient {
        CheckedClient {
            ca,
            pins,
            names,
            provider,
        }
    }
}

impl ClientCertVerifier for CheckedClient {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        match &self.ca {
            Some(ca) => ca.root_hint_subjects(),
            None => &[],
        }
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let refuse = |why: ClientRefused| {
            rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(why))))
        };
        if let Some(ca) = &self.ca {
            ca.verify_client_cert(end_entity, intermediates, now)?;
        }
        if !self.pins.is_empty() {
            let presented = Fingerprint::of_der(end_entity);
            if !self.pins.contains(&presented) {
                return Err(refuse(ClientRefused::Pin { presented }));
            }
        }
        if !self.names.is_empty() {
            let mut presented = Vec::new();
            let mut matched = false;
            for name in &self.names {
                match check_name(end_entity, name) {
                    Ok(()) => {
                        matched = true;
                        break;
                    }
                    Err(rustls::Error::InvalidCertificate(
                        CertificateError::NotValidForNameContext { presented: p, .. },
                    )) => presented = p.iter().map(|n| plain_name(n)).collect(),
                    Err(err) => return Err(err),
                }
            }
            if !matched {
                return Err(refuse(ClientRefused::Name {
                    wanted: self.names.iter().map(|n| n.to_str().into_owned()).collect(),
                    presented,
                }));
            }
        }
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        match &self.ca {
            Some(ca) => ca.verify_tls12_signature(message, cert, dss),
            None => verify_tls12_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            ),
        }
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        match &self.ca {
            Some(ca) => ca.verify_tls13_signature(message, cert, dss),
            None => verify_tls13_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            ),
        }
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        match &self.ca {
            Some(ca) => ca.supported_verify_schemes(),
            None => self
                .provider
                .signature_verification_algorithms
                .supported_schemes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> UnixTime {
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs))
    }

    /// A CA:TRUE certificate for `names`, valid 2020-09-13 to 2051-01-02,
    /// with `cn` as the subject's common name.
    fn ca_cert(names: Vec<String>, cn: &str) -> CertificateDer<'static> {
        let mut params = rcgen::CertificateParams::new(names).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.not_before = rcgen::date_time_ymd(2020, 9, 13);
        params.not_after = rcgen::date_time_ymd(2051, 1, 2);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let key = rcgen::KeyPair::generate().expect("key");
        params.self_signed(&key).expect("cert").der().clone()
    }

    fn name(s: &str) -> ServerName<'static> {
        ServerName::try_from(s.to_owned()).expect("name")
    }

    #[test]
    fn a_trusted_leaf_is_checked_for_dates_and_name() {
        let cert = ca_cert(vec!["localhost".into()], "ignored.test");
        let now = at(1_700_000_000);
        assert!(check_trusted_leaf(&cert, Some(&name("localhost")), now).is_ok());
        assert!(check_trusted_leaf(&cert, None, now).is_ok());
        // With a subjectAltName, the common name does not count.
        let err = check_trusted_leaf(&cert, Some(&name("ignored.test")), now).unwrap_err();
        assert!(
            matches!(
                err,
                rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. })
            ),
            "{err:?}"
        );
        let err = check_trusted_leaf(&cert, None, at(1_500_000_000)).unwrap_err();
        assert!(
            matches!(
                err,
                rustls::Error::InvalidCertificate(CertificateError::NotValidYetContext { .. })
            ),
            "{err:?}"
        );
        let err = check_trusted_leaf(&cert, None, at(2_600_000_000)).unwrap_err();
        assert!(
            matches!(
                err,
                rustls::Error::InvalidCertificate(CertificateError::ExpiredContext { .. })
            ),
            "{err:?}"
        );
    }

    #[test]
    fn names_in_errors_are_plain() {
        assert_eq!(plain_name("DnsName(\"web.internal\")"), "web.internal");
        assert_eq!(plain_name("localhost"), "localhost");
    }

    #[test]
    fn without_alt_names_the_common_name_is_the_name() {
        let cert = ca_cert(vec![], "Localhost");
        let now = at(1_700_000_000);
        assert!(check_trusted_leaf(&cert, Some(&name("localhost")), now).is_ok());
        let err = check_trusted_leaf(&cert, Some(&name("example.com")), now).unwrap_err();
        match err {
            rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
                presented,
                ..
            }) => assert_eq!(presented, vec!["Localhost".to_owned()]),
            other => panic!("{other:?}"),
        }
    }
}
