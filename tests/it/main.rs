//! netcrab's integration tests: one binary, one file per command, all
//! running the real executable against real sockets on loopback; and
//! `library`, which runs the library in-process through the API the
//! examples use.

mod bench;
mod connect;
mod connect_splice;
mod hostile;
mod ipv6;
mod library;
mod limits;
mod logging;
mod matrix;
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
