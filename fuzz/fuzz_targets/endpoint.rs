//! Fuzzes the endpoint parser: any string, with each registered scheme as
//! the default, parses
//! or fails with a usage error naming the address; never panics. A parsed
//! endpoint prints in a form that parses back to the same endpoint.

#![no_main]

use libfuzzer_sys::fuzz_target;
use netcrab::endpoint::{Endpoint, SCHEMES};
use netcrab::error::ErrorKind;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    for spec in SCHEMES {
        match Endpoint::parse_with_default(s, spec.scheme) {
            Ok(endpoint) => {
                let shown = endpoint.to_string();
                let again: Endpoint = shown
                    .parse()
                    .unwrap_or_else(|e| panic!("{s:?} -> {shown:?} does not parse: {e}"));
                assert_eq!(again, endpoint, "{s:?} -> {shown:?}");
            }
            Err(err) => {
                assert_eq!(err.kind(), ErrorKind::Usage);
                assert!(err.to_string().starts_with("invalid address "), "{err}");
            }
        }
    }
});
