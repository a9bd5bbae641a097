// Command proxy-load drives load through a SOCKS5 or HTTP CONNECT proxy for
// bench/proxy-compare.sh: the same client code for every proxy measured
// (netcrab proxy, microsocks, tinyproxy), so the figures differ only by the
// proxy.
//
// Usage:
//
//	proxy-load -proxy ADDR -proto socks5|http -target ADDR -mode setup|bulk
//	           [-c N] [-t DURATION] [-user U -pass P]
//
// setup: N workers each loop until the deadline: connect to the proxy, open
// a tunnel to the target (an echo server), send one byte, read it back,
// close. Prints the number of tunnels completed per second.
//
// bulk: N connections each open a tunnel to the target (a discard server)
// and write 64 KiB blocks until the deadline, then half-close and wait for
// the target's end of stream, so every byte counted was delivered. Prints
// the rate in Gbit/s and the bytes moved.
//
// Output is one line of key=value pairs on stdout.
package main

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

var (
	proxyAddr = flag.String("proxy", "", "proxy address")
	proto     = flag.String("proto", "socks5", "socks5 or http")
	target    = flag.String("target", "", "destination address (host:port)")
	mode      = flag.String("mode", "setup", "setup or bulk")
	conns     = flag.Int("c", 8, "concurrent workers")
	duration  = flag.Duration("t", 5*time.Second, "how long to run")
	user      = flag.String("user", "", "user name (optional)")
	pass      = flag.String("pass", "", "password")
)

// tunnel opens a connection to the proxy and a tunnel through it.
func tunnel() (net.Conn, error) {
	c, err := net.Dial("tcp", *proxyAddr)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	if *proto == "socks5" {
		err = socks5(c)
	} else {
		err = httpConnect(c)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func socks5(c net.Conn) error {
	host, portStr, err := net.SplitHostPort(*target)
	if err != nil {
		return err
	}
	port, _ := strconv.Atoi(portStr)
	method := byte(0)
	if *user != "" {
		method = 2
	}
	if _, err := c.Write([]byte{5, 1, method}); err != nil {
		return err
	}
	var buf [512]byte
	if _, err := io.ReadFull(c, buf[:2]); err != nil {
		return err
	}
	if buf[1] != method {
		return fmt.Errorf("method refused: %d", buf[1])
	}
	if method == 2 {
		msg := []byte{1, byte(len(*user))}
		msg = append(msg, *user...)
		msg = append(msg, byte(len(*pass)))
		msg = append(msg, *pass...)
		if _, err := c.Write(msg); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, buf[:2]); err != nil {
			return err
		}
		if buf[1] != 0 {
			return errors.New("authentication failed")
		}
	}
	req := []byte{5, 1, 0}
	if ip := net.ParseIP(host).To4(); ip != nil {
		req = append(req, 1)
		req = append(req, ip...)
	} else {
		req = append(req, 3, byte(len(host)))
		req = append(req, host...)
	}
	req = binary.BigEndian.AppendUint16(req, uint16(port))
	if _, err := c.Write(req); err != nil {
		return err
	}
	if _, err := io.ReadFull(c, buf[:4]); err != nil {
		return err
	}
	if buf[1] != 0 {
		return fmt.Errorf("socks5 reply %d", buf[1])
	}
	rest := 6 // IPv4 and port
	switch buf[3] {
	case 4:
		rest = 18
	case 3:
		if _, err := io.ReadFull(c, buf[:1]); err != nil {
			return err
		}
		rest = int(buf[0]) + 2
	}
	_, err = io.ReadFull(c, buf[:rest])
	return err
}

func httpConnect(c net.Conn) error {
	req := "CONNECT " + *target + " HTTP/1.1\r\nHost: " + *target + "\r\n"
	if *user != "" {
		req += "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(*user+":"+*pass)) + "\r\n"
	}
	req += "\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		return err
	}
	// Read the response head byte by byte: nothing past it may be consumed.
	r := bufio.NewReaderSize(oneByte{c}, 16)
	status, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if len(status) < 12 || status[9:12] != "200" {
		return fmt.Errorf("http status line %q", status)
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if line == "\r\n" || line == "\n" {
			return nil
		}
	}
}

// oneByte reads one byte at a time, so a bufio.Reader over it never reads
// ahead into the tunnel.
type oneByte struct{ c net.Conn }

func (o oneByte) Read(p []byte) (int, error) { return o.c.Read(p[:1]) }

func main() {
	flag.Parse()
	deadline := time.Now().Add(*duration)
	var done, failed, bytes atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < *conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if *mode == "bulk" {
				n, err := bulk(deadline)
				bytes.Add(n)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				} else {
					done.Add(1)
				}
				return
			}
			one := []byte{'x'}
			var back [1]byte
			for time.Now().Before(deadline) {
				c, err := tunnel()
				if err == nil {
					_, err = c.Write(one)
					if err == nil {
						_, err = io.ReadFull(c, back[:])
					}
					c.Close()
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	if e := firstErr.Load(); e != nil {
		fmt.Fprintf(os.Stderr, "proxy-load: first error: %v\n", e)
	}
	if *mode == "bulk" {
		fmt.Printf("mode=bulk conns=%d failed=%d bytes=%d secs=%.3f gbit_per_s=%.3f\n",
			done.Load(), failed.Load(), bytes.Load(), secs, float64(bytes.Load())*8/secs/1e9)
	} else {
		fmt.Printf("mode=setup tunnels=%d failed=%d secs=%.3f per_s=%.0f\n",
			done.Load(), failed.Load(), secs, float64(done.Load())/secs)
	}
}

// bulk writes until the deadline, half-closes, and waits for the target's
// end of stream.
func bulk(deadline time.Time) (int64, error) {
	c, err := tunnel()
	if err != nil {
		return 0, err
	}
	defer c.Close()
	buf := make([]byte, 64*1024)
	var n int64
	for time.Now().Before(deadline) {
		w, err := c.Write(buf)
		n += int64(w)
		if err != nil {
			return n, err
		}
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	_, err = io.Copy(io.Discard, c)
	return n, err
}
