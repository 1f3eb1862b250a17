package load

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// Each failed first contact becomes one line naming the fix; the password is
// never in it. (The same cases against real servers: cmd/syncer's
// TestIntegrationCluster/secure_connections.)
func TestExplainConnect(t *testing.T) {
	opts := Options{User: "syncer", Password: "pa55-word", Secure: true, CAFile: "/etc/ca.pem"}
	plain := opts
	plain.Secure, plain.CAFile = false, ""
	for _, tc := range []struct {
		name string
		err  error
		opts Options
		want string
	}{
		{"unknown CA", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, opts, "set CLICKHOUSE_CA_FILE"},
		{"wrong name", &tls.CertificateVerificationError{Err: x509.HostnameError{Certificate: &x509.Certificate{DNSNames: []string{"ch.internal"}}, Host: "10.0.0.1"}},
			opts, "CLICKHOUSE_TLS_SERVER_NAME to a name it holds (ch.internal)"},
		{"TLS to plaintext", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, opts, "CLICKHOUSE_SECURE=false"},
		{"plaintext to TLS", fmt.Errorf("handshake: %w", syscall.ECONNRESET), plain, "CLICKHOUSE_SECURE=true"},
		{"wrong password 18.16", &clickhouse.Exception{Code: 193, Message: "Wrong password for user syncer"}, opts, `refused user "syncer"`},
		{"authentication failed", &clickhouse.Exception{Code: 516, Message: "syncer: Authentication failed"}, opts, "CLICKHOUSE_PASSWORD_FILE"},
		{"refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, plain, "nothing listens there"},
		{"plaintext to 9440, anything", errors.New("handshake: unexpected packet [3] from server"), Options{User: "default", Addrs: []string{"x.clickhouse.cloud:9440"}}, "CLICKHOUSE_SECURE=true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := explainConnect(tc.err, tc.opts)
			if !errors.Is(got, ErrConnect) {
				t.Errorf("not an ErrConnect: %v", got)
			}
			if !strings.Contains(got.Error(), tc.want) || strings.Contains(got.Error(), "\n") {
				t.Errorf("got %q, want one line with %q", got, tc.want)
			}
			if strings.Contains(got.Error(), opts.Password) {
				t.Errorf("the message shows the password: %q", got)
			}
		})
	}
	other := errors.New("something else")
	if got := explainConnect(other, opts); got != other {
		t.Errorf("an unknown error changed: %v", got)
	}
}
