//! The certificate verifier that replaces rustls' WebPKI verifier for
//! fingerprint pinning (`--pin-sha256`) and no verification (`--insecure`).
//! Both still check the handshake signature, so the server must hold the
//! private key of the certificate it presents.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};

use super::Fingerprint;

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
