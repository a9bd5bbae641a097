//! Reading certificates and private keys from PEM files, with errors that
//! name the file and the flag it came from.

use std::path::Path;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{Error, Result};

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(format!("read {what} {}", path.display()), e))
}

fn bad_pem(path: &Path, what: &str, err: pem::Error) -> Error {
    let why = match err {
        pem::Error::NoItemsFound => match what {
            "private key" => "no private key in it (expected a PEM \"PRIVATE KEY\" block)".into(),
            _ => "no certificate in it (expected a PEM \"CERTIFICATE\" block)".into(),
        },
        other => format!("not valid PEM ({other})"),
    };
    Error::usage(format!("{what} {}: {why}", path.display()))
}

/// Reads every certificate in a PEM file, in order; at least one.
pub(crate) fn certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let data = read(path, what)?;
    let certs = CertificateDer::pem_slice_iter(&data)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad_pem(path, what, e))?;
    if certs.is_empty() {
        return Err(bad_pem(path, what, pem::Error::NoItemsFound));
    }
    Ok(certs)
}

/// Reads the first private key in a PEM file.
pub(crate) fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let what = "private key";
    let data = read(path, what)?;
    PrivateKeyDer::from_pem_slice(&data).map_err(|e| bad_pem(path, what, e))
}
