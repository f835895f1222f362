package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// selfSigned writes a certificate for 127.0.0.1 and its key as PEM files
// and returns their paths and a pool that trusts it.
func selfSigned(t *testing.T) (certPath, keyPath string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sentinel test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certPath, keyPath, pool
}

// TestHTTPSAndConnectionLimit serves the agent's HTTP over TLS with one
// connection at a time: HTTPS works with the certificate, plain HTTP does
// not, and a second client waits until the first connection closes.
func TestHTTPSAndConnectionLimit(t *testing.T) {
	e := newTestEnv(t)
	a := e.agent()
	certPath, keyPath, pool := selfSigned(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	a.cfg.HTTPAddr, a.cfg.TLSCert, a.cfg.TLSKey, a.cfg.MaxConns = addr, certPath, keyPath, 1
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	stop, err := a.serveHTTP(ctx, &wg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { stop(); wg.Wait() }()

	tlsConf := &tls.Config{RootCAs: pool}
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConf, DisableKeepAlives: true}}
	resp, err := client.Get("https://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("https: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("https /healthz: %s", resp.Status)
	}
	if resp, err := (&http.Client{Timeout: 3 * time.Second}).Get("http://" + addr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP served by a TLS listener")
		}
	}
	// One connection held open fills the limit.
	held, err := tls.Dial("tcp", addr, tlsConf)
	if err != nil {
		t.Fatal(err)
	}
	waiting := &http.Client{Timeout: 700 * time.Millisecond, Transport: &http.Transport{TLSClientConfig: tlsConf, DisableKeepAlives: true}}
	if resp, err := waiting.Get("https://" + addr + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatal("a second connection was served beyond max_conns = 1")
	} else if !strings.Contains(err.Error(), "Timeout") && !strings.Contains(err.Error(), "deadline") {
		t.Logf("second connection: %v", err)
	}
	held.Close()
	time.Sleep(100 * time.Millisecond)
	resp, err = client.Get("https://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("after the held connection closed: %v", err)
	}
	resp.Body.Close()
}
