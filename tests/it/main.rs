//! netcrab's integration tests: one binary, one file per command, all
//! running the real executable against real sockets on loopback.

mod access;
mod bench;
mod client_cert;
mod connect;
mod connect_splice;
mod ipv6;
mod limits;
mod logging;
mod matrix;
mod oneway;
mod relay;
mod report;
mod serve;
mod signals;
mod tls;
mod tls_unix;
mod transcript;
mod udp;
mod unix;
mod util;
mod wait;
