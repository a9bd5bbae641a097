//! SHA-256 certificate fingerprints: computed over a certificate's DER
//! bytes (what `openssl x509 -fingerprint -sha256` prints), shown as
//! colon-separated uppercase hex, and parsed from that form or plain hex.

use std::fmt;
use std::str::FromStr;

#[cfg(feature = "aws-lc-rs")]
use aws_lc_rs::digest;
#[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
use ring::digest;

use crate::error::Error;

/// The SHA-256 digest of a certificate's DER encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER-encoded certificate.
    pub fn of_der(der: &[u8]) -> Fingerprint {
        let digest = digest::digest(&digest::SHA256, der);
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        Fingerprint(out)
    }
}

/// `AB:CD:...:EF`, as openssl prints it.
impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

/// Accepts 64 hex digits, either plain or in colon-separated pairs, in
/// either case, optionally prefixed with `sha256:` or openssl's
/// `sha256 Fingerprint=`.
impl FromStr for Fingerprint {
    type Err = Error;

    fn from_str(s: &str) -> Result<Fingerprint, Error> {
        let bad = |why: &str| {
            Error::usage(format!(
                "invalid sha-256 fingerprint {s:?}: {why} (expected 64 hex digits, \
                 plain or colon-separated as in AB:CD:...)"
            ))
        };
        let mut text = s.trim();
        for prefix in ["sha256 fingerprint=", "sha256:", "sha256="] {
            if text.len() >= prefix.len() && text[..prefix.len()].eq_ignore_ascii_case(prefix) {
                text = &text[prefix.len()..];
            }
        }
        if text.contains(':') && !text.split(':').all(|pair| pair.len() == 2) {
            return Err(bad("colons must separate pairs of hex digits"));
        }
        let digits: Vec<u8> = text.bytes().filter(|&b| b != b':').collect();
        if let Some(c) = digits.iter().find(|b| !b.is_ascii_hexdigit()) {
            return Err(bad(&format!("{:?} is not a hex digit", *c as char)));
        }
        if digits.len() != 64 {
            return Err(bad(&format!("{} hex digits", digits.len())));
        }
        let mut out = [0u8; 32];
        for (i, pair) in digits.chunks(2).enumerate() {
            let hex = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
            out[i] = hex(pair[0]) << 4 | hex(pair[1]);
        }
        Ok(Fingerprint(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLONS: &str = "01:23:45:67:89:AB:CD:EF:00:11:22:33:44:55:66:77:\
                          88:99:AA:BB:CC:DD:EE:FF:10:20:30:40:50:60:70:80";

    #[test]
    fn formats_as_colon_separated_uppercase_hex() {
        let fp: Fingerprint = COLONS.parse().expect("parse");
        assert_eq!(fp.to_string(), COLONS);
        assert_eq!(fp.0[0], 0x01);
        assert_eq!(fp.0[31], 0x80);
    }

    #[test]
    fn parses_plain_lowercase_and_prefixed_forms() {
        let want: Fingerprint = COLONS.parse().expect("parse");
        let plain = COLONS.replace(':', "").to_lowercase();
        assert_eq!(plain.parse::<Fingerprint>().expect("plain"), want);
        let openssl = format!("sha256 Fingerprint={COLONS}");
        assert_eq!(openssl.parse::<Fingerprint>().expect("openssl"), want);
        let prefixed = format!("SHA256:{plain}");
        assert_eq!(prefixed.parse::<Fingerprint>().expect("prefixed"), want);
        assert_eq!(
            format!("  {plain}\n").parse::<Fingerprint>().expect("trim"),
            want
        );
    }

    #[test]
    fn rejects_malformed_fingerprints_with_a_reason() {
        let err = |s: &str| s.parse::<Fingerprint>().expect_err(s).to_string();
        assert!(err("abcd").contains("4 hex digits"), "{}", err("abcd"));
        assert!(err(&"g".repeat(64)).contains("'g' is not a hex digit"));
        assert!(err("0:123").contains("colons"));
        assert!(err(&"00".repeat(33)).contains("66 hex digits"));
        assert!(err("").contains("0 hex digits"));
    }

    #[test]
    fn fingerprint_of_der_is_sha256() {
        // sha256("abc"), the FIPS 180-2 test vector.
        let fp = Fingerprint::of_der(b"abc");
        assert_eq!(
            fp.to_string().replace(':', "").to_lowercase(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
