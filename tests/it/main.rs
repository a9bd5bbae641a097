//! netcrab's integration tests: one binary, one file per command, all
//! running the real executable against real sockets on loopback; and
//! `library`, which runs the library in-process through the API the
//! examples use.

mod access;
mod bench;
mod client_cert;
mod connect;
mod connect_splice;
mod connect_udp;
mod exec;
mod faults;
mod hostile;
mod ipv6;
mod library;
mod limits;
mod logging;
mod matrix;
mod metrics;
mod oneway;
mod ops;
mod proxy;
mod proxy_client;
mod proxy_protocol;
mod quic;
mod relay;
mod report;
mod scan;
mod serve;
mod signals;
mod source;
mod stdio;
mod tls;
mod tls_unix;
mod transcript;
mod udp;
mod udp_relay;
mod unix;
mod unixgram;
mod util;
mod wait;
mod wait_http;
mod ws;
