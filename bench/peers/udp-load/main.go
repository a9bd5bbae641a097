// Command udp-load is the independent UDP load generator of netcrab's UDP
// benchmark (bench/udp-compare.sh): N senders, each on its own connected
// socket in a closed loop (send one datagram, wait for its answer, send
// the next), for a fixed time, against any UDP echo server.
//
// With -window W each sender keeps W datagrams in flight instead of one
// (it sends W, then one more per answer), the way iperf3- or tcpkali-style
// loads keep a pipe full: the server then finds datagrams queued when it
// wakes, which is what batching (recvmmsg/sendmmsg) has to work with.
//
// Usage:
//
//	udp-load -addr HOST:PORT [-senders 8] [-size 64] [-window 1] [-duration 5s] [-timeout 200ms]
//
// It prints one line to stdout:
//
//	datagrams N seconds S rate R lost L bad B
//
// N is the answers received (datagrams the server echoed), R = N/S per
// second, L the datagrams given up on after -timeout without an answer
// (the sender then sends the next one), B answers of the wrong length.
// With a window, a timeout counts the whole window lost and sends a new
// one (an answer arriving after that is still counted as received).
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "", "the echo server, HOST:PORT")
	senders := flag.Int("senders", 8, "concurrent senders, each a closed loop on its own socket")
	size := flag.Int("size", 64, "datagram payload size in bytes")
	duration := flag.Duration("duration", 5*time.Second, "how long to send")
	timeout := flag.Duration("timeout", 200*time.Millisecond, "how long to wait for an answer before counting it lost")
	window := flag.Int("window", 1, "datagrams each sender keeps in flight")
	flag.Parse()

	log.SetFlags(0)
	log.SetPrefix("udp-load: ")
	if *addr == "" || *senders < 1 || *size < 0 || *size > 65507 || *window < 1 {
		flag.Usage()
		os.Exit(2)
	}
	raddr, err := net.ResolveUDPAddr("udp", *addr)
	if err != nil {
		log.Fatal(err)
	}

	var received, lost, bad atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	conns := make([]*net.UDPConn, *senders)
	for i := range conns {
		c, err := net.DialUDP("udp", nil, raddr)
		if err != nil {
			log.Fatal(err)
		}
		conns[i] = c
	}
	start := time.Now()
	for _, c := range conns {
		wg.Add(1)
		go func(c *net.UDPConn) {
			defer wg.Done()
			out := make([]byte, *size)
			in := make([]byte, 65535)
			var n, l, b int64
			// The read deadline is refreshed at most every timeout/4, not
			// per datagram: a deadline costs the runtime a timer update,
			// and the generator shares the machine with the server.
			var deadline time.Time
			inflight := 0
			for !stop.Load() {
				for inflight < *window {
					if _, err := c.Write(out); err != nil {
						l++
						break
					}
					inflight++
				}
				if inflight == 0 {
					continue
				}
				now := time.Now()
				if deadline.Sub(now) < *timeout*3/4 {
					deadline = now.Add(*timeout)
					_ = c.SetReadDeadline(deadline)
				}
				m, err := c.Read(in)
				if err != nil {
					l += int64(inflight)
					inflight = 0
					deadline = time.Time{}
					continue
				}
				if inflight > 0 {
					inflight--
				}
				if m != *size {
					b++
				}
				n++
			}
			received.Add(n)
			lost.Add(l)
			bad.Add(b)
		}(c)
	}
	time.Sleep(*duration)
	stop.Store(true)
	wg.Wait()
	secs := time.Since(start).Seconds()
	for _, c := range conns {
		c.Close()
	}
	n := received.Load()
	fmt.Printf("datagrams %d seconds %.3f rate %.0f lost %d bad %d\n", n, secs, float64(n)/secs, lost.Load(), bad.Load())
}
