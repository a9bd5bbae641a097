//! netcrab's integration tests: one binary, one file per command, all
//! running the real executable against real sockets on loopback.

mod bench;
mod connect;
mod serve;
mod util;
