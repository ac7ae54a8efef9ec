// Command bareserver is the reference of bench/cmd/loadgen's load test:
// the same HTTP path without keyhold. It answers every GET with one
// fixed response, the bytes (body and headers) of a notes page that the
// web app served in the same run, read from -body and -headers, from a
// net/http server configured like the web app's (the same timeouts, plain
// HTTP on loopback). It logs "bareserver listening on ADDR" to standard
// error once it listens, and stops on SIGTERM or SIGINT.
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "loopback address to listen on (port 0: a free one)")
	bodyFile := flag.String("body", "", "file of the response body")
	headerFile := flag.String("headers", "", "file of the response headers, one \"Name: value\" a line")
	flag.Parse()
	if err := run(*addr, *bodyFile, *headerFile); err != nil {
		log.Fatal(err)
	}
}

func run(addr, bodyFile, headerFile string) error {
	body, err := os.ReadFile(bodyFile)
	if err != nil {
		return err
	}
	header, err := readHeaders(headerFile)
	if err != nil {
		return err
	}
	header.Set("Content-Length", strconv.Itoa(len(body)))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "GET only", http.StatusMethodNotAllowed)
			return
		}
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); !ok || !tcp.IP.IsLoopback() {
		ln.Close()
		return fmt.Errorf("refusing to listen on %s: not a loopback address", ln.Addr())
	}
	// The web app's server settings (examples/webapp/main.go).
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(os.Stderr, "bareserver listening on %s\n", ln.Addr())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

// readHeaders reads "Name: value" lines; Date and Content-Length are
// left to the server.
func readHeaders(path string) (http.Header, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		name = http.CanonicalHeaderKey(strings.TrimSpace(name))
		if name == "Date" || name == "Content-Length" {
			continue
		}
		h.Add(name, strings.TrimSpace(value))
	}
	return h, sc.Err()
}
