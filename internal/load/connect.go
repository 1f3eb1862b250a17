package load

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"syscall"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// ErrConnect marks a connection that cannot work as configured: a wrong CA,
// TLS against a plaintext port or the reverse, refused credentials, nothing
// listening. Retrying does not help; the message names the likely fix.
var ErrConnect = errors.New("cannot connect to ClickHouse")

// connectError is an ErrConnect with its one-line explanation.
type connectError struct {
	msg string
	err error
}

func (e *connectError) Error() string        { return e.msg }
func (e *connectError) Unwrap() error        { return e.err }
func (e *connectError) Is(target error) bool { return target == ErrConnect }

// ClickHouse exception codes of refused credentials: 18.16 says unknown user
// or wrong password, modern servers say authentication failed.
const (
	codeUnknownUser          = 192
	codeWrongPassword        = 193
	codeRequiredPassword     = 194
	codeIPAddressNotAllowed  = 195
	codeAuthenticationFailed = 516
)

// tlsConfig builds the TLS configuration of opts: the system roots or the CAs
// of opts.CAFile, and opts.ServerName when set.
func tlsConfig(opts Options) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: opts.ServerName}
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, &connectError{msg: fmt.Sprintf("CLICKHOUSE_CA_FILE: %v", err), err: err}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &connectError{msg: fmt.Sprintf("CLICKHOUSE_CA_FILE %s holds no PEM certificate", opts.CAFile)}
		}
		c.RootCAs = pool
	}
	return c, nil
}

// explainConnect turns a failed first contact into one line that names the
// likely fix. It never includes the password.
func explainConnect(err error, opts Options) error {
	if err == nil {
		return nil
	}
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		record    tls.RecordHeaderError
	)
	roots := "the system's CAs"
	if opts.CAFile != "" {
		roots = "the CAs in CLICKHOUSE_CA_FILE (" + opts.CAFile + ")"
	}
	plaintextHint := "the port may expect TLS (ClickHouse Cloud and port 9440 do): set CLICKHOUSE_SECURE=true, or use the server's plaintext native port (9000)"
	msg := ""
	switch code, _ := exceptionCode(err); {
	case errors.As(err, &unknownCA):
		msg = "the server's TLS certificate is not signed by " + roots + ": set CLICKHOUSE_CA_FILE to the PEM of the CA that signed it"
	case errors.As(err, &hostname):
		msg = fmt.Sprintf("the server's TLS certificate is not valid for %q: set CLICKHOUSE_TLS_SERVER_NAME to a name it holds (%s) or connect by that name",
			hostname.Host, strings.Join(certNames(hostname.Certificate), ", "))
	case errors.As(err, &invalid):
		msg = "the server's TLS certificate is invalid: " + invalid.Error()
	case errors.As(err, &record) || (opts.Secure && strings.Contains(err.Error(), "first record does not look like a TLS handshake")):
		msg = "the server does not speak TLS on this port: point CLICKHOUSE_ADDR at its secure native port (9440 on most servers), or set CLICKHOUSE_SECURE=false for a plaintext port (9000)"
	case code == codeUnknownUser || code == codeWrongPassword || code == codeRequiredPassword || code == codeAuthenticationFailed:
		msg = fmt.Sprintf("ClickHouse refused user %q: check CLICKHOUSE_USER and CLICKHOUSE_PASSWORD (or CLICKHOUSE_PASSWORD_FILE)", opts.User)
	case code == codeIPAddressNotAllowed:
		msg = fmt.Sprintf("ClickHouse does not let user %q connect from this address: allow it in the user's <networks> (or the Cloud service's IP access list)", opts.User)
	case errors.Is(err, syscall.ECONNREFUSED):
		msg = "nothing listens there: is ClickHouse running, and is CLICKHOUSE_ADDR its native port (9000, or 9440 with CLICKHOUSE_SECURE=true; 8123 and 8443 are HTTP)?"
	case strings.Contains(err.Error(), "unexpected packet [72]"): // 'H': an HTTP answer
		msg = "this is ClickHouse's HTTP port: CLICKHOUSE_ADDR wants the native port (9000, or 9440 with CLICKHOUSE_SECURE=true)"
	case !opts.Secure && (strings.Contains(err.Error(), "unexpected packet [21]") || // a TLS alert record
		errors.Is(err, syscall.ECONNRESET) || strings.Contains(err.Error(), "EOF")):
		msg = plaintextHint
	case opts.Secure && strings.Contains(err.Error(), "EOF"):
		msg = "the server closed the connection during the TLS handshake: check that CLICKHOUSE_ADDR is its secure native port (9440 on most servers)"
	}
	if msg == "" && !opts.Secure && slices.ContainsFunc(opts.Addrs, func(a string) bool { return strings.HasSuffix(a, ":9440") }) {
		msg = plaintextHint // 9440 is the secure native port by convention
	}
	if msg == "" {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			msg = "no answer in time: check CLICKHOUSE_ADDR and that a firewall lets this host reach it"
		} else {
			return err
		}
	}
	return &connectError{msg: msg + " (" + oneLine(err.Error()) + ")", err: err}
}

func certNames(c *x509.Certificate) []string {
	if c == nil {
		return nil
	}
	names := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 && c.Subject.CommonName != "" {
		names = append(names, c.Subject.CommonName)
	}
	return names
}

// oneLine keeps an error message on one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// clusterShards checks that the server knows the cluster and returns its
// number of shards.
func clusterShards(ctx context.Context, conn driver.Conn, cluster string) (int, error) {
	var shards, hosts uint64
	if err := conn.QueryRow(ctx, "SELECT uniqExact(shard_num), count() FROM system.clusters WHERE cluster = ?", cluster).Scan(&shards, &hosts); err != nil {
		return 0, fmt.Errorf("read system.clusters: %w", err)
	}
	if hosts == 0 {
		var known []string
		rows, err := conn.Query(ctx, "SELECT DISTINCT cluster FROM system.clusters ORDER BY cluster")
		if err == nil {
			for rows.Next() {
				var c string
				if rows.Scan(&c) == nil {
					known = append(known, c)
				}
			}
			rows.Close()
		}
		return 0, &connectError{msg: fmt.Sprintf("CLICKHOUSE_CLUSTER %q is not in the server's remote_servers (it knows: %s)", cluster, strings.Join(known, ", "))}
	}
	return int(shards), nil
}
