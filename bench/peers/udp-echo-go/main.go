// Command udp-echo-go is the Go UDP echo server netcrab's UDP benchmark
// (bench/udp-compare.sh) compares `netcrab serve udp://... --echo` against:
// one goroutine in a ReadFrom/WriteTo loop, the way a Go programmer writes
// a UDP echo server (the allocation-free netip.AddrPort forms of
// ReadFromUDP and WriteToUDP, so Go is measured at its best).
//
// Usage:
//
//	udp-echo-go [-addr 127.0.0.1:0] [-port-file PATH]
//
// Once listening it prints "listening on ADDR" to stderr and, with
// -port-file, writes the bound port number and a newline to PATH (written
// to a temporary file then renamed, so a reader never sees a partial
// number). Receive and send errors are logged and skipped.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"strconv"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	portFile := flag.String("port-file", "", "write the bound port number and a newline to this file once listening")
	flag.Parse()

	log.SetFlags(0)
	log.SetPrefix("udp-echo-go: ")

	laddr, err := net.ResolveUDPAddr("udp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", laddr)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	fmt.Fprintf(os.Stderr, "listening on %s\n", conn.LocalAddr())
	if *portFile != "" {
		if err := writePortFile(*portFile, conn.LocalAddr().(*net.UDPAddr).Port); err != nil {
			log.Fatal(err)
		}
	}

	// The largest UDP payload, so no datagram is truncated.
	buf := make([]byte, 65535)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			log.Printf("read: %v", err)
			continue
		}
		if _, err := conn.WriteToUDPAddrPort(buf[:n], from); err != nil {
			log.Printf("write to %v: %v", from, err)
		}
	}
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
