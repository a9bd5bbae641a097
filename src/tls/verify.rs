//! The certificate verifiers that replace rustls' WebPKI verifier:
//! fingerprint pinning (`--pin-sha256`) and no verification
//! (`--insecure`). Both still check the handshake signature, so the server
//! must hold the private key of the certificate it presents.

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

/// What both verifiers do beyond the certificate: check the handshake
/// signatures with the provider's algorithms.
#[derive(Debug)]
struct Signatures(Arc<CryptoProvider>);

impl Signatures {
    fn tls12(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Accepts exactly the leaf certificates with the pinned fingerprints.
/// Chain, names and validity dates are not checked: the pin says which
/// certificate is meant, which is what a self-signed server needs.
#[derive(Debug)]
pub(crate) struct PinVerifier {
    pins: Vec<Fingerprint>,
    signatures: Signatures,
}

impl PinVerifier {
    pub(crate) fn new(pins: Vec<Fingerprint>, provider: Arc<CryptoProvider>) -> PinVerifier {
        PinVerifier {
            pins,
            signatures: Signatures(provider),
        }
    }
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = Fingerprint::of_der(end_entity);
        if self.pins.contains(&presented) {
            return Ok(ServerCertVerified::assertion());
        }
        let mismatch = PinMismatch {
            presented,
            expected: self.pins.clone(),
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
        self.signatures.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.signatures.schemes()
    }
}

/// Accepts any certificate (`--insecure`).
#[derive(Debug)]
pub(crate) struct InsecureVerifier {
    signatures: Signatures,
}

impl InsecureVerifier {
    pub(crate) fn new(provider: Arc<CryptoProvider>) -> InsecureVerifier {
        InsecureVerifier {
            signatures: Signatures(provider),
        }
    }
}

impl ServerCertVerifier for InsecureVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.signatures.schemes()
    }
}
