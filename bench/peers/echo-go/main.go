// Command echo-go is the Go peer that netcrab's benchmarks compare against:
// the goroutine-per-connection TCP server of the seed document
// (seed/network-programming-basics.zh.md, section 4.1), written the way a Go
// programmer would write it for real — accept errors back off like net/http
// instead of spinning, and each connection echoes (or discards) everything
// it reads until EOF.
//
// Each connection holds one 16 KiB buffer for its whole life, which is what
// makes its per-idle-connection memory cost (goroutine stack + buffer +
// runtime bookkeeping) the baseline netcrab's idle-connection target is
// measured against.
//
// Usage:
//
//	echo-go [-addr 127.0.0.1:0] [-port-file PATH] [-mode echo|discard]
//
// Once listening it prints "listening on ADDR" to stderr and, with
// -port-file, writes the bound port number and a newline to PATH (written to
// a temporary file then renamed, so a reader never sees a partial number).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// bufSize is the per-connection buffer: 16 KiB, held for the connection's life.
const bufSize = 16 * 1024

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	portFile := flag.String("port-file", "", "write the bound port number and a newline to this file once listening")
	mode := flag.String("mode", "echo", "per-connection service: echo (write back everything read) or discard (read and drop)")
	flag.Parse()

	log.SetFlags(0)
	log.SetPrefix("echo-go: ")

	var handle func(net.Conn)
	switch *mode {
	case "echo":
		handle = echo
	case "discard":
		handle = discard
	default:
		log.Fatalf("unknown -mode %q (want echo or discard)", *mode)
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()

	fmt.Fprintf(os.Stderr, "listening on %s\n", ln.Addr())
	if *portFile != "" {
		port := ln.Addr().(*net.TCPAddr).Port
		if err := writePortFile(*portFile, port); err != nil {
			log.Fatal(err)
		}
	}

	serve(ln, handle)
}

// serve accepts connections forever, one goroutine each. Temporary accept
// errors (EMFILE, ECONNABORTED, ...) back off 5ms, doubling to 1s, as
// net/http's Server.Serve does; anything else ends the server.
func serve(ln net.Listener, handle func(net.Conn)) {
	var delay time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			var ne net.Error
			//lint:ignore SA1019 Temporary is what net/http still uses for accept errors.
			if errors.As(err, &ne) && ne.Temporary() {
				if delay == 0 {
					delay = 5 * time.Millisecond
				} else {
					delay *= 2
				}
				if delay > time.Second {
					delay = time.Second
				}
				log.Printf("accept: %v; retrying in %v", err, delay)
				time.Sleep(delay)
				continue
			}
			log.Fatalf("accept: %v", err)
		}
		delay = 0
		// Go sets TCP_NODELAY on every TCP connection by default; say so
		// explicitly so the benchmark setup does not depend on that default.
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		go handle(conn)
	}
}

// echo writes back everything it reads until EOF, then closes the connection.
func echo(conn net.Conn) {
	defer conn.Close()
	buf := make([]byte, bufSize)
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			if _, werr := conn.Write(buf[:n]); werr != nil {
				logConnErr(conn, "write", werr)
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				logConnErr(conn, "read", err)
			}
			return
		}
	}
}

// discard reads and drops everything until EOF, then closes the connection.
func discard(conn net.Conn) {
	defer conn.Close()
	buf := make([]byte, bufSize)
	for {
		if _, err := conn.Read(buf); err != nil {
			if err != io.EOF {
				logConnErr(conn, "read", err)
			}
			return
		}
	}
}

func logConnErr(conn net.Conn, op string, err error) {
	log.Printf("%s %s: %v", conn.RemoteAddr(), op, err)
}

// writePortFile writes "PORT\n" to path atomically (temp file + rename).
func writePortFile(path string, port int) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".port-*")
	if err != nil {
		return err
	}
	if _, err := tmp.WriteString(strconv.Itoa(port) + "\n"); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}
