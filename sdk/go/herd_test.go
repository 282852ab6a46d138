package herd_test

// Checks of the Go SDK against a stand-in control plane (sdk/ts/test/stub-herd-main.ts, a
// real Connect server on a loopback port, started once for the package, plus one with the
// daemon's reconnect window for the re-attach checks). The scenario suite against the real
// daemon lives with the daemon's tests.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	herd "github.com/herd-dev/herd/sdk/go"
	herdv1 "github.com/herd-dev/herd/sdk/go/gen/herd/v1"
)

// Wide enough that a loaded CI machine cannot starve the stub or the renewer past it.
const grace = 1 * time.Second

var (
	stubURL string
	// windowedStubURL keeps a dropped hold's session for 3 graces (disconnect_grace).
	windowedStubURL string
)

func TestMain(m *testing.M) {
	if os.Getenv("HERD_TEST_HOLD_CHILD") != "" {
		holdChild(os.Getenv("HERD_TEST_HOLD_CHILD"))
		return
	}
	graceMs := fmt.Sprint(grace.Milliseconds())
	code := 1
	url, stop := startStub("--grace-ms", graceMs)
	windowed, stopWindowed := startStub("--grace-ms", graceMs, "--disconnect-grace-ms", fmt.Sprint(3*grace.Milliseconds()))
	if url != "" && windowed != "" {
		stubURL, windowedStubURL = url, windowed
		code = m.Run()
	}
	stop()
	stopWindowed()
	os.Exit(code)
}

// startStub starts a stub control plane; its URL ("" if it did not start) and how to stop it.
func startStub(args ...string) (string, func()) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	cmd := exec.Command(filepath.Join(root, "node_modules", ".bin", "tsx"),
		append([]string{filepath.Join(root, "sdk", "ts", "test", "stub-herd-main.ts")}, args...)...)
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe() // the stub exits when its stdin closes
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "starting stub herd:", err)
		return "", func() {}
	}
	stop := func() {
		_ = stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "LISTENING ")
	if !ok {
		fmt.Fprintf(os.Stderr, "stub herd did not start: %q\n", line)
		return "", stop
	}
	return url, stop
}

// holdChild is the process the kill test SIGKILLs while it holds a session.
func holdChild(url string) {
	h, err := herd.New(url).Hold(context.Background(), "default", herd.AcquireOptions{})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	fmt.Println("HELD", h.ID())
	<-h.Done()
	os.Exit(3)
}

func ids(t *testing.T, c *herd.Client) []string {
	t.Helper()
	ss, err := c.Sessions(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range ss {
		out = append(out, s.GetSessionId())
	}
	return out
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAcquireRelease(t *testing.T) {
	ctx := context.Background()
	c := herd.New(stubURL)
	s, err := c.Acquire(ctx, "browser", herd.AcquireOptions{Labels: map[string]string{"who": "go"}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Info.GetPool() != "browser" || s.Info.GetWorkerId() == "" || !strings.HasPrefix(s.ProxyURL(), "http://") {
		t.Fatalf("unexpected session %v", s.Info)
	}
	if s.Headers().Get(herd.SessionHeader) != s.ID() || s.Headers().Get(herd.TokenHeader) != s.Info.GetToken() {
		t.Fatalf("headers %v", s.Headers())
	}
	again, err := c.Acquire(ctx, "browser", herd.AcquireOptions{SessionID: s.ID()})
	if err != nil || again.Info.GetWorkerId() != s.Info.GetWorkerId() {
		t.Fatalf("re-acquire: %v, %v", again, err)
	}
	if !slices.Contains(ids(t, c), s.ID()) {
		t.Fatal("acquired session not listed")
	}
	if err := s.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(ctx); err != nil {
		t.Fatal("second release:", err)
	}
	if slices.Contains(ids(t, c), s.ID()) {
		t.Fatal("released session still listed")
	}
	if err := c.Release(ctx, s.ID(), false); herd.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("release of a gone session: %v", err)
	}
}

func TestTypedErrors(t *testing.T) {
	ctx := context.Background()
	c := herd.New(stubURL)
	_, err := c.Acquire(ctx, "no-such-pool", herd.AcquireOptions{})
	var he *herd.Error
	if !errors.As(err, &he) || he.Code != connect.CodeNotFound {
		t.Fatalf("unknown pool: %v", err)
	}
	for _, id := range []string{"bad id!", strings.Repeat("x", 10_000)} {
		if _, err := c.Acquire(ctx, "browser", herd.AcquireOptions{SessionID: id}); herd.CodeOf(err) != connect.CodeInvalidArgument {
			t.Fatalf("invalid id %.20q: %v", id, err)
		}
	}
	if _, err := c.Hold(ctx, "no-such-pool", herd.AcquireOptions{}); herd.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("hold of unknown pool: %v", err)
	}
}

func TestHoldRenewsAndEndsWithItsContext(t *testing.T) {
	c := herd.New(stubURL)
	ctx, cancel := context.WithCancel(context.Background())
	h, err := c.Hold(ctx, "default", herd.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h.Grace != grace || h.HoldID() == "" {
		t.Fatalf("grace %v hold %q", h.Grace, h.HoldID())
	}
	time.Sleep(3 * grace)
	select {
	case <-h.Done():
		t.Fatalf("hold ended early: %v", h.Err())
	default:
	}
	if !slices.Contains(ids(t, c), h.ID()) {
		t.Fatal("held session not listed")
	}
	cancel()
	<-h.Done()
	if h.Err() != nil {
		t.Fatalf("cancelled hold reports %v", h.Err())
	}
	eventually(t, "the session to end", func() bool { return !slices.Contains(ids(t, c), h.ID()) })
}

func TestHoldReportsLoss(t *testing.T) {
	ctx := context.Background()
	c := herd.New(stubURL)
	h, err := c.Hold(ctx, "default", herd.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release(ctx)
	if err := c.Release(ctx, h.ID(), false); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("hold did not notice its session ended")
	}
	if h.Err() == nil {
		t.Fatal("lost hold has no error")
	}
}

func TestWatch(t *testing.T) {
	ctx := context.Background()
	c := herd.New(stubURL)
	var seen []*herdv1.SessionEvent
	for ev, err := range c.Watch(ctx, herd.WatchOptions{Pool: "default", Snapshot: true}) {
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, ev)
		if ev.GetType() == herdv1.SessionEventType_SESSION_EVENT_TYPE_SNAPSHOT_COMPLETE {
			s, err := c.Acquire(ctx, "default", herd.AcquireOptions{SessionID: "go-watch"})
			if err != nil {
				t.Fatal(err)
			}
			_ = s.Release(ctx)
		}
		if ev.GetType() == herdv1.SessionEventType_SESSION_EVENT_TYPE_SESSION_RELEASED {
			break
		}
	}
	tail := seen[len(seen)-2:]
	if tail[0].GetType() != herdv1.SessionEventType_SESSION_EVENT_TYPE_SESSION_ACQUIRED ||
		tail[0].GetSessionId() != "go-watch" || tail[1].GetRevision() <= tail[0].GetRevision() {
		t.Fatalf("events %v", tail)
	}
	for ev, err := range c.Watch(ctx, herd.WatchOptions{SessionID: "go-watch", SinceRevision: tail[0].GetRevision() - 1}) {
		if err != nil {
			t.Fatal(err)
		}
		if ev.GetRevision() != tail[0].GetRevision() {
			t.Fatalf("resume got revision %d, want %d", ev.GetRevision(), tail[0].GetRevision())
		}
		break
	}
	stopped, cancel := context.WithCancel(ctx)
	time.AfterFunc(50*time.Millisecond, cancel)
	for _, err := range c.Watch(stopped, herd.WatchOptions{}) {
		t.Fatalf("cancelled watch yielded (err %v)", err)
	}
}

func TestStats(t *testing.T) {
	st, err := herd.New(stubURL).Stats(context.Background(), "default")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.GetPools()) != 1 || st.GetPools()[0].GetName() != "default" || st.GetNode().GetMemoryTotalBytes() == 0 {
		t.Fatalf("stats %v", st)
	}
}

func TestHoldEndsWhenTheHolderIsKilled(t *testing.T) {
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), "HERD_TEST_HOLD_CHILD="+stubURL)
	out, _ := child.StdoutPipe()
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = child.Process.Kill(); _ = child.Wait() }()
	line, _ := bufio.NewReader(out).ReadString('\n')
	id, ok := strings.CutPrefix(strings.TrimSpace(line), "HELD ")
	if !ok {
		t.Fatalf("child: %q", line)
	}
	c := herd.New(stubURL)
	if !slices.Contains(ids(t, c), id) {
		t.Fatal("child's session not listed")
	}
	_ = child.Process.Kill()
	eventually(t, "the killed holder's session to end", func() bool { return !slices.Contains(ids(t, c), id) })
}

func TestTenantKeyIsTheBearerAndRidesOnTheDataPlane(t *testing.T) {
	url, stop := startStub("--token", "s3cret")
	defer stop()
	if url == "" {
		t.Fatal("the token stub did not start")
	}
	ctx := context.Background()
	c := herd.New(url, herd.WithTenantKey("s3cret"))
	s, err := c.Acquire(ctx, "browser", herd.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release(ctx)
	if h := s.Headers(); h.Get(herd.KeyHeader) != "s3cret" || h.Get(herd.SessionHeader) != s.ID() {
		t.Fatalf("headers %v", h)
	}
	h, err := c.Hold(ctx, "browser", herd.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release(ctx)
	if h.Headers().Get(herd.KeyHeader) != "s3cret" {
		t.Fatalf("held session's headers %v", h.Headers())
	}
	if _, err := herd.New(url, herd.WithTenantKey("other")).Stats(ctx, ""); herd.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("a wrong key: %v", err)
	}
	// The last of WithToken and WithTenantKey wins: an operator's client sends no X-Herd-Key.
	op, err := herd.New(url, herd.WithTenantKey("x"), herd.WithToken("s3cret")).Acquire(ctx, "browser", herd.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer op.Release(ctx)
	if op.Headers().Get(herd.KeyHeader) != "" {
		t.Fatalf("operator's headers %v", op.Headers())
	}
}
