package herd_test

// A hold survives a transient drop of its stream: it re-attaches (attach_only) through a relay
// the test cuts, keeps the same session and worker, and is reported lost only when the session
// is gone or a grace passes without reaching the daemon.

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	herd "github.com/herd-dev/herd/sdk/go"
)

func held(h *herd.HeldSession) bool {
	select {
	case <-h.Done():
		return false
	default:
		return true
	}
}

func TestHoldReattachesAfterACut(t *testing.T) {
	ctx := context.Background()
	r := startRelay(t, windowedStubURL)
	h, err := herd.New(r.URL).Hold(ctx, "default", herd.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release(ctx)
	worker, token, holdID := h.Info.GetWorkerId(), h.Info.GetToken(), h.HoldID()
	r.cut()
	eventually(t, "the hold to re-attach", func() bool { return h.Reattaches() == 1 })
	if !held(h) {
		t.Fatalf("hold lost: %v", h.Err())
	}
	if h.Info.GetWorkerId() != worker || h.Info.GetToken() != token || h.HoldID() == holdID {
		t.Fatalf("after re-attach: worker %q token %q hold %q", h.Info.GetWorkerId(), h.Info.GetToken(), h.HoldID())
	}
	time.Sleep(3 * grace) // renewals go to the new hold
	if !held(h) {
		t.Fatalf("hold lost after re-attach: %v", h.Err())
	}
	direct := herd.New(windowedStubURL)
	if !slices.Contains(ids(t, direct), h.ID()) {
		t.Fatal("re-attached session not listed")
	}
	if err := h.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(ids(t, direct), h.ID()) {
		t.Fatal("released session still listed")
	}
}

func TestHoldRetriesWhileTheDaemonIsBrieflyUnreachable(t *testing.T) {
	ctx := context.Background()
	r := startRelay(t, windowedStubURL)
	h, err := herd.New(r.URL).Hold(ctx, "default", herd.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release(ctx)
	r.down.Store(true)
	r.cut()
	time.Sleep(grace / 3)
	r.down.Store(false)
	eventually(t, "the hold to re-attach", func() bool { return h.Reattaches() == 1 })
	if !held(h) {
		t.Fatalf("hold lost: %v", h.Err())
	}
}

func TestHoldIsLostOnceAGracePassesUnreachable(t *testing.T) {
	ctx := context.Background()
	r := startRelay(t, windowedStubURL)
	h, err := herd.New(r.URL).Hold(ctx, "default", herd.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r.down.Store(true)
	cutAt := time.Now()
	r.cut()
	select {
	case <-h.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("hold not reported lost")
	}
	if h.Err() == nil || !strings.Contains(h.Err().Error(), "not re-attached within") {
		t.Fatalf("lost hold reports %v", h.Err())
	}
	if time.Since(cutAt) < grace/2 || h.Reattaches() != 0 {
		t.Fatalf("lost after %v with %d re-attaches", time.Since(cutAt), h.Reattaches())
	}
	direct := herd.New(windowedStubURL)
	eventually(t, "the window to end the session", func() bool { return !slices.Contains(ids(t, direct), h.ID()) })
}

func TestHoldReattachNeverCreatesASession(t *testing.T) {
	ctx := context.Background()
	r := startRelay(t, stubURL) // no window: the cut ends the session at once
	h, err := herd.New(r.URL).Hold(ctx, "default", herd.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r.cut()
	select {
	case <-h.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("hold not reported lost")
	}
	if herd.CodeOf(h.Err()) != connect.CodeNotFound {
		t.Fatalf("lost hold reports %v", h.Err())
	}
	time.Sleep(200 * time.Millisecond)
	if slices.Contains(ids(t, herd.New(stubURL)), h.ID()) {
		t.Fatal("re-attaching created the session again")
	}
}
