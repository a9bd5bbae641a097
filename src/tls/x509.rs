//! The few fields of an X.509 certificate that rustls and webpki do not
//! expose, read straight from its DER: the version, the validity dates and
//! the subject's common name. Pure (no I/O); anything malformed reads as
//! `None`, and webpki has the final word on the certificate's structure.
//!
//! ```text
//! Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signature }
//! TBSCertificate ::= SEQUENCE {
//!     version [0] EXPLICIT INTEGER DEFAULT v1,  -- 0: v1, 1: v2, 2: v3
//!     serialNumber INTEGER, signature AlgorithmIdentifier, issuer Name,
//!     validity SEQUENCE { notBefore Time, notAfter Time },
//!     subject Name, ... }
//! ```

/// DER tags read here.
const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const OID: u8 = 0x06;
const VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// The object identifier 2.5.4.3, `commonName`, as DER content.
const CN_OID: [u8; 3] = [0x55, 0x04, 0x03];

/// One DER element: its tag, its content, and what follows it.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The element at the head of `input`, which must have tag `tag`.
fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (t, content, rest) = tlv(input)?;
    (t == tag).then_some((content, rest))
}

/// The TBSCertificate's content.
fn tbs(der: &[u8]) -> Option<&[u8]> {
    let (cert, _) = expect(der, SEQUENCE)?;
    let (tbs, _) = expect(cert, SEQUENCE)?;
    Some(tbs)
}

/// The certificate's version as written (0 for v1, 2 for v3); a missing
/// version field is v1.
pub(crate) fn version(der: &[u8]) -> Option<u8> {
    let tbs = tbs(der)?;
    match expect(tbs, VERSION) {
        None => {
            // v1: the serial number comes first.
            expect(tbs, INTEGER)?;
            Some(0)
        }
        Some((explicit, _)) => {
            let (int, _) = expect(explicit, INTEGER)?;
            match int {
                [v] => Some(*v),
                _ => None,
            }
        }
    }
}

/// The TBSCertificate's fields after the version: serial, signature,
/// issuer, validity, subject, ...
fn fields_after_version(tbs: &[u8]) -> Option<&[u8]> {
    match expect(tbs, VERSION) {
        Some((_, rest)) => Some(rest),
        None => Some(tbs),
    }
}

/// The validity period, as seconds since the Unix epoch: (notBefore,
/// notAfter).
pub(crate) fn validity(der: &[u8]) -> Option<(i64, i64)> {
    let rest = fields_after_version(tbs(der)?)?;
    let (_serial, rest) = expect(rest, INTEGER)?;
    let (_signature, rest) = expect(rest, SEQUENCE)?;
    let (_issuer, rest) = expect(rest, SEQUENCE)?;
    let (validity, _) = expect(rest, SEQUENCE)?;
    let (before_tag, before, rest) = tlv(validity)?;
    let (after_tag, after, _) = tlv(rest)?;
    Some((time(before_tag, before)?, time(after_tag, after)?))
}

/// The subject's common names (attribute 2.5.4.3), as text.
pub(crate) fn subject_common_names(der: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    let Some(subject) = subject(der) else {
        return names;
    };
    let mut rdns = subject;
    while let Some((SET, rdn, rest)) = tlv(rdns) {
        let mut attrs = rdn;
        while let Some((SEQUENCE, attr, more)) = tlv(attrs) {
            if let Some((oid, value)) = expect(attr, OID)
                && oid == CN_OID
                && let Some((_string_tag, text, _)) = tlv(value)
                && let Ok(text) = std::str::from_utf8(text)
            {
                names.push(text.to_owned());
            }
            attrs = more;
        }
        rdns = rest;
    }
    names
}

/// The subject Name's content.
fn subject(der: &[u8]) -> Option<&[u8]> {
    let rest = fields_after_version(tbs(der)?)?;
    let (_serial, rest) = expect(rest, INTEGER)?;
    let (_signature, rest) = expect(rest, SEQUENCE)?;
    let (_issuer, rest) = expect(rest, SEQUENCE)?;
    let (_validity, rest) = expect(rest, SEQUENCE)?;
    let (subject, _) = expect(rest, SEQUENCE)?;
    Some(subject)
}

/// A UTCTime (`YYMMDDHHMMSSZ`, years 1950–2049) or GeneralizedTime
/// (`YYYYMMDDHHMMSSZ`) as seconds since the Unix epoch.
fn time(tag: u8, text: &[u8]) -> Option<i64> {
    let digits = |s: &[u8]| -> Option<i64> {
        s.iter().try_fold(0i64, |acc, b| {
            b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0'))
        })
    };
    let (year, rest) = match (tag, text.len()) {
        (UTC_TIME, 13) => {
            let yy = digits(&text[..2])?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
        }
        (GENERALIZED_TIME, 15) => (digits(&text[..4])?, &text[4..]),
        _ => return None,
    };
    if rest.last() != Some(&b'Z') {
        return None;
    }
    let field = |i: usize| digits(&rest[i..i + 2]);
    let (month, day) = (field(0)?, field(2)?);
    let (hour, minute, second) = (field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    // Leap seconds (60) are allowed by the formats.
    if second > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second)
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (Howard
/// Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_unix_seconds() {
        assert_eq!(time(UTC_TIME, b"700101000000Z"), Some(0));
        assert_eq!(time(UTC_TIME, b"200913122640Z"), Some(1_600_000_000));
        assert_eq!(time(UTC_TIME, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(
            time(GENERALIZED_TIME, b"20500101000000Z"),
            Some(2_524_608_000)
        );
        assert_eq!(
            time(GENERALIZED_TIME, b"99991231235959Z"),
            Some(253_402_300_799)
        );
        assert_eq!(time(UTC_TIME, b"200913122640+0100"), None);
        assert_eq!(time(UTC_TIME, b"201313122640Z"), None);
        assert_eq!(time(GENERALIZED_TIME, b"200913122640Z"), None);
    }

    #[test]
    fn an_rcgen_certificate_reads_back() {
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        params.not_before = rcgen::date_time_ymd(2020, 9, 13);
        params.not_after = rcgen::date_time_ymd(2051, 1, 2);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "example.test");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("cert");
        let der = cert.der();
        assert_eq!(version(der), Some(2));
        assert_eq!(validity(der), Some((1_599_955_200, 2_556_230_400)));
        assert_eq!(subject_common_names(der), vec!["example.test".to_owned()]);
    }

    #[test]
    fn garbage_reads_as_nothing() {
        for bad in [&b""[..], b"\x30", b"\x30\x84\xff\xff\xff\xff", b"\x30\x00"] {
            assert_eq!(version(bad), None);
            assert_eq!(validity(bad), None);
            assert!(subject_common_names(bad).is_empty());
        }
        // A v1 TBSCertificate starts with the serial number.
        let v1 = [0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x07];
        assert_eq!(version(&v1), Some(0));
    }
}
