//! `netcrab connect` against real servers.

use crate::util::*;

#[test]
fn refused_connection_exits_4() {
    let port = free_port();
    let out = run(&["connect", &format!("127.0.0.1:{port}"), "--send", "x"]);
    assert_eq!(code(out.status), 4, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("connection refused"),
        "{}",
        stderr(&out)
    );
}
