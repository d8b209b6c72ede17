// netpeer: the Go peer of heddle's network benchmarks.
//
//	netpeer http PORT   net/http server answering every request with
//	                    "Hello, World!" (text/plain, Content-Length: 13)
//	netpeer echo PORT   echo server, one goroutine per connection
//
// Listens on 127.0.0.1. GOMAXPROCS is 1 unless the environment sets it:
// the figures compare single-threaded servers. scripts/lib/net_bench.sh runs
// it pinned to one cpu and loads it with wrk or echo_load_client.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
)

var hello = []byte("Hello, World!")

func serveHTTP(listener net.Listener) error {
	handler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"text/plain"}
		h["Content-Length"] = []string{"13"}
		w.WriteHeader(http.StatusOK)
		w.Write(hello)
	})
	return http.Serve(listener, handler)
}

func echo(conn net.Conn) {
	defer conn.Close()
	// io.Copy's loop, spelled out: io.Copy(conn, conn) itself would take
	// TCPConn.ReadFrom's splice path, a pipe round trip per 64-byte message.
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			if _, werr := conn.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func serveEcho(listener net.Listener) error {
	for {
		conn, err := listener.Accept()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			fmt.Fprintln(os.Stderr, "netpeer: accept:", err)
			continue
		}
		go echo(conn) // TCP_NODELAY is Go's default
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: netpeer http|echo PORT")
	os.Exit(2)
}

func main() {
	if len(os.Args) != 3 {
		usage()
	}
	port, err := strconv.Atoi(os.Args[2])
	if err != nil || port <= 0 || port > 65535 {
		usage()
	}
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	var serve func(net.Listener) error
	switch os.Args[1] {
	case "http":
		serve = serveHTTP
	case "echo":
		serve = serveEcho
	default:
		usage()
	}
	listener, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "netpeer:", err)
		os.Exit(1)
	}
	if err := serve(listener); err != nil {
		fmt.Fprintln(os.Stderr, "netpeer:", err)
		os.Exit(1)
	}
}
