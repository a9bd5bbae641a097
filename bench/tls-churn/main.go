// Command tls-churn drives TLS full handshakes for bench/tls-compare.sh: the
// same client code against every TLS terminator measured (netcrab, HAProxy,
// nginx), so the figures differ only by the server.
//
// Usage:
//
//	tls-churn -addr HOST:PORT [-c N] [-t DURATION] [-size BYTES]
//
// N workers each loop until the deadline: connect, make a TLS 1.3 handshake
// with X25519 (no session cache, so never a resumption: every handshake is a
// full one, with the server's signature), send -size bytes and read as many
// back (0: none), close. The server's certificate is not checked against a
// CA (the signature over the handshake still is); each connection's
// negotiated version and resumption are checked.
//
// Output is one line of key=value pairs on stdout: handshakes (completed,
// exchange included), errors, seconds, and the first error seen.
package main

import (
	"bytes"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "", "server HOST:PORT")
	conns := flag.Int("c", 4, "concurrent workers")
	dur := flag.Duration("t", 5*time.Second, "how long to run")
	size := flag.Int("size", 64, "bytes to send and read back per connection (0: handshake only)")
	flag.Parse()
	if *addr == "" {
		fmt.Fprintln(os.Stderr, "tls-churn: -addr is required")
		os.Exit(2)
	}
	cfg := &tls.Config{
		InsecureSkipVerify: true,
		MinVersion:         tls.VersionTLS13,
		MaxVersion:         tls.VersionTLS13,
		CurvePreferences:   []tls.CurveID{tls.X25519},
		ServerName:         "localhost",
	}
	payload := bytes.Repeat([]byte("x"), *size)
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	fail := func(err error) {
		failed.Add(1)
		firstErr.CompareAndSwap(nil, err.Error())
	}
	start := time.Now()
	deadline := start.Add(*dur)
	var wg sync.WaitGroup
	for i := 0; i < *conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, *size)
			for time.Now().Before(deadline) {
				if err := one(*addr, cfg, payload, buf); err != nil {
					fail(err)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	first, _ := firstErr.Load().(string)
	fmt.Printf("handshakes=%d errors=%d seconds=%.3f first_error=%q\n",
		ok.Load(), failed.Load(), time.Since(start).Seconds(), first)
}

func one(addr string, cfg *tls.Config, payload, buf []byte) error {
	raw, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	c := tls.Client(raw, cfg)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := c.Handshake(); err != nil {
		return err
	}
	st := c.ConnectionState()
	if st.Version != tls.VersionTLS13 || st.DidResume {
		return fmt.Errorf("version %x resumed %v", st.Version, st.DidResume)
	}
	if len(payload) == 0 {
		return nil
	}
	if _, err := c.Write(payload); err != nil {
		return err
	}
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if !bytes.Equal(buf, payload) {
		return fmt.Errorf("reply differs from the request")
	}
	return nil
}
