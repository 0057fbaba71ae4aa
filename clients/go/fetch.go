// Fetches each URL given after the CA file and the protocol with one net/http client, in turn, as
// a Go service would that keeps one client for its requests, and reports each status on stderr.
// Used as a client under test by the client profile clients/go.yaml:
//
//	misdirect run --client clients/go.yaml
//
// Every *.test name is dialled at 127.0.0.1, as curl's --resolve does; the TLS server name stays
// the URL's host. HTTP/1.1 for h1 (HTTP/2 turned off), HTTP/2 by ALPN otherwise.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 4 {
		fmt.Fprintln(os.Stderr, "usage: fetch CA PROTOCOL URL...")
		os.Exit(2)
	}
	ca, protocol, urls := os.Args[1], os.Args[2], os.Args[3:]
	pem, err := os.ReadFile(ca)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	transport := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(address)
			if err == nil && strings.HasSuffix(strings.TrimSuffix(host, "."), ".test") {
				address = net.JoinHostPort("127.0.0.1", port)
			}
			return dialer.DialContext(ctx, network, address)
		},
		ForceAttemptHTTP2: protocol != "h1",
	}
	if protocol == "h1" {
		// A non-nil, empty map turns HTTP/2 off.
		transport.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	for _, url := range urls {
		response, err := client.Get(url)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s %v\n", url, err)
			continue
		}
		io.Copy(io.Discard, response.Body)
		response.Body.Close()
		fmt.Fprintf(os.Stderr, "%s %d %s\n", url, response.StatusCode, response.Proto)
	}
}
