package herd_test

// A TCP relay to put between the SDK and a control plane, so a test can cut the SDK's
// connections the way a flaky network or a restarted proxy does: cut resets every relayed
// connection at once; while down is set, new connections are accepted and reset at once.
//
// Invariant: conns holds exactly the relayed connections not yet closed by the relay.
// Concurrency: one accept goroutine and two copy goroutines per connection; mu guards conns.

import (
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
)

type relay struct {
	URL  string
	down atomic.Bool
	ln   net.Listener
	mu   sync.Mutex
	conn map[net.Conn]struct{}
}

func startRelay(t *testing.T, target string) *relay {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln, conn: map[net.Conn]struct{}{}}
	r.URL = u.Scheme + "://" + ln.Addr().String()
	go r.accept(u.Host)
	t.Cleanup(func() {
		_ = ln.Close()
		r.cut()
	})
	return r
}

// reset closes c with an RST, as a crashed peer or a cut path would.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

func (r *relay) accept(target string) {
	for {
		client, err := r.ln.Accept()
		if err != nil {
			return
		}
		if r.down.Load() {
			reset(client)
			continue
		}
		upstream, err := net.Dial("tcp", target)
		if err != nil {
			reset(client)
			continue
		}
		r.mu.Lock()
		r.conn[client] = struct{}{}
		r.conn[upstream] = struct{}{}
		r.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			_, _ = io.Copy(dst, src)
			_ = dst.Close()
			_ = src.Close()
		}
		go pipe(upstream, client)
		go pipe(client, upstream)
	}
}

// cut resets every connection relayed so far; later connections relay again.
func (r *relay) cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for c := range r.conn {
		reset(c)
	}
	clear(r.conn)
}
