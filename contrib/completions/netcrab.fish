# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_netcrab_global_optspecs
    string join \n v/verbose q/quiet log-format= h/help V/version
end

function __fish_netcrab_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_netcrab_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_netcrab_using_subcommand
    set -l cmd (__fish_netcrab_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c netcrab -n "__fish_netcrab_needs_command" -l log-format -d 'Log line format on stderr: text (`netcrab: message`) or json (one object per line: time, level, message and the event\'s fields)' -r -f -a "text\t'`netcrab: [level: ]message`'
json\t'One JSON object per line: time, level, message, fields'"
complete -c netcrab -n "__fish_netcrab_needs_command" -s v -l verbose -d 'More logging on stderr (-v debug, -vv trace with timestamps)'
complete -c netcrab -n "__fish_netcrab_needs_command" -s q -l quiet -d 'Only errors on stderr'
complete -c netcrab -n "__fish_netcrab_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c netcrab -n "__fish_netcrab_needs_command" -s V -l version -d 'Print version'
complete -c netcrab -n "__fish_netcrab_needs_command" -f -a "serve" -d 'Listen and answer every connection (the seed\'s server)'
complete -c netcrab -n "__fish_netcrab_needs_command" -f -a "connect" -d 'Connect, send stdin (or --send TEXT), print what comes back'
complete -c netcrab -n "__fish_netcrab_needs_command" -f -a "relay" -d 'Accept connections and relay each to an upstream (a port forwarder)'
complete -c netcrab -n "__fish_netcrab_needs_command" -f -a "proxy" -d 'A SOCKS5, SOCKS4/4a and HTTP CONNECT forward proxy on one port'
complete -c netcrab -n "__fish_netcrab_needs_command" -f -a "wait" -d 'Wait until services accept connections, then run a command'
complete -c netcrab -n "__fish_netcrab_needs_command" -f -a "bench" -d 'Load-test a request/response server (an embedded echo server without ADDR)'
complete -c netcrab -n "__fish_netcrab_needs_command" -f -a "scan" -d 'Scan TCP ports: report each open, closed or filtered'
complete -c netcrab -n "__fish_netcrab_needs_command" -f -a "completions" -d 'Print a shell completion script on stdout'
complete -c netcrab -n "__fish_netcrab_needs_command" -f -a "man" -d 'Write man pages for netcrab and each command into DIR (netcrab.1, netcrab-serve.1, ...)'
complete -c netcrab -n "__fish_netcrab_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l mode -d 'Permissions of the Unix socket file, in octal (e.g. 660); set before it accepts connections' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l reply -d 'Answer every message with TEXT (the default service)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l max-line -d 'With --lines or --chat: the longest line accepted; a longer one gets an error and the connection closes (1 to 1GiB)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l port-file -d 'Write the bound port to PATH once listening (for scripts; use with port 0)' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l max-conns -d 'Serve at most N connections at once; at the limit a new connection replaces the one idle longest (2s at least), or waits in the kernel\'s backlog (1 to 1000000)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l idle-timeout -d 'Close connections when nothing moves either way for this long, a blocked write included (0: never)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l line-timeout -d 'With --lines: a line must end within this long of its first byte, or the connection gets an error and closes (0: never; at most 1d)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l drain-timeout -d 'On SIGINT/SIGTERM, close idle connections at once and let those in the middle of a message finish for this long, then close them' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l keepalive -d 'Enable TCP keepalive probes after this much idle time (1s to 32767s)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l proxy-header-timeout -d 'With --accept-proxy: close a connection whose header has not arrived within this long' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l cert -d 'Certificate chain (PEM, leaf first); without it a self-signed certificate is generated' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l key -d 'Private key of --cert (PEM)' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l client-ca -d 'Require client certificates signed by a CA in FILE (PEM), or identical to one in it: mutual TLS' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l client-pin-sha256 -d 'Require a client certificate with this SHA-256 fingerprint (repeatable); with --client-ca it must pass that too, without it any signer is fine' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l client-name -d 'Require a client certificate carrying NAME in its subjectAltName (or CN when it has none); repeatable, any one matches; needs --client-ca or --client-pin-sha256' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l alpn -d 'ALPN protocol(s) to accept, in order of preference (repeatable or comma-separated) [quic:// default: netcrab]' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l handshake-timeout -d 'Give up on a client that has not completed the TLS handshake in this long [default: 10s]' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l allow -d 'Accept only clients matching ADDR: an address, a CIDR block or a host name (resolved at start); repeatable or comma-separated' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l allow-file -d 'Read --allow rules from FILE: one a line, `#` comments' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l deny -d 'Refuse clients matching ADDR (wins over --allow); repeatable or comma-separated' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l deny-file -d 'Read --deny rules from FILE: one a line, `#` comments' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -s o -l output -d 'Write every byte each way to FILE, as received and sent (servers: each chunk after a `[conn ID < LEN]` or `[conn ID > LEN]` line); no zero-copy then' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -s x -l hex-dump -d 'Write a hex dump of every byte each way to FILE: direction-tagged blocks in `hexdump -C` columns; no zero-copy then' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l ws-ping -d 'Send a ping this often; a peer silent for two intervals is dead (exit 5)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l ws-max-message -d 'Largest message accepted, 1 to 1GiB [default: 16MiB]' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l ws-protocol -d 'Subprotocol: offered by connect (in order), accepted by serve and relay (repeatable)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l ws-header -d 'Extra request header \'NAME: VALUE\' sent by connect (repeatable)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l ws-origin -d 'Serve: accept only requests whose Origin is one of these (403 otherwise; repeatable)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l ws-path -d 'Serve: accept only this request path (404 otherwise) [default: any path]' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l metrics -d 'Serve Prometheus metrics at http://ADDR/metrics (HOST:PORT, :PORT or PORT; port 0 picks a free port, logged); --help lists them' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -s e -l exec -d 'Run a program with the connection as its stdin and stdout (serve: one per connection): "PROGRAM ARGS", split at whitespace (quotes group words), no shell' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l sh-exec -d 'Like --exec, but COMMAND is run by /bin/sh -c' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l kill-grace -d 'With --exec/--sh-exec: how long a program gets to exit after SIGTERM (peer reset, idle or drain timeout) before SIGKILL (at most 1h)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l log-format -d 'Log line format on stderr: text (`netcrab: message`) or json (one object per line: time, level, message and the event\'s fields)' -r -f -a "text\t'`netcrab: [level: ]message`'
json\t'One JSON object per line: time, level, message, fields'"
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -s u -l udp -d 'UDP: an address without a scheme means udp://HOST:PORT'
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -s U -l unix -d 'Unix socket: an address without a scheme is a socket path (or @NAME, an abstract socket); with --tls, TLS over it (tls+unix); with -u, a Unix datagram socket (unixgram)'
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l echo -d 'Send back exactly what each connection sends'
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l discard -d 'Read and drop everything'
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l stdio -d 'The netcat listener: the connection\'s bytes go to stdout, stdin goes to the peer (half-close as connect); serves one connection and exits with connect\'s exit code for it, unless -k'
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l broker -d 'Broker: every client\'s bytes go to all the other clients, never back to the sender'
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l chat -d 'Chat: each line goes to all the other clients as "<userN> LINE", with join and leave notices (lines up to --max-line)'
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -s k -l keep-open -d 'With --stdio: keep listening; stdin goes to every client and what any client sends goes to stdout (the other services always keep listening)'
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l once -d 'Serve one connection: stop listening once it is accepted, exit when it ends, with its outcome as exit code (0 clean, else the error\'s code); not with --broker, --chat or -k'
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l no-splice -d 'With --stdio: copy through user space instead of splice(2)/sendfile(2)'
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l lines -d 'Answer each line instead of each read (replies then end with a newline)'
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l accept-proxy -d 'Every connection starts with a PROXY protocol header (v1 or v2, from HAProxy or relay --send-proxy): log the client address it carries; a connection without a valid one is closed'
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -s 4 -l ipv4 -d 'IPv4 only: names resolve to IPv4 addresses, localhost is 127.0.0.1'
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -s 6 -l ipv6 -d 'IPv6 only: names resolve to IPv6 addresses, localhost is ::1'
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l tls -d 'Speak TLS: an address without a scheme means tls://'
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l ws-text -d 'Send text messages (input checked to be UTF-8) instead of binary ones'
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -l pty -d 'With --exec/--sh-exec: give the program a pseudo-terminal (stdin, stdout and stderr; for interactive programs) instead of pipes'
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -s v -l verbose -d 'More logging on stderr (-v debug, -vv trace with timestamps)'
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -s q -l quiet -d 'Only errors on stderr'
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c netcrab -n "__fish_netcrab_using_subcommand serve" -s V -l version -d 'Print version'
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -l send -d 'Send TEXT instead of reading stdin' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -l wait -d 'After sending, wait at most this long for the peer to finish (UDP: for replies; default 1s)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -l connect-timeout -d 'Give up on a connection attempt after this long' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -l idle-timeout -d 'Give up when nothing moves in either direction for this long (0: never)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -l keepalive -d 'Enable TCP keepalive probes after this much idle time (1s to 32767s); quic://: PINGs at this interval' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -s s -l source -d 'Connect from this local IP address (it must be one of this host\'s)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -s p -l source-port -d 'Connect from this local port (1 to 65535; not SO_REUSEADDR: a busy port is an error, exit 9)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -l retry -d 'Retry a failed connection attempt up to N times (0 to 1000000)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -l retry-for -d 'Keep retrying for at most this long overall (no attempt cap unless --retry is given)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -l retry-delay -d 'The backoff before the first retry; it doubles after each, with full jitter' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -l retry-max-delay -d 'The largest backoff between retries' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -l proxy -d 'Connect through this proxy: socks5://[USER:PASSWORD@]HOST:PORT, socks5h:// (the proxy resolves names), socks4://, socks4a://, http:// (CONNECT) or https:// (TLS to the proxy); repeat to chain, each reached through the one before. Default: $NETCRAB_PROXY, else $ALL_PROXY, else $all_proxy' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -l proxy-ca -d 'https:// proxies: also trust the CA certificates in this PEM file (repeatable)' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -l ca -d 'Also trust the CA certificate(s) in FILE (PEM), besides the system\'s trust store, and a server certificate identical to one in FILE (its name and dates still checked; repeatable)' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -l servername -d 'The name to ask for (SNI) and to verify the certificate against, instead of the address\'s host (localhost for a Unix socket)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -l pin-sha256 -d 'Accept exactly the server certificate with this SHA-256 fingerprint (hex, colons optional), e.g. a self-signed one' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -l cert -d 'Present this client certificate chain (PEM), for servers that require one' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -l key -d 'Private key of --cert (PEM)' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -l alpn -d 'ALPN protocol(s) to offer, in order of preference (repeatable or comma-separated) [quic:// default: netcrab]' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -l handshake-timeout -d 'Give up when the TLS handshake takes longer than this [default: 10s]' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -s o -l output -d 'Write every byte each way to FILE, as received and sent (servers: each chunk after a `[conn ID < LEN]` or `[conn ID > LEN]` line); no zero-copy then' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -s x -l hex-dump -d 'Write a hex dump of every byte each way to FILE: direction-tagged blocks in `hexdump -C` columns; no zero-copy then' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -l ws-ping -d 'Send a ping this often; a peer silent for two intervals is dead (exit 5)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -l ws-max-message -d 'Largest message accepted, 1 to 1GiB [default: 16MiB]' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -l ws-protocol -d 'Subprotocol: offered by connect (in order), accepted by serve and relay (repeatable)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -l ws-header -d 'Extra request header \'NAME: VALUE\' sent by connect (repeatable)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -l ws-origin -d 'Serve: accept only requests whose Origin is one of these (403 otherwise; repeatable)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -l ws-path -d 'Serve: accept only this request path (404 otherwise) [default: any path]' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -s e -l exec -d 'Run a program with the connection as its stdin and stdout (serve: one per connection): "PROGRAM ARGS", split at whitespace (quotes group words), no shell' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -l sh-exec -d 'Like --exec, but COMMAND is run by /bin/sh -c' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -l kill-grace -d 'With --exec/--sh-exec: how long a program gets to exit after SIGTERM (peer reset, idle or drain timeout) before SIGKILL (at most 1h)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -l log-format -d 'Log line format on stderr: text (`netcrab: message`) or json (one object per line: time, level, message and the event\'s fields)' -r -f -a "text\t'`netcrab: [level: ]message`'
json\t'One JSON object per line: time, level, message, fields'"
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -s u -l udp -d 'UDP: an address without a scheme means udp://HOST:PORT'
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -s U -l unix -d 'Unix socket: an address without a scheme is a socket path (or @NAME, an abstract socket); with --tls, TLS over it (tls+unix); with -u, a Unix datagram socket (unixgram)'
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -l raw -d 'UDP: send each read of stdin (up to 65507 bytes) as a datagram, instead of each line'
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -l no-shutdown -d 'Do not half-close the connection after sending (some servers close on EOF)'
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -l no-splice -d 'Copy through user space even where stdin or stdout is a pipe or file (splice(2)/sendfile(2) are used by default on Linux)'
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -s z -l zero -d 'Zero I/O: connect (for TLS, handshake), close, and exit 0 when the port is open (4 refused, 5 timed out, ...)'
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -s 4 -l ipv4 -d 'IPv4 only: names resolve to IPv4 addresses, localhost is 127.0.0.1'
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -s 6 -l ipv6 -d 'IPv6 only: names resolve to IPv6 addresses, localhost is ::1'
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -s C -l crlf -d 'Turn each LF of stdin (or --send) into CRLF; a CRLF stays as it is'
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -l send-only -d 'Only send: never read from the connection, and finish when stdin ends'
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -l recv-only -d 'Only receive: never read stdin (nor half-close); finish when the peer closes'
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -l no-proxy -d 'Connect directly, ignoring NETCRAB_PROXY and ALL_PROXY'
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -l proxy-insecure -d 'https:// proxies: do not verify the proxy\'s certificate'
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -l tls -d 'Speak TLS: an address without a scheme means tls://'
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -l insecure -d 'Do not verify the server\'s certificate at all (warns every time; prefer --pin-sha256)'
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -l ws-text -d 'Send text messages (input checked to be UTF-8) instead of binary ones'
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -l pty -d 'With --exec/--sh-exec: give the program a pseudo-terminal (stdin, stdout and stderr; for interactive programs) instead of pipes'
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -s v -l verbose -d 'More logging on stderr (-v debug, -vv trace with timestamps)'
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -s q -l quiet -d 'Only errors on stderr'
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c netcrab -n "__fish_netcrab_using_subcommand connect" -s V -l version -d 'Print version'
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l port-file -d 'Write the bound port to PATH once listening (for scripts; use with port 0)' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l max-conns -d 'Relay at most N connections at once; more wait in the kernel\'s backlog, unaccepted, until one closes (1 to 1000000). For udp: at most N sessions; a new client\'s datagrams are then dropped and counted' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l idle-timeout -d 'Close a connection when nothing moves in either direction for this long (0: never)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l drain-timeout -d 'On SIGINT/SIGTERM, let open connections finish for this long, then close them' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l connect-timeout -d 'Give up on one upstream connection attempt after this long' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l keepalive -d 'Enable TCP keepalive probes after this much idle time, on both sides (1s to 32767s)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -s s -l source -d 'Connect from this local IP address (it must be one of this host\'s)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -s p -l source-port -d 'Connect from this local port (1 to 65535; not SO_REUSEADDR: a busy port is an error, exit 9)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l proxy-header-timeout -d 'With --accept-proxy: close a connection whose header has not arrived within this long' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l send-proxy -d 'Tell the upstream the client\'s address: send a PROXY protocol header (v1: text, v2: binary) before the client\'s first byte' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l retry -d 'Retry a failed connection attempt up to N times (0 to 1000000)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l retry-for -d 'Keep retrying for at most this long overall (no attempt cap unless --retry is given)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l retry-delay -d 'The backoff before the first retry; it doubles after each, with full jitter' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l retry-max-delay -d 'The largest backoff between retries' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l proxy -d 'Connect through this proxy: socks5://[USER:PASSWORD@]HOST:PORT, socks5h:// (the proxy resolves names), socks4://, socks4a://, http:// (CONNECT) or https:// (TLS to the proxy); repeat to chain, each reached through the one before. Default: $NETCRAB_PROXY, else $ALL_PROXY, else $all_proxy' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l proxy-ca -d 'https:// proxies: also trust the CA certificates in this PEM file (repeatable)' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l cert -d 'Certificate chain (PEM, leaf first); without it a self-signed certificate is generated' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l key -d 'Private key of --cert (PEM)' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l client-ca -d 'Require client certificates signed by a CA in FILE (PEM), or identical to one in it: mutual TLS' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l client-pin-sha256 -d 'Require a client certificate with this SHA-256 fingerprint (repeatable); with --client-ca it must pass that too, without it any signer is fine' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l client-name -d 'Require a client certificate carrying NAME in its subjectAltName (or CN when it has none); repeatable, any one matches; needs --client-ca or --client-pin-sha256' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l alpn -d 'ALPN protocol(s) to accept, in order of preference (repeatable or comma-separated) [quic:// default: netcrab]' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l handshake-timeout -d 'Give up on a client that has not completed the TLS handshake in this long [default: 10s]' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l ws-ping -d 'Send a ping this often; a peer silent for two intervals is dead (exit 5)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l ws-max-message -d 'Largest message accepted, 1 to 1GiB [default: 16MiB]' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l ws-protocol -d 'Subprotocol: offered by connect (in order), accepted by serve and relay (repeatable)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l ws-header -d 'Extra request header \'NAME: VALUE\' sent by connect (repeatable)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l ws-origin -d 'Serve: accept only requests whose Origin is one of these (403 otherwise; repeatable)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l ws-path -d 'Serve: accept only this request path (404 otherwise) [default: any path]' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l upstream-ca -d 'Also trust the CA certificate(s) in FILE (PEM) for the upstream, besides the system\'s trust store' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l upstream-servername -d 'The name to ask the upstream for (SNI) and to verify its certificate against' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l upstream-pin-sha256 -d 'Accept exactly the upstream certificate with this SHA-256 fingerprint' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l upstream-cert -d 'Present this client certificate chain (PEM) to the upstream' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l upstream-key -d 'Private key of --upstream-cert (PEM)' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l allow -d 'Accept only clients matching ADDR: an address, a CIDR block or a host name (resolved at start); repeatable or comma-separated' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l allow-file -d 'Read --allow rules from FILE: one a line, `#` comments' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l deny -d 'Refuse clients matching ADDR (wins over --allow); repeatable or comma-separated' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l deny-file -d 'Read --deny rules from FILE: one a line, `#` comments' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -s o -l output -d 'Write every byte each way to FILE, as received and sent (servers: each chunk after a `[conn ID < LEN]` or `[conn ID > LEN]` line); no zero-copy then' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -s x -l hex-dump -d 'Write a hex dump of every byte each way to FILE: direction-tagged blocks in `hexdump -C` columns; no zero-copy then' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l latency -d 'Deliver every chunk this long after it was read (order kept; reading goes on meanwhile)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l jitter -d 'Vary the latency uniformly by up to this much either way (never below 0, never reordering)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l bandwidth -d 'Deliver at most this rate: B/s, KiB/s, MiB/s, GiB/s; kB/s, MB/s, GB/s; kbit/s, Mbit/s, Gbit/s' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l slice -d 'Split every write into pieces of at most SIZE bytes (1 to 16MiB)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l slice-delay -d 'With --slice: wait this long between two pieces' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l reset-after -d 'Deliver exactly this many bytes, then reset the client (RST) and close the upstream' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l reset-after-time -d 'Reset the client and close the upstream this long after the connection started' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l timeout-after -d 'Stop forwarding and close both sides this long after the connection started' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l drop -d 'Drop this share of datagrams, 0 to 1 (UDP relays only)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l fault-rate -d 'Affect this share of connections, 0 to 1 (0: none, exactly; default 1: all)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l faults -d 'Read the faults from a TOML file with the same keys (latency = "100ms"); re-read on SIGHUP' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l control -d 'Serve the HTTP/JSON control API on ADDR: GET/PUT/DELETE /faults, GET /connections' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l metrics -d 'Serve Prometheus metrics at http://ADDR/metrics (HOST:PORT, :PORT or PORT; port 0 picks a free port, logged); --help lists them' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l udp-idle -d 'Close a client\'s session (its upstream socket) when no datagram has moved either way for this long (100ms to 1d) [default: 60s]' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l log-format -d 'Log line format on stderr: text (`netcrab: message`) or json (one object per line: time, level, message and the event\'s fields)' -r -f -a "text\t'`netcrab: [level: ]message`'
json\t'One JSON object per line: time, level, message, fields'"
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l once -d 'Serve one connection: stop listening once it is accepted, exit when it ends, with its outcome as exit code (0 clean, else the error\'s code)'
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l no-splice -d 'Copy through user space even for TCP to TCP (splice(2) is used by default on Linux)'
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -s 4 -l ipv4 -d 'IPv4 only: names resolve to IPv4 addresses, localhost is 127.0.0.1'
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -s 6 -l ipv6 -d 'IPv6 only: names resolve to IPv6 addresses, localhost is ::1'
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l accept-proxy -d 'Every accepted connection starts with a PROXY protocol header (v1 or v2): log the client address it carries (and pass it on with --send-proxy); a connection without a valid one is closed'
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l no-proxy -d 'Connect directly, ignoring NETCRAB_PROXY and ALL_PROXY'
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l proxy-insecure -d 'https:// proxies: do not verify the proxy\'s certificate'
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l tls -d 'Speak TLS: an address without a scheme means tls://'
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l ws-text -d 'Send text messages (input checked to be UTF-8) instead of binary ones'
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l upstream-tls -d 'Speak TLS to the upstream: an UPSTREAM without a scheme means tls://'
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l upstream-insecure -d 'Do not verify the upstream\'s certificate at all (warns)'
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l up -d 'Apply the faults client to upstream instead'
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l both -d 'Apply the faults both ways'
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -l blackhole -d 'Accept and swallow: read and discard, never forward'
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -s v -l verbose -d 'More logging on stderr (-v debug, -vv trace with timestamps)'
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -s q -l quiet -d 'Only errors on stderr'
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c netcrab -n "__fish_netcrab_using_subcommand relay" -s V -l version -d 'Print version'
complete -c netcrab -n "__fish_netcrab_using_subcommand proxy" -l auth -d 'Require this user name and password (SOCKS5 username/password; HTTP Basic, else 407); each 1 to 255 bytes. Prefer the environment variable: the command line is visible to other users' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand proxy" -l allow-dest -d 'Allow only destinations matching one of these (repeatable): an address, an address block (10.0.0.0/8) or a host name (example.com and the names under it; *.example.com only those under it). Without it every destination is allowed, loopback included' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand proxy" -l deny-dest -d 'Refuse destinations matching one of these (repeatable; wins over --allow-dest), checked on the requested name and on every address it resolves to' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand proxy" -l allow -d 'Accept only clients whose address matches one of these (repeatable): an address or an address block' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand proxy" -l deny -d 'Refuse clients whose address matches one of these (repeatable; wins over --allow)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand proxy" -l max-header -d 'The largest HTTP request head accepted; a longer one gets 431 (1 to 1GiB)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand proxy" -l port-file -d 'Write the bound port to PATH once listening (for scripts; use with port 0)' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand proxy" -l proxy-header-timeout -d 'With --accept-proxy: close a connection whose header has not arrived within this long' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand proxy" -l max-conns -d 'Serve at most N connections at once; more wait in the kernel\'s backlog, unaccepted, until one closes (1 to 1000000)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand proxy" -l idle-timeout -d 'Close a tunnel when nothing moves in either direction for this long (0: never)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand proxy" -l drain-timeout -d 'On SIGINT/SIGTERM, let open connections finish for this long, then close them' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand proxy" -l connect-timeout -d 'Give up connecting to a destination (name resolution included) after this long' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand proxy" -l keepalive -d 'Enable TCP keepalive probes after this much idle time, on both sides (1s to 32767s)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand proxy" -l cert -d 'Certificate chain (PEM, leaf first); without it a self-signed certificate is generated' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand proxy" -l key -d 'Private key of --cert (PEM)' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand proxy" -l client-ca -d 'Require client certificates signed by a CA in FILE (PEM), or identical to one in it: mutual TLS' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand proxy" -l client-pin-sha256 -d 'Require a client certificate with this SHA-256 fingerprint (repeatable); with --client-ca it must pass that too, without it any signer is fine' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand proxy" -l client-name -d 'Require a client certificate carrying NAME in its subjectAltName (or CN when it has none); repeatable, any one matches; needs --client-ca or --client-pin-sha256' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand proxy" -l alpn -d 'ALPN protocol(s) to accept, in order of preference (repeatable or comma-separated) [quic:// default: netcrab]' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand proxy" -l metrics -d 'Serve Prometheus metrics at http://ADDR/metrics (HOST:PORT, :PORT or PORT; port 0 picks a free port, logged); --help lists them' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand proxy" -l handshake-timeout -d 'Close a client that has not completed its handshake (TLS, then the SOCKS5 greeting, authentication and request, the SOCKS4 request or the HTTP request head) this long after connecting [default: 10s]' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand proxy" -l log-format -d 'Log line format on stderr: text (`netcrab: message`) or json (one object per line: time, level, message and the event\'s fields)' -r -f -a "text\t'`netcrab: [level: ]message`'
json\t'One JSON object per line: time, level, message, fields'"
complete -c netcrab -n "__fish_netcrab_using_subcommand proxy" -l accept-proxy -d 'Every accepted connection starts with a PROXY protocol header (v1 or v2), as sent by a load balancer in front: log and check the client address it carries; a connection without a valid one is closed'
complete -c netcrab -n "__fish_netcrab_using_subcommand proxy" -l once -d 'Serve one connection: stop listening once it is accepted, exit when it ends, with its outcome as exit code (0 clean, else the error\'s code)'
complete -c netcrab -n "__fish_netcrab_using_subcommand proxy" -l no-splice -d 'Copy through user space even for TCP to TCP (splice(2) is used by default on Linux)'
complete -c netcrab -n "__fish_netcrab_using_subcommand proxy" -l tls -d 'Speak TLS: an address without a scheme means tls://'
complete -c netcrab -n "__fish_netcrab_using_subcommand proxy" -s v -l verbose -d 'More logging on stderr (-v debug, -vv trace with timestamps)'
complete -c netcrab -n "__fish_netcrab_using_subcommand proxy" -s q -l quiet -d 'Only errors on stderr'
complete -c netcrab -n "__fish_netcrab_using_subcommand proxy" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c netcrab -n "__fish_netcrab_using_subcommand proxy" -s V -l version -d 'Print version'
complete -c netcrab -n "__fish_netcrab_using_subcommand wait" -s t -l timeout -d 'Give up after this long overall (0: wait forever; `-t 15` as with wait-for-it: a bare number is seconds)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand wait" -l send -d 'Send TEXT after connecting' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand wait" -l expect -d 'Ready only once what the target sends (a banner, the reply to --send, or a URL\'s body) contains TEXT' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand wait" -l expect-status -d 'URLs: the response statuses that mean ready, as codes and ranges' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand wait" -l attempt-timeout -d 'Give up on one attempt (connect, send, read the reply) after this long' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand wait" -l retry-delay -d 'The backoff cap before the second attempt; it doubles after each, with full jitter' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand wait" -l retry-max-delay -d 'The largest backoff between attempts' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand wait" -s s -l source -d 'Connect from this local IP address (it must be one of this host\'s)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand wait" -s p -l source-port -d 'Connect from this local port (1 to 65535; not SO_REUSEADDR: a busy port is an error, exit 9)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand wait" -l proxy -d 'Connect through this proxy: socks5://[USER:PASSWORD@]HOST:PORT, socks5h:// (the proxy resolves names), socks4://, socks4a://, http:// (CONNECT) or https:// (TLS to the proxy); repeat to chain, each reached through the one before. Default: $NETCRAB_PROXY, else $ALL_PROXY, else $all_proxy' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand wait" -l proxy-ca -d 'https:// proxies: also trust the CA certificates in this PEM file (repeatable)' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand wait" -l ca -d 'Also trust the CA certificate(s) in FILE (PEM), besides the system\'s trust store, and a server certificate identical to one in FILE (its name and dates still checked; repeatable)' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand wait" -l servername -d 'The name to ask for (SNI) and to verify the certificate against, instead of the address\'s host (localhost for a Unix socket)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand wait" -l pin-sha256 -d 'Accept exactly the server certificate with this SHA-256 fingerprint (hex, colons optional), e.g. a self-signed one' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand wait" -l cert -d 'Present this client certificate chain (PEM), for servers that require one' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand wait" -l key -d 'Private key of --cert (PEM)' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand wait" -l alpn -d 'ALPN protocol(s) to offer, in order of preference (repeatable or comma-separated) [quic:// default: netcrab]' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand wait" -l handshake-timeout -d 'Give up when the TLS handshake takes longer than this [default: 10s]' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand wait" -l ws-ping -d 'Send a ping this often; a peer silent for two intervals is dead (exit 5)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand wait" -l ws-max-message -d 'Largest message accepted, 1 to 1GiB [default: 16MiB]' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand wait" -l ws-protocol -d 'Subprotocol: offered by connect (in order), accepted by serve and relay (repeatable)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand wait" -l ws-header -d 'Extra request header \'NAME: VALUE\' sent by connect (repeatable)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand wait" -l ws-origin -d 'Serve: accept only requests whose Origin is one of these (403 otherwise; repeatable)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand wait" -l ws-path -d 'Serve: accept only this request path (404 otherwise) [default: any path]' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand wait" -l log-format -d 'Log line format on stderr: text (`netcrab: message`) or json (one object per line: time, level, message and the event\'s fields)' -r -f -a "text\t'`netcrab: [level: ]message`'
json\t'One JSON object per line: time, level, message, fields'"
complete -c netcrab -n "__fish_netcrab_using_subcommand wait" -l any -d 'One ready target is enough'
complete -c netcrab -n "__fish_netcrab_using_subcommand wait" -l invert -d 'Wait until the targets stop accepting connections instead'
complete -c netcrab -n "__fish_netcrab_using_subcommand wait" -l run-anyway -d 'On timeout, report the targets still down and run COMMAND anyway'
complete -c netcrab -n "__fish_netcrab_using_subcommand wait" -s 4 -l ipv4 -d 'IPv4 only: names resolve to IPv4 addresses, localhost is 127.0.0.1'
complete -c netcrab -n "__fish_netcrab_using_subcommand wait" -s 6 -l ipv6 -d 'IPv6 only: names resolve to IPv6 addresses, localhost is ::1'
complete -c netcrab -n "__fish_netcrab_using_subcommand wait" -l no-proxy -d 'Connect directly, ignoring NETCRAB_PROXY and ALL_PROXY'
complete -c netcrab -n "__fish_netcrab_using_subcommand wait" -l proxy-insecure -d 'https:// proxies: do not verify the proxy\'s certificate'
complete -c netcrab -n "__fish_netcrab_using_subcommand wait" -l tls -d 'Speak TLS: an address without a scheme means tls://'
complete -c netcrab -n "__fish_netcrab_using_subcommand wait" -l insecure -d 'Do not verify the server\'s certificate at all (warns every time; prefer --pin-sha256)'
complete -c netcrab -n "__fish_netcrab_using_subcommand wait" -l ws-text -d 'Send text messages (input checked to be UTF-8) instead of binary ones'
complete -c netcrab -n "__fish_netcrab_using_subcommand wait" -s v -l verbose -d 'More logging on stderr (-v debug, -vv trace with timestamps)'
complete -c netcrab -n "__fish_netcrab_using_subcommand wait" -s q -l quiet -d 'Only errors on stderr'
complete -c netcrab -n "__fish_netcrab_using_subcommand wait" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c netcrab -n "__fish_netcrab_using_subcommand wait" -s V -l version -d 'Print version'
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -s c -l connections -d 'Connections kept open at once (1 to 1000000)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -s s -l size -d 'Request size in bytes, a fixed printable pattern (4k, 1MiB: powers of 1024; 1 to 1GiB)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -l payload -d 'Request content: TEXT, or @FILE for a file\'s bytes (replaces --size)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -l expect -d 'What each reply must be: `echo` (the request itself), TEXT, @FILE, or `none` (send only: bulk to a discard server)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -s d -l duration -d 'Measure for this long' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -s n -l requests -d 'Measure this many requests instead of a duration' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -l warmup -d 'Run this long before measuring (not counted)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -l pipeline -d 'Requests in flight per connection (1 to 65536)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -l rate -d 'Open loop: R requests per second in total, on a fixed schedule (default: closed loop)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -l connect-rate -d 'Open at most R connections per second' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -l timeout -d 'A request without its complete reply after this long fails as a timeout' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -l connect-timeout -d 'Give up on a connection attempt after this long' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -l hold -d 'Keep each connection open, idle, this long after its last reply (to measure a server\'s idle-connection memory)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -l histogram-out -d 'Save the latency histograms (an HdrHistogram interval log, one per second) for `bench merge` and --compare' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -l report -d 'Write a self-contained HTML report (percentile plot, rate, latency and errors over time)' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -l plot -d 'Write the latency percentile plot as an SVG file' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -l compare -d 'Also draw these saved runs (--histogram-out files) in the --report and --plot charts; takes every file after it, so give ADDR first' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -l shard -d 'Run shard I of N (1-based): this process\'s share of -c, -n, --rate and --connect-rate, for load from several machines (see below)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -l start-at -d 'Wait until TIME to start (RFC 3339 in UTC, e.g. 2026-01-01T12:00:00Z, or unix seconds), so shards on several machines start together' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -l server-pid -d 'Also report the CPU time of this server process and its descendants (for servers that fork)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -l source -d 'Connect from this local IP address (-s is --size here; no source port: one cannot serve many connections)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -l proxy -d 'Connect through this proxy: socks5://[USER:PASSWORD@]HOST:PORT, socks5h:// (the proxy resolves names), socks4://, socks4a://, http:// (CONNECT) or https:// (TLS to the proxy); repeat to chain, each reached through the one before. Default: $NETCRAB_PROXY, else $ALL_PROXY, else $all_proxy' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -l proxy-ca -d 'https:// proxies: also trust the CA certificates in this PEM file (repeatable)' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -l ca -d 'Also trust the CA certificate(s) in FILE (PEM), besides the system\'s trust store, and a server certificate identical to one in FILE (its name and dates still checked; repeatable)' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -l servername -d 'The name to ask for (SNI) and to verify the certificate against, instead of the address\'s host (localhost for a Unix socket)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -l pin-sha256 -d 'Accept exactly the server certificate with this SHA-256 fingerprint (hex, colons optional), e.g. a self-signed one' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -l cert -d 'Present this client certificate chain (PEM), for servers that require one' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -l key -d 'Private key of --cert (PEM)' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -l alpn -d 'ALPN protocol(s) to offer, in order of preference (repeatable or comma-separated) [quic:// default: netcrab]' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -l handshake-timeout -d 'Give up when the TLS handshake takes longer than this [default: 10s]' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -l ws-ping -d 'Send a ping this often; a peer silent for two intervals is dead (exit 5)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -l ws-max-message -d 'Largest message accepted, 1 to 1GiB [default: 16MiB]' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -l ws-protocol -d 'Subprotocol: offered by connect (in order), accepted by serve and relay (repeatable)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -l ws-header -d 'Extra request header \'NAME: VALUE\' sent by connect (repeatable)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -l ws-origin -d 'Serve: accept only requests whose Origin is one of these (403 otherwise; repeatable)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -l ws-path -d 'Serve: accept only this request path (404 otherwise) [default: any path]' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -l log-format -d 'Log line format on stderr: text (`netcrab: message`) or json (one object per line: time, level, message and the event\'s fields)' -r -f -a "text\t'`netcrab: [level: ]message`'
json\t'One JSON object per line: time, level, message, fields'"
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -l churn -d 'Connect, make one exchange, close, repeat (measures connection set-up)'
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -l json -d 'Print the report as JSON (schema netcrab.bench/v1) instead of a table'
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -s 4 -l ipv4 -d 'IPv4 only: names resolve to IPv4 addresses, localhost is 127.0.0.1'
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -s 6 -l ipv6 -d 'IPv6 only: names resolve to IPv6 addresses, localhost is ::1'
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -l no-proxy -d 'Connect directly, ignoring NETCRAB_PROXY and ALL_PROXY'
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -l proxy-insecure -d 'https:// proxies: do not verify the proxy\'s certificate'
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -l tls -d 'Speak TLS: an address without a scheme means tls://'
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -l insecure -d 'Do not verify the server\'s certificate at all (warns every time; prefer --pin-sha256)'
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -l ws-text -d 'Send text messages (input checked to be UTF-8) instead of binary ones'
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -s v -l verbose -d 'More logging on stderr (-v debug, -vv trace with timestamps)'
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -s q -l quiet -d 'Only errors on stderr'
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -s V -l version -d 'Print version'
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -a "merge" -d 'Merge histogram logs of runs made at the same time (e.g. from several machines) into one report'
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and not __fish_seen_subcommand_from merge help" -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and __fish_seen_subcommand_from merge" -l report -d 'Write a self-contained HTML report: one line per file and one for the merge' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and __fish_seen_subcommand_from merge" -l plot -d 'Write the latency percentile plot (each file and the merge) as an SVG file' -r -F
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and __fish_seen_subcommand_from merge" -l log-format -d 'Log line format on stderr: text (`netcrab: message`) or json (one object per line: time, level, message and the event\'s fields)' -r -f -a "text\t'`netcrab: [level: ]message`'
json\t'One JSON object per line: time, level, message, fields'"
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and __fish_seen_subcommand_from merge" -l json -d 'Print the merged report as JSON'
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and __fish_seen_subcommand_from merge" -s v -l verbose -d 'More logging on stderr (-v debug, -vv trace with timestamps)'
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and __fish_seen_subcommand_from merge" -s q -l quiet -d 'Only errors on stderr'
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and __fish_seen_subcommand_from merge" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and __fish_seen_subcommand_from merge" -s V -l version -d 'Print version'
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and __fish_seen_subcommand_from help" -f -a "merge" -d 'Merge histogram logs of runs made at the same time (e.g. from several machines) into one report'
complete -c netcrab -n "__fish_netcrab_using_subcommand bench; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c netcrab -n "__fish_netcrab_using_subcommand scan" -s c -l concurrency -d 'Probe at most N ports at once (1 to 16384; each holds a socket)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand scan" -l timeout -d 'Call a port filtered when it has not answered for this long' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand scan" -l retries -d 'Probe a filtered port up to N more times (0 to 10)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand scan" -l banner-wait -d 'With --banner: how long to wait for an open port to speak' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand scan" -s s -l source -d 'Connect from this local IP address (it must be one of this host\'s)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand scan" -s p -l source-port -d 'Connect from this local port (1 to 65535; not SO_REUSEADDR: a busy port is an error, exit 9)' -r
complete -c netcrab -n "__fish_netcrab_using_subcommand scan" -l log-format -d 'Log line format on stderr: text (`netcrab: message`) or json (one object per line: time, level, message and the event\'s fields)' -r -f -a "text\t'`netcrab: [level: ]message`'
json\t'One JSON object per line: time, level, message, fields'"
complete -c netcrab -n "__fish_netcrab_using_subcommand scan" -l banner -d 'Read what each open port sends first (up to 1 KiB, for --banner-wait)'
complete -c netcrab -n "__fish_netcrab_using_subcommand scan" -l all -d 'Show every port, not only the open ones'
complete -c netcrab -n "__fish_netcrab_using_subcommand scan" -l json -d 'Print JSON on stdout (schema netcrab.scan/v1, in the README)'
complete -c netcrab -n "__fish_netcrab_using_subcommand scan" -s 4 -l ipv4 -d 'IPv4 only: names resolve to IPv4 addresses, localhost is 127.0.0.1'
complete -c netcrab -n "__fish_netcrab_using_subcommand scan" -s 6 -l ipv6 -d 'IPv6 only: names resolve to IPv6 addresses, localhost is ::1'
complete -c netcrab -n "__fish_netcrab_using_subcommand scan" -s v -l verbose -d 'More logging on stderr (-v debug, -vv trace with timestamps)'
complete -c netcrab -n "__fish_netcrab_using_subcommand scan" -s q -l quiet -d 'Only errors on stderr'
complete -c netcrab -n "__fish_netcrab_using_subcommand scan" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c netcrab -n "__fish_netcrab_using_subcommand scan" -s V -l version -d 'Print version'
complete -c netcrab -n "__fish_netcrab_using_subcommand completions" -l log-format -d 'Log line format on stderr: text (`netcrab: message`) or json (one object per line: time, level, message and the event\'s fields)' -r -f -a "text\t'`netcrab: [level: ]message`'
json\t'One JSON object per line: time, level, message, fields'"
complete -c netcrab -n "__fish_netcrab_using_subcommand completions" -s v -l verbose -d 'More logging on stderr (-v debug, -vv trace with timestamps)'
complete -c netcrab -n "__fish_netcrab_using_subcommand completions" -s q -l quiet -d 'Only errors on stderr'
complete -c netcrab -n "__fish_netcrab_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c netcrab -n "__fish_netcrab_using_subcommand completions" -s V -l version -d 'Print version'
complete -c netcrab -n "__fish_netcrab_using_subcommand man" -l log-format -d 'Log line format on stderr: text (`netcrab: message`) or json (one object per line: time, level, message and the event\'s fields)' -r -f -a "text\t'`netcrab: [level: ]message`'
json\t'One JSON object per line: time, level, message, fields'"
complete -c netcrab -n "__fish_netcrab_using_subcommand man" -s v -l verbose -d 'More logging on stderr (-v debug, -vv trace with timestamps)'
complete -c netcrab -n "__fish_netcrab_using_subcommand man" -s q -l quiet -d 'Only errors on stderr'
complete -c netcrab -n "__fish_netcrab_using_subcommand man" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c netcrab -n "__fish_netcrab_using_subcommand man" -s V -l version -d 'Print version'
complete -c netcrab -n "__fish_netcrab_using_subcommand help; and not __fish_seen_subcommand_from serve connect relay proxy wait bench scan completions man help" -f -a "serve" -d 'Listen and answer every connection (the seed\'s server)'
complete -c netcrab -n "__fish_netcrab_using_subcommand help; and not __fish_seen_subcommand_from serve connect relay proxy wait bench scan completions man help" -f -a "connect" -d 'Connect, send stdin (or --send TEXT), print what comes back'
complete -c netcrab -n "__fish_netcrab_using_subcommand help; and not __fish_seen_subcommand_from serve connect relay proxy wait bench scan completions man help" -f -a "relay" -d 'Accept connections and relay each to an upstream (a port forwarder)'
complete -c netcrab -n "__fish_netcrab_using_subcommand help; and not __fish_seen_subcommand_from serve connect relay proxy wait bench scan completions man help" -f -a "proxy" -d 'A SOCKS5, SOCKS4/4a and HTTP CONNECT forward proxy on one port'
complete -c netcrab -n "__fish_netcrab_using_subcommand help; and not __fish_seen_subcommand_from serve connect relay proxy wait bench scan completions man help" -f -a "wait" -d 'Wait until services accept connections, then run a command'
complete -c netcrab -n "__fish_netcrab_using_subcommand help; and not __fish_seen_subcommand_from serve connect relay proxy wait bench scan completions man help" -f -a "bench" -d 'Load-test a request/response server (an embedded echo server without ADDR)'
complete -c netcrab -n "__fish_netcrab_using_subcommand help; and not __fish_seen_subcommand_from serve connect relay proxy wait bench scan completions man help" -f -a "scan" -d 'Scan TCP ports: report each open, closed or filtered'
complete -c netcrab -n "__fish_netcrab_using_subcommand help; and not __fish_seen_subcommand_from serve connect relay proxy wait bench scan completions man help" -f -a "completions" -d 'Print a shell completion script on stdout'
complete -c netcrab -n "__fish_netcrab_using_subcommand help; and not __fish_seen_subcommand_from serve connect relay proxy wait bench scan completions man help" -f -a "man" -d 'Write man pages for netcrab and each command into DIR (netcrab.1, netcrab-serve.1, ...)'
complete -c netcrab -n "__fish_netcrab_using_subcommand help; and not __fish_seen_subcommand_from serve connect relay proxy wait bench scan completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c netcrab -n "__fish_netcrab_using_subcommand help; and __fish_seen_subcommand_from bench" -f -a "merge" -d 'Merge histogram logs of runs made at the same time (e.g. from several machines) into one report'
