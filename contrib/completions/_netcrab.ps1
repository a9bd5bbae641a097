
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'netcrab' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'netcrab'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'netcrab' {
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format on stderr: text (`netcrab: message`) or json (one object per line: time, level, message and the event''s fields)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace with timestamps)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace with timestamps)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Listen and answer every connection (the seed''s server)')
            [CompletionResult]::new('connect', 'connect', [CompletionResultType]::ParameterValue, 'Connect, send stdin (or --send TEXT), print what comes back')
            [CompletionResult]::new('relay', 'relay', [CompletionResultType]::ParameterValue, 'Accept connections and relay each to an upstream (a port forwarder)')
            [CompletionResult]::new('proxy', 'proxy', [CompletionResultType]::ParameterValue, 'A SOCKS5, SOCKS4/4a and HTTP CONNECT forward proxy on one port')
            [CompletionResult]::new('wait', 'wait', [CompletionResultType]::ParameterValue, 'Wait until services accept connections, then run a command')
            [CompletionResult]::new('bench', 'bench', [CompletionResultType]::ParameterValue, 'Load-test a request/response server (an embedded echo server without ADDR)')
            [CompletionResult]::new('scan', 'scan', [CompletionResultType]::ParameterValue, 'Scan TCP ports: report each open, closed or filtered')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script on stdout')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Write man pages for netcrab and each command into DIR (netcrab.1, netcrab-serve.1, ...)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'netcrab;serve' {
            [CompletionResult]::new('--mode', '--mode', [CompletionResultType]::ParameterName, 'Permissions of the Unix socket file, in octal (e.g. 660); set before it accepts connections')
            [CompletionResult]::new('--reply', '--reply', [CompletionResultType]::ParameterName, 'Answer every message with TEXT (the default service)')
            [CompletionResult]::new('--max-line', '--max-line', [CompletionResultType]::ParameterName, 'With --lines: the longest line accepted; a longer one gets an error and the connection closes (1 to 1GiB)')
            [CompletionResult]::new('--port-file', '--port-file', [CompletionResultType]::ParameterName, 'Write the bound port to PATH once listening (for scripts; use with port 0)')
            [CompletionResult]::new('--max-conns', '--max-conns', [CompletionResultType]::ParameterName, 'Serve at most N connections at once; at the limit a new connection replaces the one idle longest (2s at least), or waits in the kernel''s backlog (1 to 1000000)')
            [CompletionResult]::new('--idle-timeout', '--idle-timeout', [CompletionResultType]::ParameterName, 'Close connections when nothing moves either way for this long, a blocked write included (0: never)')
            [CompletionResult]::new('--line-timeout', '--line-timeout', [CompletionResultType]::ParameterName, 'With --lines: a line must end within this long of its first byte, or the connection gets an error and closes (0: never; at most 1d)')
            [CompletionResult]::new('--drain-timeout', '--drain-timeout', [CompletionResultType]::ParameterName, 'On SIGINT/SIGTERM, close idle connections at once and let those in the middle of a message finish for this long, then close them')
            [CompletionResult]::new('--keepalive', '--keepalive', [CompletionResultType]::ParameterName, 'Enable TCP keepalive probes after this much idle time (1s to 32767s)')
            [CompletionResult]::new('--proxy-header-timeout', '--proxy-header-timeout', [CompletionResultType]::ParameterName, 'With --accept-proxy: close a connection whose header has not arrived within this long')
            [CompletionResult]::new('--cert', '--cert', [CompletionResultType]::ParameterName, 'Certificate chain (PEM, leaf first); without it a self-signed certificate is generated')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Private key of --cert (PEM)')
            [CompletionResult]::new('--client-ca', '--client-ca', [CompletionResultType]::ParameterName, 'Require client certificates signed by a CA in FILE (PEM), or identical to one in it: mutual TLS')
            [CompletionResult]::new('--client-pin-sha256', '--client-pin-sha256', [CompletionResultType]::ParameterName, 'Require a client certificate with this SHA-256 fingerprint (repeatable); with --client-ca it must pass that too, without it any signer is fine')
            [CompletionResult]::new('--client-name', '--client-name', [CompletionResultType]::ParameterName, 'Require a client certificate carrying NAME in its subjectAltName (or CN when it has none); repeatable, any one matches; needs --client-ca or --client-pin-sha256')
            [CompletionResult]::new('--alpn', '--alpn', [CompletionResultType]::ParameterName, 'ALPN protocol(s) to accept, in order of preference (repeatable or comma-separated) [quic:// default: netcrab]')
            [CompletionResult]::new('--handshake-timeout', '--handshake-timeout', [CompletionResultType]::ParameterName, 'Give up on a client that has not completed the TLS handshake in this long [default: 10s]')
            [CompletionResult]::new('--allow', '--allow', [CompletionResultType]::ParameterName, 'Accept only clients matching ADDR: an address, a CIDR block or a host name (resolved at start); repeatable or comma-separated')
            [CompletionResult]::new('--allow-file', '--allow-file', [CompletionResultType]::ParameterName, 'Read --allow rules from FILE: one a line, `#` comments')
            [CompletionResult]::new('--deny', '--deny', [CompletionResultType]::ParameterName, 'Refuse clients matching ADDR (wins over --allow); repeatable or comma-separated')
            [CompletionResult]::new('--deny-file', '--deny-file', [CompletionResultType]::ParameterName, 'Read --deny rules from FILE: one a line, `#` comments')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Write every byte each way to FILE, as received and sent (servers: each chunk after a `[conn ID < LEN]` or `[conn ID > LEN]` line); no zero-copy then')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Write every byte each way to FILE, as received and sent (servers: each chunk after a `[conn ID < LEN]` or `[conn ID > LEN]` line); no zero-copy then')
            [CompletionResult]::new('-x', '-x', [CompletionResultType]::ParameterName, 'Write a hex dump of every byte each way to FILE: direction-tagged blocks in `hexdump -C` columns; no zero-copy then')
            [CompletionResult]::new('--hex-dump', '--hex-dump', [CompletionResultType]::ParameterName, 'Write a hex dump of every byte each way to FILE: direction-tagged blocks in `hexdump -C` columns; no zero-copy then')
            [CompletionResult]::new('--ws-ping', '--ws-ping', [CompletionResultType]::ParameterName, 'Send a ping this often; a peer silent for two intervals is dead (exit 5)')
            [CompletionResult]::new('--ws-max-message', '--ws-max-message', [CompletionResultType]::ParameterName, 'Largest message accepted, 1 to 1GiB [default: 16MiB]')
            [CompletionResult]::new('--ws-protocol', '--ws-protocol', [CompletionResultType]::ParameterName, 'Subprotocol: offered by connect (in order), accepted by serve and relay (repeatable)')
            [CompletionResult]::new('--ws-header', '--ws-header', [CompletionResultType]::ParameterName, 'Extra request header ''NAME: VALUE'' sent by connect (repeatable)')
            [CompletionResult]::new('--ws-origin', '--ws-origin', [CompletionResultType]::ParameterName, 'Serve: accept only requests whose Origin is one of these (403 otherwise; repeatable)')
            [CompletionResult]::new('--ws-path', '--ws-path', [CompletionResultType]::ParameterName, 'Serve: accept only this request path (404 otherwise) [default: any path]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format on stderr: text (`netcrab: message`) or json (one object per line: time, level, message and the event''s fields)')
            [CompletionResult]::new('-u', '-u', [CompletionResultType]::ParameterName, 'UDP: an address without a scheme means udp://HOST:PORT')
            [CompletionResult]::new('--udp', '--udp', [CompletionResultType]::ParameterName, 'UDP: an address without a scheme means udp://HOST:PORT')
            [CompletionResult]::new('-U', '-U ', [CompletionResultType]::ParameterName, 'Unix socket: an address without a scheme is a socket path (or @NAME, an abstract socket); with --tls, TLS over it (tls+unix)')
            [CompletionResult]::new('--unix', '--unix', [CompletionResultType]::ParameterName, 'Unix socket: an address without a scheme is a socket path (or @NAME, an abstract socket); with --tls, TLS over it (tls+unix)')
            [CompletionResult]::new('--echo', '--echo', [CompletionResultType]::ParameterName, 'Send back exactly what each connection sends')
            [CompletionResult]::new('--discard', '--discard', [CompletionResultType]::ParameterName, 'Read and drop everything')
            [CompletionResult]::new('--lines', '--lines', [CompletionResultType]::ParameterName, 'Answer each line instead of each read (replies then end with a newline)')
            [CompletionResult]::new('--accept-proxy', '--accept-proxy', [CompletionResultType]::ParameterName, 'Every connection starts with a PROXY protocol header (v1 or v2, from HAProxy or relay --send-proxy): log the client address it carries; a connection without a valid one is closed')
            [CompletionResult]::new('-4', '-4', [CompletionResultType]::ParameterName, 'IPv4 only: names resolve to IPv4 addresses, localhost is 127.0.0.1')
            [CompletionResult]::new('--ipv4', '--ipv4', [CompletionResultType]::ParameterName, 'IPv4 only: names resolve to IPv4 addresses, localhost is 127.0.0.1')
            [CompletionResult]::new('-6', '-6', [CompletionResultType]::ParameterName, 'IPv6 only: names resolve to IPv6 addresses, localhost is ::1')
            [CompletionResult]::new('--ipv6', '--ipv6', [CompletionResultType]::ParameterName, 'IPv6 only: names resolve to IPv6 addresses, localhost is ::1')
            [CompletionResult]::new('--tls', '--tls', [CompletionResultType]::ParameterName, 'Speak TLS: an address without a scheme means tls://')
            [CompletionResult]::new('--ws-text', '--ws-text', [CompletionResultType]::ParameterName, 'Send text messages (input checked to be UTF-8) instead of binary ones')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace with timestamps)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace with timestamps)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'netcrab;connect' {
            [CompletionResult]::new('--send', '--send', [CompletionResultType]::ParameterName, 'Send TEXT instead of reading stdin')
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'After sending, wait at most this long for the peer to finish (UDP: for replies; default 1s)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Give up on a connection attempt after this long')
            [CompletionResult]::new('--idle-timeout', '--idle-timeout', [CompletionResultType]::ParameterName, 'Give up when nothing moves in either direction for this long (0: never)')
            [CompletionResult]::new('--keepalive', '--keepalive', [CompletionResultType]::ParameterName, 'Enable TCP keepalive probes after this much idle time (1s to 32767s); quic://: PINGs at this interval')
            [CompletionResult]::new('-s', '-s', [CompletionResultType]::ParameterName, 'Connect from this local IP address (it must be one of this host''s)')
            [CompletionResult]::new('--source', '--source', [CompletionResultType]::ParameterName, 'Connect from this local IP address (it must be one of this host''s)')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Connect from this local port (1 to 65535; not SO_REUSEADDR: a busy port is an error, exit 9)')
            [CompletionResult]::new('--source-port', '--source-port', [CompletionResultType]::ParameterName, 'Connect from this local port (1 to 65535; not SO_REUSEADDR: a busy port is an error, exit 9)')
            [CompletionResult]::new('--retry', '--retry', [CompletionResultType]::ParameterName, 'Retry a failed connection attempt up to N times (0 to 1000000)')
            [CompletionResult]::new('--retry-for', '--retry-for', [CompletionResultType]::ParameterName, 'Keep retrying for at most this long overall (no attempt cap unless --retry is given)')
            [CompletionResult]::new('--retry-delay', '--retry-delay', [CompletionResultType]::ParameterName, 'The backoff before the first retry; it doubles after each, with full jitter')
            [CompletionResult]::new('--retry-max-delay', '--retry-max-delay', [CompletionResultType]::ParameterName, 'The largest backoff between retries')
            [CompletionResult]::new('--proxy', '--proxy', [CompletionResultType]::ParameterName, 'Connect through this proxy: socks5://[USER:PASSWORD@]HOST:PORT, socks5h:// (the proxy resolves names), socks4://, socks4a://, http:// (CONNECT) or https:// (TLS to the proxy); repeat to chain, each reached through the one before. Default: $NETCRAB_PROXY, else $ALL_PROXY, else $all_proxy')
            [CompletionResult]::new('--proxy-ca', '--proxy-ca', [CompletionResultType]::ParameterName, 'https:// proxies: also trust the CA certificates in this PEM file (repeatable)')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'Also trust the CA certificate(s) in FILE (PEM), besides the system''s trust store, and a server certificate identical to one in FILE (its name and dates still checked; repeatable)')
            [CompletionResult]::new('--servername', '--servername', [CompletionResultType]::ParameterName, 'The name to ask for (SNI) and to verify the certificate against, instead of the address''s host (localhost for a Unix socket)')
            [CompletionResult]::new('--pin-sha256', '--pin-sha256', [CompletionResultType]::ParameterName, 'Accept exactly the server certificate with this SHA-256 fingerprint (hex, colons optional), e.g. a self-signed one')
            [CompletionResult]::new('--cert', '--cert', [CompletionResultType]::ParameterName, 'Present this client certificate chain (PEM), for servers that require one')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Private key of --cert (PEM)')
            [CompletionResult]::new('--alpn', '--alpn', [CompletionResultType]::ParameterName, 'ALPN protocol(s) to offer, in order of preference (repeatable or comma-separated) [quic:// default: netcrab]')
            [CompletionResult]::new('--handshake-timeout', '--handshake-timeout', [CompletionResultType]::ParameterName, 'Give up when the TLS handshake takes longer than this [default: 10s]')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Write every byte each way to FILE, as received and sent (servers: each chunk after a `[conn ID < LEN]` or `[conn ID > LEN]` line); no zero-copy then')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Write every byte each way to FILE, as received and sent (servers: each chunk after a `[conn ID < LEN]` or `[conn ID > LEN]` line); no zero-copy then')
            [CompletionResult]::new('-x', '-x', [CompletionResultType]::ParameterName, 'Write a hex dump of every byte each way to FILE: direction-tagged blocks in `hexdump -C` columns; no zero-copy then')
            [CompletionResult]::new('--hex-dump', '--hex-dump', [CompletionResultType]::ParameterName, 'Write a hex dump of every byte each way to FILE: direction-tagged blocks in `hexdump -C` columns; no zero-copy then')
            [CompletionResult]::new('--ws-ping', '--ws-ping', [CompletionResultType]::ParameterName, 'Send a ping this often; a peer silent for two intervals is dead (exit 5)')
            [CompletionResult]::new('--ws-max-message', '--ws-max-message', [CompletionResultType]::ParameterName, 'Largest message accepted, 1 to 1GiB [default: 16MiB]')
            [CompletionResult]::new('--ws-protocol', '--ws-protocol', [CompletionResultType]::ParameterName, 'Subprotocol: offered by connect (in order), accepted by serve and relay (repeatable)')
            [CompletionResult]::new('--ws-header', '--ws-header', [CompletionResultType]::ParameterName, 'Extra request header ''NAME: VALUE'' sent by connect (repeatable)')
            [CompletionResult]::new('--ws-origin', '--ws-origin', [CompletionResultType]::ParameterName, 'Serve: accept only requests whose Origin is one of these (403 otherwise; repeatable)')
            [CompletionResult]::new('--ws-path', '--ws-path', [CompletionResultType]::ParameterName, 'Serve: accept only this request path (404 otherwise) [default: any path]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format on stderr: text (`netcrab: message`) or json (one object per line: time, level, message and the event''s fields)')
            [CompletionResult]::new('-u', '-u', [CompletionResultType]::ParameterName, 'UDP: an address without a scheme means udp://HOST:PORT')
            [CompletionResult]::new('--udp', '--udp', [CompletionResultType]::ParameterName, 'UDP: an address without a scheme means udp://HOST:PORT')
            [CompletionResult]::new('-U', '-U ', [CompletionResultType]::ParameterName, 'Unix socket: an address without a scheme is a socket path (or @NAME, an abstract socket); with --tls, TLS over it (tls+unix)')
            [CompletionResult]::new('--unix', '--unix', [CompletionResultType]::ParameterName, 'Unix socket: an address without a scheme is a socket path (or @NAME, an abstract socket); with --tls, TLS over it (tls+unix)')
            [CompletionResult]::new('--raw', '--raw', [CompletionResultType]::ParameterName, 'UDP: send each read of stdin (up to 65507 bytes) as a datagram, instead of each line')
            [CompletionResult]::new('--no-shutdown', '--no-shutdown', [CompletionResultType]::ParameterName, 'Do not half-close the connection after sending (some servers close on EOF)')
            [CompletionResult]::new('--no-splice', '--no-splice', [CompletionResultType]::ParameterName, 'Copy through user space even where stdin or stdout is a pipe or file (splice(2)/sendfile(2) are used by default on Linux)')
            [CompletionResult]::new('-z', '-z', [CompletionResultType]::ParameterName, 'Zero I/O: connect (for TLS, handshake), close, and exit 0 when the port is open (4 refused, 5 timed out, ...)')
            [CompletionResult]::new('--zero', '--zero', [CompletionResultType]::ParameterName, 'Zero I/O: connect (for TLS, handshake), close, and exit 0 when the port is open (4 refused, 5 timed out, ...)')
            [CompletionResult]::new('-4', '-4', [CompletionResultType]::ParameterName, 'IPv4 only: names resolve to IPv4 addresses, localhost is 127.0.0.1')
            [CompletionResult]::new('--ipv4', '--ipv4', [CompletionResultType]::ParameterName, 'IPv4 only: names resolve to IPv4 addresses, localhost is 127.0.0.1')
            [CompletionResult]::new('-6', '-6', [CompletionResultType]::ParameterName, 'IPv6 only: names resolve to IPv6 addresses, localhost is ::1')
            [CompletionResult]::new('--ipv6', '--ipv6', [CompletionResultType]::ParameterName, 'IPv6 only: names resolve to IPv6 addresses, localhost is ::1')
            [CompletionResult]::new('-C', '-C ', [CompletionResultType]::ParameterName, 'Turn each LF of stdin (or --send) into CRLF; a CRLF stays as it is')
            [CompletionResult]::new('--crlf', '--crlf', [CompletionResultType]::ParameterName, 'Turn each LF of stdin (or --send) into CRLF; a CRLF stays as it is')
            [CompletionResult]::new('--send-only', '--send-only', [CompletionResultType]::ParameterName, 'Only send: never read from the connection, and finish when stdin ends')
            [CompletionResult]::new('--recv-only', '--recv-only', [CompletionResultType]::ParameterName, 'Only receive: never read stdin (nor half-close); finish when the peer closes')
            [CompletionResult]::new('--no-proxy', '--no-proxy', [CompletionResultType]::ParameterName, 'Connect directly, ignoring NETCRAB_PROXY and ALL_PROXY')
            [CompletionResult]::new('--proxy-insecure', '--proxy-insecure', [CompletionResultType]::ParameterName, 'https:// proxies: do not verify the proxy''s certificate')
            [CompletionResult]::new('--tls', '--tls', [CompletionResultType]::ParameterName, 'Speak TLS: an address without a scheme means tls://')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Do not verify the server''s certificate at all (warns every time; prefer --pin-sha256)')
            [CompletionResult]::new('--ws-text', '--ws-text', [CompletionResultType]::ParameterName, 'Send text messages (input checked to be UTF-8) instead of binary ones')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace with timestamps)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace with timestamps)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'netcrab;relay' {
            [CompletionResult]::new('--port-file', '--port-file', [CompletionResultType]::ParameterName, 'Write the bound port to PATH once listening (for scripts; use with port 0)')
            [CompletionResult]::new('--max-conns', '--max-conns', [CompletionResultType]::ParameterName, 'Relay at most N connections at once; more wait in the kernel''s backlog, unaccepted, until one closes (1 to 1000000). For udp: at most N sessions; a new client''s datagrams are then dropped and counted')
            [CompletionResult]::new('--idle-timeout', '--idle-timeout', [CompletionResultType]::ParameterName, 'Close a connection when nothing moves in either direction for this long (0: never)')
            [CompletionResult]::new('--drain-timeout', '--drain-timeout', [CompletionResultType]::ParameterName, 'On SIGINT/SIGTERM, let open connections finish for this long, then close them')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Give up on one upstream connection attempt after this long')
            [CompletionResult]::new('--keepalive', '--keepalive', [CompletionResultType]::ParameterName, 'Enable TCP keepalive probes after this much idle time, on both sides (1s to 32767s)')
            [CompletionResult]::new('-s', '-s', [CompletionResultType]::ParameterName, 'Connect from this local IP address (it must be one of this host''s)')
            [CompletionResult]::new('--source', '--source', [CompletionResultType]::ParameterName, 'Connect from this local IP address (it must be one of this host''s)')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Connect from this local port (1 to 65535; not SO_REUSEADDR: a busy port is an error, exit 9)')
            [CompletionResult]::new('--source-port', '--source-port', [CompletionResultType]::ParameterName, 'Connect from this local port (1 to 65535; not SO_REUSEADDR: a busy port is an error, exit 9)')
            [CompletionResult]::new('--proxy-header-timeout', '--proxy-header-timeout', [CompletionResultType]::ParameterName, 'With --accept-proxy: close a connection whose header has not arrived within this long')
            [CompletionResult]::new('--send-proxy', '--send-proxy', [CompletionResultType]::ParameterName, 'Tell the upstream the client''s address: send a PROXY protocol header (v1: text, v2: binary) before the client''s first byte')
            [CompletionResult]::new('--retry', '--retry', [CompletionResultType]::ParameterName, 'Retry a failed connection attempt up to N times (0 to 1000000)')
            [CompletionResult]::new('--retry-for', '--retry-for', [CompletionResultType]::ParameterName, 'Keep retrying for at most this long overall (no attempt cap unless --retry is given)')
            [CompletionResult]::new('--retry-delay', '--retry-delay', [CompletionResultType]::ParameterName, 'The backoff before the first retry; it doubles after each, with full jitter')
            [CompletionResult]::new('--retry-max-delay', '--retry-max-delay', [CompletionResultType]::ParameterName, 'The largest backoff between retries')
            [CompletionResult]::new('--proxy', '--proxy', [CompletionResultType]::ParameterName, 'Connect through this proxy: socks5://[USER:PASSWORD@]HOST:PORT, socks5h:// (the proxy resolves names), socks4://, socks4a://, http:// (CONNECT) or https:// (TLS to the proxy); repeat to chain, each reached through the one before. Default: $NETCRAB_PROXY, else $ALL_PROXY, else $all_proxy')
            [CompletionResult]::new('--proxy-ca', '--proxy-ca', [CompletionResultType]::ParameterName, 'https:// proxies: also trust the CA certificates in this PEM file (repeatable)')
            [CompletionResult]::new('--cert', '--cert', [CompletionResultType]::ParameterName, 'Certificate chain (PEM, leaf first); without it a self-signed certificate is generated')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Private key of --cert (PEM)')
            [CompletionResult]::new('--client-ca', '--client-ca', [CompletionResultType]::ParameterName, 'Require client certificates signed by a CA in FILE (PEM), or identical to one in it: mutual TLS')
            [CompletionResult]::new('--client-pin-sha256', '--client-pin-sha256', [CompletionResultType]::ParameterName, 'Require a client certificate with this SHA-256 fingerprint (repeatable); with --client-ca it must pass that too, without it any signer is fine')
            [CompletionResult]::new('--client-name', '--client-name', [CompletionResultType]::ParameterName, 'Require a client certificate carrying NAME in its subjectAltName (or CN when it has none); repeatable, any one matches; needs --client-ca or --client-pin-sha256')
            [CompletionResult]::new('--alpn', '--alpn', [CompletionResultType]::ParameterName, 'ALPN protocol(s) to accept, in order of preference (repeatable or comma-separated) [quic:// default: netcrab]')
            [CompletionResult]::new('--handshake-timeout', '--handshake-timeout', [CompletionResultType]::ParameterName, 'Give up on a client that has not completed the TLS handshake in this long [default: 10s]')
            [CompletionResult]::new('--ws-ping', '--ws-ping', [CompletionResultType]::ParameterName, 'Send a ping this often; a peer silent for two intervals is dead (exit 5)')
            [CompletionResult]::new('--ws-max-message', '--ws-max-message', [CompletionResultType]::ParameterName, 'Largest message accepted, 1 to 1GiB [default: 16MiB]')
            [CompletionResult]::new('--ws-protocol', '--ws-protocol', [CompletionResultType]::ParameterName, 'Subprotocol: offered by connect (in order), accepted by serve and relay (repeatable)')
            [CompletionResult]::new('--ws-header', '--ws-header', [CompletionResultType]::ParameterName, 'Extra request header ''NAME: VALUE'' sent by connect (repeatable)')
            [CompletionResult]::new('--ws-origin', '--ws-origin', [CompletionResultType]::ParameterName, 'Serve: accept only requests whose Origin is one of these (403 otherwise; repeatable)')
            [CompletionResult]::new('--ws-path', '--ws-path', [CompletionResultType]::ParameterName, 'Serve: accept only this request path (404 otherwise) [default: any path]')
            [CompletionResult]::new('--upstream-ca', '--upstream-ca', [CompletionResultType]::ParameterName, 'Also trust the CA certificate(s) in FILE (PEM) for the upstream, besides the system''s trust store')
            [CompletionResult]::new('--upstream-servername', '--upstream-servername', [CompletionResultType]::ParameterName, 'The name to ask the upstream for (SNI) and to verify its certificate against')
            [CompletionResult]::new('--upstream-pin-sha256', '--upstream-pin-sha256', [CompletionResultType]::ParameterName, 'Accept exactly the upstream certificate with this SHA-256 fingerprint')
            [CompletionResult]::new('--upstream-cert', '--upstream-cert', [CompletionResultType]::ParameterName, 'Present this client certificate chain (PEM) to the upstream')
            [CompletionResult]::new('--upstream-key', '--upstream-key', [CompletionResultType]::ParameterName, 'Private key of --upstream-cert (PEM)')
            [CompletionResult]::new('--allow', '--allow', [CompletionResultType]::ParameterName, 'Accept only clients matching ADDR: an address, a CIDR block or a host name (resolved at start); repeatable or comma-separated')
            [CompletionResult]::new('--allow-file', '--allow-file', [CompletionResultType]::ParameterName, 'Read --allow rules from FILE: one a line, `#` comments')
            [CompletionResult]::new('--deny', '--deny', [CompletionResultType]::ParameterName, 'Refuse clients matching ADDR (wins over --allow); repeatable or comma-separated')
            [CompletionResult]::new('--deny-file', '--deny-file', [CompletionResultType]::ParameterName, 'Read --deny rules from FILE: one a line, `#` comments')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Write every byte each way to FILE, as received and sent (servers: each chunk after a `[conn ID < LEN]` or `[conn ID > LEN]` line); no zero-copy then')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Write every byte each way to FILE, as received and sent (servers: each chunk after a `[conn ID < LEN]` or `[conn ID > LEN]` line); no zero-copy then')
            [CompletionResult]::new('-x', '-x', [CompletionResultType]::ParameterName, 'Write a hex dump of every byte each way to FILE: direction-tagged blocks in `hexdump -C` columns; no zero-copy then')
            [CompletionResult]::new('--hex-dump', '--hex-dump', [CompletionResultType]::ParameterName, 'Write a hex dump of every byte each way to FILE: direction-tagged blocks in `hexdump -C` columns; no zero-copy then')
            [CompletionResult]::new('--udp-idle', '--udp-idle', [CompletionResultType]::ParameterName, 'Close a client''s session (its upstream socket) when no datagram has moved either way for this long (100ms to 1d) [default: 60s]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format on stderr: text (`netcrab: message`) or json (one object per line: time, level, message and the event''s fields)')
            [CompletionResult]::new('--no-splice', '--no-splice', [CompletionResultType]::ParameterName, 'Copy through user space even for TCP to TCP (splice(2) is used by default on Linux)')
            [CompletionResult]::new('-4', '-4', [CompletionResultType]::ParameterName, 'IPv4 only: names resolve to IPv4 addresses, localhost is 127.0.0.1')
            [CompletionResult]::new('--ipv4', '--ipv4', [CompletionResultType]::ParameterName, 'IPv4 only: names resolve to IPv4 addresses, localhost is 127.0.0.1')
            [CompletionResult]::new('-6', '-6', [CompletionResultType]::ParameterName, 'IPv6 only: names resolve to IPv6 addresses, localhost is ::1')
            [CompletionResult]::new('--ipv6', '--ipv6', [CompletionResultType]::ParameterName, 'IPv6 only: names resolve to IPv6 addresses, localhost is ::1')
            [CompletionResult]::new('--accept-proxy', '--accept-proxy', [CompletionResultType]::ParameterName, 'Every accepted connection starts with a PROXY protocol header (v1 or v2): log the client address it carries (and pass it on with --send-proxy); a connection without a valid one is closed')
            [CompletionResult]::new('--no-proxy', '--no-proxy', [CompletionResultType]::ParameterName, 'Connect directly, ignoring NETCRAB_PROXY and ALL_PROXY')
            [CompletionResult]::new('--proxy-insecure', '--proxy-insecure', [CompletionResultType]::ParameterName, 'https:// proxies: do not verify the proxy''s certificate')
            [CompletionResult]::new('--tls', '--tls', [CompletionResultType]::ParameterName, 'Speak TLS: an address without a scheme means tls://')
            [CompletionResult]::new('--ws-text', '--ws-text', [CompletionResultType]::ParameterName, 'Send text messages (input checked to be UTF-8) instead of binary ones')
            [CompletionResult]::new('--upstream-tls', '--upstream-tls', [CompletionResultType]::ParameterName, 'Speak TLS to the upstream: an UPSTREAM without a scheme means tls://')
            [CompletionResult]::new('--upstream-insecure', '--upstream-insecure', [CompletionResultType]::ParameterName, 'Do not verify the upstream''s certificate at all (warns)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace with timestamps)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace with timestamps)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'netcrab;proxy' {
            [CompletionResult]::new('--auth', '--auth', [CompletionResultType]::ParameterName, 'Require this user name and password (SOCKS5 username/password; HTTP Basic, else 407); each 1 to 255 bytes. Prefer the environment variable: the command line is visible to other users')
            [CompletionResult]::new('--allow-dest', '--allow-dest', [CompletionResultType]::ParameterName, 'Allow only destinations matching one of these (repeatable): an address, an address block (10.0.0.0/8) or a host name (example.com and the names under it; *.example.com only those under it). Without it every destination is allowed, loopback included')
            [CompletionResult]::new('--deny-dest', '--deny-dest', [CompletionResultType]::ParameterName, 'Refuse destinations matching one of these (repeatable; wins over --allow-dest), checked on the requested name and on every address it resolves to')
            [CompletionResult]::new('--allow', '--allow', [CompletionResultType]::ParameterName, 'Accept only clients whose address matches one of these (repeatable): an address or an address block')
            [CompletionResult]::new('--deny', '--deny', [CompletionResultType]::ParameterName, 'Refuse clients whose address matches one of these (repeatable; wins over --allow)')
            [CompletionResult]::new('--max-header', '--max-header', [CompletionResultType]::ParameterName, 'The largest HTTP request head accepted; a longer one gets 431 (1 to 1GiB)')
            [CompletionResult]::new('--port-file', '--port-file', [CompletionResultType]::ParameterName, 'Write the bound port to PATH once listening (for scripts; use with port 0)')
            [CompletionResult]::new('--proxy-header-timeout', '--proxy-header-timeout', [CompletionResultType]::ParameterName, 'With --accept-proxy: close a connection whose header has not arrived within this long')
            [CompletionResult]::new('--max-conns', '--max-conns', [CompletionResultType]::ParameterName, 'Serve at most N connections at once; more wait in the kernel''s backlog, unaccepted, until one closes (1 to 1000000)')
            [CompletionResult]::new('--idle-timeout', '--idle-timeout', [CompletionResultType]::ParameterName, 'Close a tunnel when nothing moves in either direction for this long (0: never)')
            [CompletionResult]::new('--drain-timeout', '--drain-timeout', [CompletionResultType]::ParameterName, 'On SIGINT/SIGTERM, let open connections finish for this long, then close them')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Give up connecting to a destination (name resolution included) after this long')
            [CompletionResult]::new('--keepalive', '--keepalive', [CompletionResultType]::ParameterName, 'Enable TCP keepalive probes after this much idle time, on both sides (1s to 32767s)')
            [CompletionResult]::new('--cert', '--cert', [CompletionResultType]::ParameterName, 'Certificate chain (PEM, leaf first); without it a self-signed certificate is generated')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Private key of --cert (PEM)')
            [CompletionResult]::new('--client-ca', '--client-ca', [CompletionResultType]::ParameterName, 'Require client certificates signed by a CA in FILE (PEM), or identical to one in it: mutual TLS')
            [CompletionResult]::new('--client-pin-sha256', '--client-pin-sha256', [CompletionResultType]::ParameterName, 'Require a client certificate with this SHA-256 fingerprint (repeatable); with --client-ca it must pass that too, without it any signer is fine')
            [CompletionResult]::new('--client-name', '--client-name', [CompletionResultType]::ParameterName, 'Require a client certificate carrying NAME in its subjectAltName (or CN when it has none); repeatable, any one matches; needs --client-ca or --client-pin-sha256')
            [CompletionResult]::new('--alpn', '--alpn', [CompletionResultType]::ParameterName, 'ALPN protocol(s) to accept, in order of preference (repeatable or comma-separated) [quic:// default: netcrab]')
            [CompletionResult]::new('--handshake-timeout', '--handshake-timeout', [CompletionResultType]::ParameterName, 'Close a client that has not completed its handshake (TLS, then the SOCKS5 greeting, authentication and request, the SOCKS4 request or the HTTP request head) this long after connecting [default: 10s]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format on stderr: text (`netcrab: message`) or json (one object per line: time, level, message and the event''s fields)')
            [CompletionResult]::new('--accept-proxy', '--accept-proxy', [CompletionResultType]::ParameterName, 'Every accepted connection starts with a PROXY protocol header (v1 or v2), as sent by a load balancer in front: log and check the client address it carries; a connection without a valid one is closed')
            [CompletionResult]::new('--no-splice', '--no-splice', [CompletionResultType]::ParameterName, 'Copy through user space even for TCP to TCP (splice(2) is used by default on Linux)')
            [CompletionResult]::new('--tls', '--tls', [CompletionResultType]::ParameterName, 'Speak TLS: an address without a scheme means tls://')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace with timestamps)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace with timestamps)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'netcrab;wait' {
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Give up after this long overall (0: wait forever)')
            [CompletionResult]::new('--send', '--send', [CompletionResultType]::ParameterName, 'Send TEXT after connecting')
            [CompletionResult]::new('--expect', '--expect', [CompletionResultType]::ParameterName, 'Ready only once what the target sends (a banner, the reply to --send, or a URL''s body) contains TEXT')
            [CompletionResult]::new('--expect-status', '--expect-status', [CompletionResultType]::ParameterName, 'URLs: the response statuses that mean ready, as codes and ranges')
            [CompletionResult]::new('--attempt-timeout', '--attempt-timeout', [CompletionResultType]::ParameterName, 'Give up on one attempt (connect, send, read the reply) after this long')
            [CompletionResult]::new('--retry-delay', '--retry-delay', [CompletionResultType]::ParameterName, 'The backoff cap before the second attempt; it doubles after each, with full jitter')
            [CompletionResult]::new('--retry-max-delay', '--retry-max-delay', [CompletionResultType]::ParameterName, 'The largest backoff between attempts')
            [CompletionResult]::new('-s', '-s', [CompletionResultType]::ParameterName, 'Connect from this local IP address (it must be one of this host''s)')
            [CompletionResult]::new('--source', '--source', [CompletionResultType]::ParameterName, 'Connect from this local IP address (it must be one of this host''s)')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Connect from this local port (1 to 65535; not SO_REUSEADDR: a busy port is an error, exit 9)')
            [CompletionResult]::new('--source-port', '--source-port', [CompletionResultType]::ParameterName, 'Connect from this local port (1 to 65535; not SO_REUSEADDR: a busy port is an error, exit 9)')
            [CompletionResult]::new('--proxy', '--proxy', [CompletionResultType]::ParameterName, 'Connect through this proxy: socks5://[USER:PASSWORD@]HOST:PORT, socks5h:// (the proxy resolves names), socks4://, socks4a://, http:// (CONNECT) or https:// (TLS to the proxy); repeat to chain, each reached through the one before. Default: $NETCRAB_PROXY, else $ALL_PROXY, else $all_proxy')
            [CompletionResult]::new('--proxy-ca', '--proxy-ca', [CompletionResultType]::ParameterName, 'https:// proxies: also trust the CA certificates in this PEM file (repeatable)')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'Also trust the CA certificate(s) in FILE (PEM), besides the system''s trust store, and a server certificate identical to one in FILE (its name and dates still checked; repeatable)')
            [CompletionResult]::new('--servername', '--servername', [CompletionResultType]::ParameterName, 'The name to ask for (SNI) and to verify the certificate against, instead of the address''s host (localhost for a Unix socket)')
            [CompletionResult]::new('--pin-sha256', '--pin-sha256', [CompletionResultType]::ParameterName, 'Accept exactly the server certificate with this SHA-256 fingerprint (hex, colons optional), e.g. a self-signed one')
            [CompletionResult]::new('--cert', '--cert', [CompletionResultType]::ParameterName, 'Present this client certificate chain (PEM), for servers that require one')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Private key of --cert (PEM)')
            [CompletionResult]::new('--alpn', '--alpn', [CompletionResultType]::ParameterName, 'ALPN protocol(s) to offer, in order of preference (repeatable or comma-separated) [quic:// default: netcrab]')
            [CompletionResult]::new('--handshake-timeout', '--handshake-timeout', [CompletionResultType]::ParameterName, 'Give up when the TLS handshake takes longer than this [default: 10s]')
            [CompletionResult]::new('--ws-ping', '--ws-ping', [CompletionResultType]::ParameterName, 'Send a ping this often; a peer silent for two intervals is dead (exit 5)')
            [CompletionResult]::new('--ws-max-message', '--ws-max-message', [CompletionResultType]::ParameterName, 'Largest message accepted, 1 to 1GiB [default: 16MiB]')
            [CompletionResult]::new('--ws-protocol', '--ws-protocol', [CompletionResultType]::ParameterName, 'Subprotocol: offered by connect (in order), accepted by serve and relay (repeatable)')
            [CompletionResult]::new('--ws-header', '--ws-header', [CompletionResultType]::ParameterName, 'Extra request header ''NAME: VALUE'' sent by connect (repeatable)')
            [CompletionResult]::new('--ws-origin', '--ws-origin', [CompletionResultType]::ParameterName, 'Serve: accept only requests whose Origin is one of these (403 otherwise; repeatable)')
            [CompletionResult]::new('--ws-path', '--ws-path', [CompletionResultType]::ParameterName, 'Serve: accept only this request path (404 otherwise) [default: any path]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format on stderr: text (`netcrab: message`) or json (one object per line: time, level, message and the event''s fields)')
            [CompletionResult]::new('--any', '--any', [CompletionResultType]::ParameterName, 'One ready target is enough')
            [CompletionResult]::new('--invert', '--invert', [CompletionResultType]::ParameterName, 'Wait until the targets stop accepting connections instead')
            [CompletionResult]::new('--run-anyway', '--run-anyway', [CompletionResultType]::ParameterName, 'On timeout, report the targets still down and run COMMAND anyway')
            [CompletionResult]::new('-4', '-4', [CompletionResultType]::ParameterName, 'IPv4 only: names resolve to IPv4 addresses, localhost is 127.0.0.1')
            [CompletionResult]::new('--ipv4', '--ipv4', [CompletionResultType]::ParameterName, 'IPv4 only: names resolve to IPv4 addresses, localhost is 127.0.0.1')
            [CompletionResult]::new('-6', '-6', [CompletionResultType]::ParameterName, 'IPv6 only: names resolve to IPv6 addresses, localhost is ::1')
            [CompletionResult]::new('--ipv6', '--ipv6', [CompletionResultType]::ParameterName, 'IPv6 only: names resolve to IPv6 addresses, localhost is ::1')
            [CompletionResult]::new('--no-proxy', '--no-proxy', [CompletionResultType]::ParameterName, 'Connect directly, ignoring NETCRAB_PROXY and ALL_PROXY')
            [CompletionResult]::new('--proxy-insecure', '--proxy-insecure', [CompletionResultType]::ParameterName, 'https:// proxies: do not verify the proxy''s certificate')
            [CompletionResult]::new('--tls', '--tls', [CompletionResultType]::ParameterName, 'Speak TLS: an address without a scheme means tls://')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Do not verify the server''s certificate at all (warns every time; prefer --pin-sha256)')
            [CompletionResult]::new('--ws-text', '--ws-text', [CompletionResultType]::ParameterName, 'Send text messages (input checked to be UTF-8) instead of binary ones')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace with timestamps)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace with timestamps)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'netcrab;bench' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Connections kept open at once (1 to 1000000)')
            [CompletionResult]::new('--connections', '--connections', [CompletionResultType]::ParameterName, 'Connections kept open at once (1 to 1000000)')
            [CompletionResult]::new('-s', '-s', [CompletionResultType]::ParameterName, 'Request size in bytes, a fixed printable pattern (4k, 1MiB: powers of 1024; 1 to 1GiB)')
            [CompletionResult]::new('--size', '--size', [CompletionResultType]::ParameterName, 'Request size in bytes, a fixed printable pattern (4k, 1MiB: powers of 1024; 1 to 1GiB)')
            [CompletionResult]::new('--payload', '--payload', [CompletionResultType]::ParameterName, 'Request content: TEXT, or @FILE for a file''s bytes (replaces --size)')
            [CompletionResult]::new('--expect', '--expect', [CompletionResultType]::ParameterName, 'What each reply must be: `echo` (the request itself), TEXT, @FILE, or `none` (send only: bulk to a discard server)')
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'Measure for this long')
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'Measure for this long')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Measure this many requests instead of a duration')
            [CompletionResult]::new('--requests', '--requests', [CompletionResultType]::ParameterName, 'Measure this many requests instead of a duration')
            [CompletionResult]::new('--warmup', '--warmup', [CompletionResultType]::ParameterName, 'Run this long before measuring (not counted)')
            [CompletionResult]::new('--pipeline', '--pipeline', [CompletionResultType]::ParameterName, 'Requests in flight per connection (1 to 65536)')
            [CompletionResult]::new('--rate', '--rate', [CompletionResultType]::ParameterName, 'Open loop: R requests per second in total, on a fixed schedule (default: closed loop)')
            [CompletionResult]::new('--connect-rate', '--connect-rate', [CompletionResultType]::ParameterName, 'Open at most R connections per second')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'A request without its complete reply after this long fails as a timeout')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Give up on a connection attempt after this long')
            [CompletionResult]::new('--hold', '--hold', [CompletionResultType]::ParameterName, 'Keep each connection open, idle, this long after its last reply (to measure a server''s idle-connection memory)')
            [CompletionResult]::new('--histogram-out', '--histogram-out', [CompletionResultType]::ParameterName, 'Save the latency histograms (an HdrHistogram interval log, one per second) for `bench merge` and --compare')
            [CompletionResult]::new('--report', '--report', [CompletionResultType]::ParameterName, 'Write a self-contained HTML report (percentile plot, rate, latency and errors over time)')
            [CompletionResult]::new('--plot', '--plot', [CompletionResultType]::ParameterName, 'Write the latency percentile plot as an SVG file')
            [CompletionResult]::new('--compare', '--compare', [CompletionResultType]::ParameterName, 'Also draw these saved runs (--histogram-out files) in the --report and --plot charts; takes every file after it, so give ADDR first')
            [CompletionResult]::new('--shard', '--shard', [CompletionResultType]::ParameterName, 'Run shard I of N (1-based): this process''s share of -c, -n, --rate and --connect-rate, for load from several machines (see below)')
            [CompletionResult]::new('--start-at', '--start-at', [CompletionResultType]::ParameterName, 'Wait until TIME to start (RFC 3339 in UTC, e.g. 2026-01-01T12:00:00Z, or unix seconds), so shards on several machines start together')
            [CompletionResult]::new('--server-pid', '--server-pid', [CompletionResultType]::ParameterName, 'Also report the CPU time of this server process and its descendants (for servers that fork)')
            [CompletionResult]::new('--source', '--source', [CompletionResultType]::ParameterName, 'Connect from this local IP address (-s is --size here; no source port: one cannot serve many connections)')
            [CompletionResult]::new('--proxy', '--proxy', [CompletionResultType]::ParameterName, 'Connect through this proxy: socks5://[USER:PASSWORD@]HOST:PORT, socks5h:// (the proxy resolves names), socks4://, socks4a://, http:// (CONNECT) or https:// (TLS to the proxy); repeat to chain, each reached through the one before. Default: $NETCRAB_PROXY, else $ALL_PROXY, else $all_proxy')
            [CompletionResult]::new('--proxy-ca', '--proxy-ca', [CompletionResultType]::ParameterName, 'https:// proxies: also trust the CA certificates in this PEM file (repeatable)')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'Also trust the CA certificate(s) in FILE (PEM), besides the system''s trust store, and a server certificate identical to one in FILE (its name and dates still checked; repeatable)')
            [CompletionResult]::new('--servername', '--servername', [CompletionResultType]::ParameterName, 'The name to ask for (SNI) and to verify the certificate against, instead of the address''s host (localhost for a Unix socket)')
            [CompletionResult]::new('--pin-sha256', '--pin-sha256', [CompletionResultType]::ParameterName, 'Accept exactly the server certificate with this SHA-256 fingerprint (hex, colons optional), e.g. a self-signed one')
            [CompletionResult]::new('--cert', '--cert', [CompletionResultType]::ParameterName, 'Present this client certificate chain (PEM), for servers that require one')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Private key of --cert (PEM)')
            [CompletionResult]::new('--alpn', '--alpn', [CompletionResultType]::ParameterName, 'ALPN protocol(s) to offer, in order of preference (repeatable or comma-separated) [quic:// default: netcrab]')
            [CompletionResult]::new('--handshake-timeout', '--handshake-timeout', [CompletionResultType]::ParameterName, 'Give up when the TLS handshake takes longer than this [default: 10s]')
            [CompletionResult]::new('--ws-ping', '--ws-ping', [CompletionResultType]::ParameterName, 'Send a ping this often; a peer silent for two intervals is dead (exit 5)')
            [CompletionResult]::new('--ws-max-message', '--ws-max-message', [CompletionResultType]::ParameterName, 'Largest message accepted, 1 to 1GiB [default: 16MiB]')
            [CompletionResult]::new('--ws-protocol', '--ws-protocol', [CompletionResultType]::ParameterName, 'Subprotocol: offered by connect (in order), accepted by serve and relay (repeatable)')
            [CompletionResult]::new('--ws-header', '--ws-header', [CompletionResultType]::ParameterName, 'Extra request header ''NAME: VALUE'' sent by connect (repeatable)')
            [CompletionResult]::new('--ws-origin', '--ws-origin', [CompletionResultType]::ParameterName, 'Serve: accept only requests whose Origin is one of these (403 otherwise; repeatable)')
            [CompletionResult]::new('--ws-path', '--ws-path', [CompletionResultType]::ParameterName, 'Serve: accept only this request path (404 otherwise) [default: any path]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format on stderr: text (`netcrab: message`) or json (one object per line: time, level, message and the event''s fields)')
            [CompletionResult]::new('--churn', '--churn', [CompletionResultType]::ParameterName, 'Connect, make one exchange, close, repeat (measures connection set-up)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the report as JSON (schema netcrab.bench/v1) instead of a table')
            [CompletionResult]::new('-4', '-4', [CompletionResultType]::ParameterName, 'IPv4 only: names resolve to IPv4 addresses, localhost is 127.0.0.1')
            [CompletionResult]::new('--ipv4', '--ipv4', [CompletionResultType]::ParameterName, 'IPv4 only: names resolve to IPv4 addresses, localhost is 127.0.0.1')
            [CompletionResult]::new('-6', '-6', [CompletionResultType]::ParameterName, 'IPv6 only: names resolve to IPv6 addresses, localhost is ::1')
            [CompletionResult]::new('--ipv6', '--ipv6', [CompletionResultType]::ParameterName, 'IPv6 only: names resolve to IPv6 addresses, localhost is ::1')
            [CompletionResult]::new('--no-proxy', '--no-proxy', [CompletionResultType]::ParameterName, 'Connect directly, ignoring NETCRAB_PROXY and ALL_PROXY')
            [CompletionResult]::new('--proxy-insecure', '--proxy-insecure', [CompletionResultType]::ParameterName, 'https:// proxies: do not verify the proxy''s certificate')
            [CompletionResult]::new('--tls', '--tls', [CompletionResultType]::ParameterName, 'Speak TLS: an address without a scheme means tls://')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Do not verify the server''s certificate at all (warns every time; prefer --pin-sha256)')
            [CompletionResult]::new('--ws-text', '--ws-text', [CompletionResultType]::ParameterName, 'Send text messages (input checked to be UTF-8) instead of binary ones')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace with timestamps)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace with timestamps)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('merge', 'merge', [CompletionResultType]::ParameterValue, 'Merge histogram logs of runs made at the same time (e.g. from several machines) into one report')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'netcrab;bench;merge' {
            [CompletionResult]::new('--report', '--report', [CompletionResultType]::ParameterName, 'Write a self-contained HTML report: one line per file and one for the merge')
            [CompletionResult]::new('--plot', '--plot', [CompletionResultType]::ParameterName, 'Write the latency percentile plot (each file and the merge) as an SVG file')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format on stderr: text (`netcrab: message`) or json (one object per line: time, level, message and the event''s fields)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the merged report as JSON')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace with timestamps)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace with timestamps)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'netcrab;bench;help' {
            [CompletionResult]::new('merge', 'merge', [CompletionResultType]::ParameterValue, 'Merge histogram logs of runs made at the same time (e.g. from several machines) into one report')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'netcrab;bench;help;merge' {
            break
        }
        'netcrab;bench;help;help' {
            break
        }
        'netcrab;scan' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Probe at most N ports at once (1 to 16384; each holds a socket)')
            [CompletionResult]::new('--concurrency', '--concurrency', [CompletionResultType]::ParameterName, 'Probe at most N ports at once (1 to 16384; each holds a socket)')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Call a port filtered when it has not answered for this long')
            [CompletionResult]::new('--retries', '--retries', [CompletionResultType]::ParameterName, 'Probe a filtered port up to N more times (0 to 10)')
            [CompletionResult]::new('--banner-wait', '--banner-wait', [CompletionResultType]::ParameterName, 'With --banner: how long to wait for an open port to speak')
            [CompletionResult]::new('-s', '-s', [CompletionResultType]::ParameterName, 'Connect from this local IP address (it must be one of this host''s)')
            [CompletionResult]::new('--source', '--source', [CompletionResultType]::ParameterName, 'Connect from this local IP address (it must be one of this host''s)')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Connect from this local port (1 to 65535; not SO_REUSEADDR: a busy port is an error, exit 9)')
            [CompletionResult]::new('--source-port', '--source-port', [CompletionResultType]::ParameterName, 'Connect from this local port (1 to 65535; not SO_REUSEADDR: a busy port is an error, exit 9)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format on stderr: text (`netcrab: message`) or json (one object per line: time, level, message and the event''s fields)')
            [CompletionResult]::new('--banner', '--banner', [CompletionResultType]::ParameterName, 'Read what each open port sends first (up to 1 KiB, for --banner-wait)')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'Show every port, not only the open ones')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON on stdout (schema netcrab.scan/v1, in the README)')
            [CompletionResult]::new('-4', '-4', [CompletionResultType]::ParameterName, 'IPv4 only: names resolve to IPv4 addresses, localhost is 127.0.0.1')
            [CompletionResult]::new('--ipv4', '--ipv4', [CompletionResultType]::ParameterName, 'IPv4 only: names resolve to IPv4 addresses, localhost is 127.0.0.1')
            [CompletionResult]::new('-6', '-6', [CompletionResultType]::ParameterName, 'IPv6 only: names resolve to IPv6 addresses, localhost is ::1')
            [CompletionResult]::new('--ipv6', '--ipv6', [CompletionResultType]::ParameterName, 'IPv6 only: names resolve to IPv6 addresses, localhost is ::1')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace with timestamps)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace with timestamps)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'netcrab;completions' {
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format on stderr: text (`netcrab: message`) or json (one object per line: time, level, message and the event''s fields)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace with timestamps)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace with timestamps)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'netcrab;man' {
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log line format on stderr: text (`netcrab: message`) or json (one object per line: time, level, message and the event''s fields)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace with timestamps)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v debug, -vv trace with timestamps)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'netcrab;help' {
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Listen and answer every connection (the seed''s server)')
            [CompletionResult]::new('connect', 'connect', [CompletionResultType]::ParameterValue, 'Connect, send stdin (or --send TEXT), print what comes back')
            [CompletionResult]::new('relay', 'relay', [CompletionResultType]::ParameterValue, 'Accept connections and relay each to an upstream (a port forwarder)')
            [CompletionResult]::new('proxy', 'proxy', [CompletionResultType]::ParameterValue, 'A SOCKS5, SOCKS4/4a and HTTP CONNECT forward proxy on one port')
            [CompletionResult]::new('wait', 'wait', [CompletionResultType]::ParameterValue, 'Wait until services accept connections, then run a command')
            [CompletionResult]::new('bench', 'bench', [CompletionResultType]::ParameterValue, 'Load-test a request/response server (an embedded echo server without ADDR)')
            [CompletionResult]::new('scan', 'scan', [CompletionResultType]::ParameterValue, 'Scan TCP ports: report each open, closed or filtered')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script on stdout')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Write man pages for netcrab and each command into DIR (netcrab.1, netcrab-serve.1, ...)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'netcrab;help;serve' {
            break
        }
        'netcrab;help;connect' {
            break
        }
        'netcrab;help;relay' {
            break
        }
        'netcrab;help;proxy' {
            break
        }
        'netcrab;help;wait' {
            break
        }
        'netcrab;help;bench' {
            [CompletionResult]::new('merge', 'merge', [CompletionResultType]::ParameterValue, 'Merge histogram logs of runs made at the same time (e.g. from several machines) into one report')
            break
        }
        'netcrab;help;bench;merge' {
            break
        }
        'netcrab;help;scan' {
            break
        }
        'netcrab;help;completions' {
            break
        }
        'netcrab;help;man' {
            break
        }
        'netcrab;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
