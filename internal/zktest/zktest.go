// Package zktest gives integration tests a private standalone ZooKeeper
// (scripts/zookeeper.sh with its own directory and port), which a test may
// stop and start again. It is stopped in t.Cleanup.
//
// When ZooKeeper cannot be started the test is skipped, except under
// CI=true, where it fails: CI must never go green without the fleet tests.
package zktest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Server is a running private ZooKeeper.
type Server struct {
	t    testing.TB
	env  []string
	Addr string // 127.0.0.1:port
}

// Start starts a ZooKeeper on 127.0.0.1:port (keep ports of concurrently
// running test packages apart) and waits until it answers.
func Start(t testing.TB, port int) *Server {
	t.Helper()
	s := &Server{t: t, Addr: fmt.Sprintf("127.0.0.1:%d", port),
		env: append(os.Environ(), "ZK_DIR="+t.TempDir(), fmt.Sprintf("ZK_PORT=%d", port), "ZK_WAIT_TIMEOUT=90")}
	if out, err := s.script("start"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("zookeeper.sh start: %v\n%s", err, out)
		}
		t.Skipf("ZooKeeper could not be started (scripts/zookeeper.sh install): %v\n%s", err, out)
	}
	t.Cleanup(func() { _, _ = s.script("stop") })
	s.Wait()
	return s
}

// Stop stops the server (SIGTERM); its data stays for Restart.
func (s *Server) Stop() { s.must("stop") }

// Restart starts the stopped server again and waits for it.
func (s *Server) Restart() {
	s.must("start")
	s.Wait()
}

// Wait waits until the server answers.
func (s *Server) Wait() { s.must("wait") }

func (s *Server) must(verb string) {
	s.t.Helper()
	if out, err := s.script(verb); err != nil {
		s.t.Fatalf("zookeeper.sh %s: %v\n%s", verb, err, out)
	}
}

func (s *Server) script(verb string) ([]byte, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(root, "scripts/zookeeper.sh"), verb)
	cmd.Env = s.env
	return cmd.CombinedOutput()
}

// repoRoot is the nearest directory above the working directory with a
// go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}
