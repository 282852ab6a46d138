package herd

// A HeldSession is held through HoldSession: the daemon ends the session the moment the
// stream goes away, so a crashed or killed holder can never leak a worker.
//
// Invariant: done closes exactly once, when the hold is over (released, ctx cancelled,
// stream ended or failed, renewals refused or late beyond the grace); err is set before.
// Concurrency: one goroutine drains the stream, one renews; both stop when done closes.

import (
	"context"
	"fmt"
	"sync"
	"time"

	"connectrpc.com/connect"

	herdv1 "github.com/herd-dev/herd/sdk/go/gen/herd/v1"
)

// HeldSession is a session that lives exactly as long as its hold.
type HeldSession struct {
	Session
	// HoldID identifies the hold to RenewHold.
	HoldID string
	// Grace is how long the daemon waits for a renewal (0: none needed).
	Grace time.Duration

	cancel  context.CancelFunc
	done    chan struct{}
	endOnce sync.Once
	holdErr error
}

// Done is closed when the hold is over.
func (h *HeldSession) Done() <-chan struct{} { return h.done }

// Err says why the hold ended: nil while held and after Release or ctx cancellation.
func (h *HeldSession) Err() error {
	select {
	case <-h.done:
		return h.holdErr
	default:
		return nil
	}
}

// Release ends the session (ReleaseSession) and closes the hold stream.
func (h *HeldSession) Release(ctx context.Context) error {
	held := true
	select {
	case <-h.done:
		held = false
	default:
	}
	h.end(nil)
	var err error
	if held {
		err = h.Session.Release(ctx)
	}
	h.cancel()
	return err
}

func (h *HeldSession) end(err error) {
	h.endOnce.Do(func() {
		h.holdErr = err
		close(h.done)
	})
}

// Hold acquires (or attaches to) a session of pool and holds it until ctx is cancelled or
// Release is called; the daemon ends the session as soon as the hold goes away. The hold
// renews itself every third of the daemon's grace.
func (c *Client) Hold(ctx context.Context, pool string, opts AcquireOptions) (*HeldSession, error) {
	holdCtx, cancel := context.WithCancel(ctx)
	stream, err := c.rpc.HoldSession(holdCtx, request(c, &herdv1.HoldSessionRequest{
		Pool: pool, SessionId: opts.SessionID, Wait: opts.wait(), Labels: opts.Labels,
	}))
	if err != nil {
		cancel()
		return nil, wrap(err)
	}
	if !stream.Receive() {
		err := stream.Err()
		cancel()
		if err == nil {
			err = &Error{Code: connect.CodeInternal, Message: "HoldSession stream ended before the session"}
		}
		return nil, wrap(err)
	}
	first := stream.Msg()
	if first.GetSession() == nil {
		cancel()
		return nil, &Error{Code: connect.CodeInternal, Message: "HoldSession stream did not start with the session"}
	}
	h := &HeldSession{
		Session: Session{Info: first.GetSession(), client: c},
		HoldID:  first.GetHoldId(),
		Grace:   first.GetHeartbeatGrace().AsDuration(),
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	go func() {
		for stream.Receive() {
		}
		err := stream.Err()
		_ = stream.Close()
		if holdCtx.Err() != nil {
			h.end(nil) // the caller ended it
			return
		}
		if err == nil {
			err = &Error{Code: connect.CodeUnavailable, Message: "hold stream ended by the daemon"}
		}
		h.end(wrap(err))
	}()
	if h.Grace > 0 {
		go c.renew(holdCtx, h)
	}
	return h, nil
}

func (c *Client) renew(ctx context.Context, h *HeldSession) {
	every := max(h.Grace/3, 10*time.Millisecond)
	lastOK := time.Now()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-h.done:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// A slow renewal still counts while the grace since the last success lasts.
		callCtx, cancel := context.WithTimeout(ctx, max(h.Grace-time.Since(lastOK), every))
		_, err := c.rpc.RenewHold(callCtx, request(c, &herdv1.RenewHoldRequest{SessionId: h.ID(), HoldId: h.HoldID}))
		cancel()
		switch {
		case err == nil:
			lastOK = time.Now()
		case ctx.Err() != nil:
			return
		case connect.CodeOf(err) == connect.CodeNotFound:
			h.end(fmt.Errorf("herd: hold refused by the daemon: %w", wrap(err)))
			h.cancel()
			return
		case time.Since(lastOK) > h.Grace:
			h.end(fmt.Errorf("herd: hold not renewed within %s: %w", h.Grace, wrap(err)))
			h.cancel()
			return
		}
	}
}
