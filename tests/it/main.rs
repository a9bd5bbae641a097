//! netcrab's integration tests: one binary, one file per command, all
//! running the real executable against real sockets on loopback.

mod bench;
mod connect;
mod connect_splice;
mod ipv6;
mod limits;
mod logging;
mod matrix;
mod proxy;
mod relay;
mod report;
mod serve;
mod signals;
mod tls;
mod tls_unix;
mod udp;
mod unix;
mod util;
mod wait;
