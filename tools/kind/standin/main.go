// Copyright (c) 2026 aiinfra.cluster contributors
// Apache License 2.0 (see LICENSE)

// Command standin replaces upstream images that cannot be built offline in the kind cluster:
// it keeps a Pod Ready whatever its probes ask (HTTP, HTTPS, h2c and gRPC health on many
// ports), or exits 0 at once for init containers and hook Jobs.
package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Ports that upstream images commonly probe or scrape; STANDIN_DEFAULT_PORTS replaces the list.
const defaultPorts = "8000,8008,8080,8081,8082,8083,8085,8090,8443,9090,9091,9400,9440,9443,9808,5000,6060,7080,8888,6006,8001"

// grpc.health.v1.HealthCheckResponse{status: SERVING}, as one uncompressed gRPC message.
var servingFrame = []byte{0, 0, 0, 0, 2, 0x08, 0x01}

func main() {
	log.SetPrefix("standin: ")
	// As PID 1 a SIGTERM without a handler is ignored and the pod waits out its grace period;
	// pods are deleted fast, so leave at once (registered first: a delete may come at start).
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	// The arguments are the upstream image's; they are logged, never interpreted.
	log.Printf("standing in for %q, args %q", os.Getenv("STANDIN_NAME"), os.Args[1:])
	if os.Getenv("STANDIN_MODE") == "exit" || exitWhen() {
		log.Printf("exit mode: nothing to do")
		return
	}
	defaults, set := os.LookupEnv("STANDIN_DEFAULT_PORTS") // set but empty: none (tests)
	if !set {
		defaults = defaultPorts
	}
	ports := splitList(os.Getenv("STANDIN_PORTS") + "," + defaults)
	slices.Sort(ports)
	ports = slices.Compact(ports)

	tlsConf := tlsConfig()
	protos := new(http.Protocols)
	protos.SetHTTP1(true)
	protos.SetHTTP2(true)
	protos.SetUnencryptedHTTP2(true) // h2c with prior knowledge: gRPC health probes
	var serving []string
	for _, p := range ports {
		l, err := net.Listen("tcp", ":"+p)
		if err != nil {
			// Another container of the pod may hold it; the others still serve.
			log.Printf("port %s skipped: %v", p, err)
			continue
		}
		serving = append(serving, p)
		srv := &http.Server{Handler: http.HandlerFunc(handle), Protocols: protos, ReadHeaderTimeout: 10 * time.Second}
		go func() { log.Printf("port %s: %v", p, srv.Serve(newSniffListener(l, tlsConf))) }()
	}
	log.Printf("serving on %s", strings.Join(serving, ","))
	log.Printf("%v: exiting", <-sig)
}

// exitWhen tells whether the program or its first argument names a command that should just
// exit 0 (STANDIN_EXIT_WHEN, comma-separated), e.g. an init step sharing the image.
func exitWhen() bool {
	names := splitList(os.Getenv("STANDIN_EXIT_WHEN"))
	return slices.Contains(names, filepath.Base(os.Args[0])) || len(os.Args) > 1 && slices.Contains(names, os.Args[1])
}

func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
}

// handle answers 200 ok to any HTTP request and OK (SERVING for health) to any gRPC call.
func handle(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
		io.WriteString(w, "ok")
		return
	}
	// Read the (unary) request so the stream closes in the usual order.
	io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	w.Header().Set("Content-Type", "application/grpc")
	w.WriteHeader(http.StatusOK)
	// Headers go out now, as a gRPC server sends them: no content-length guessed from the body.
	http.NewResponseController(w).Flush()
	if strings.HasPrefix(r.URL.Path, "/grpc.health.v1.Health/") {
		w.Write(servingFrame)
	}
	w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
}

// sniffListener hands http.Server either the raw connection or a *tls.Conn (so that ALPN can
// pick h2), by peeking at the first byte: 0x16 starts a TLS handshake. Peeking happens off the
// accept loop so that a silent client (a TCP probe) does not hold up the others.
type sniffListener struct {
	net.Listener
	conf *tls.Config
	ch   chan accepted
}

type accepted struct {
	c   net.Conn
	err error
}

func newSniffListener(l net.Listener, conf *tls.Config) net.Listener {
	s := &sniffListener{Listener: l, conf: conf, ch: make(chan accepted)}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				s.ch <- accepted{err: err}
				return
			}
			go s.sniff(c)
		}
	}()
	return s
}

func (s *sniffListener) sniff(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	first, err := br.Peek(1)
	if c.SetReadDeadline(time.Time{}); err != nil {
		c.Close() // a TCP probe, or a client that said nothing
		return
	}
	var out net.Conn = &peekedConn{Conn: c, r: br}
	if first[0] == 0x16 {
		out = tls.Server(out, s.conf)
	}
	s.ch <- accepted{c: out}
}

func (s *sniffListener) Accept() (net.Conn, error) {
	a := <-s.ch
	return a.c, a.err
}

// peekedConn reads through the buffer that holds the peeked byte.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// tlsConfig makes a throwaway self-signed certificate: kubelet's HTTPS probes do not verify it.
func tlsConfig() *tls.Config {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatalf("key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "standin"},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		log.Fatalf("certificate: %v", err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	return &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
}
