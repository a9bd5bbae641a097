//! netcrab's integration tests: one binary, one file per command, all
//! running the real executable against real sockets on loopback.

mod bench;
mod connect;
mod connect_splice;
mod hostile;
mod ipv6;
mod limits;
mod logging;
mod matrix;
mod relay;
mod report;
mod scan;
mod serve;
mod signals;
mod source;
mod tls;
mod tls_unix;
mod udp;
mod unix;
mod util;
mod wait;
mod wait_http;
mod ws;
