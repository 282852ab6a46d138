package herd

// A HeldSession is held through HoldSession: the daemon ends the session when its holder goes
// away, so a crashed or killed holder can never leak a worker. A transient stream failure
// (connection reset, UNAVAILABLE, a cut stream) is not the end: the hold reopens HoldSession for
// the same session with attach_only (never a new session), backing off, until a grace has
// passed since the daemon last showed the hold alive; the daemon's reconnect window keeps the
// session meanwhile, and a session that is gone answers NOT_FOUND.
//
// Invariant: done closes exactly once, when the hold is over (released, ctx cancelled, stream
// ended or failed for good, not re-attached within the grace, renewals late beyond the grace);
// err is set before. At most one stream is open at a time; holdID names its hold.
// Concurrency: one goroutine drains the stream and re-attaches, one renews (and pauses while
// re-attaching); both stop when done closes. mu guards the fields below it.

import (
	"context"
	"fmt"
	"sync"
	"time"

	"connectrpc.com/connect"

	herdv1 "github.com/herd-dev/herd/sdk/go/gen/herd/v1"
)

const (
	backoffFirst = 50 * time.Millisecond
	backoffMax   = time.Second
)

// HeldSession is a session that lives exactly as long as its hold.
type HeldSession struct {
	Session
	// Grace is how long the daemon waits for a renewal (0: none needed, and no re-attaching).
	Grace time.Duration

	cancel  context.CancelFunc
	done    chan struct{}
	endOnce sync.Once
	holdErr error

	mu          sync.Mutex
	holdID      string
	reattaches  int
	reattaching bool
	lastOK      time.Time          // when the daemon last showed the hold alive
	closeStream context.CancelFunc // closes the current stream only
	dropped     bool               // closeStream was called to re-attach, not to end the hold
}

// HoldID identifies the current hold to RenewHold; a new one after each re-attach.
func (h *HeldSession) HoldID() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.holdID
}

// Reattaches counts the re-attaches after transient stream failures.
func (h *HeldSession) Reattaches() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.reattaches
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

// lose ends the hold with err and closes whatever stream is open.
func (h *HeldSession) lose(err error) {
	h.end(err)
	h.cancel()
}

func (h *HeldSession) alive() {
	h.mu.Lock()
	h.lastOK = time.Now()
	h.mu.Unlock()
}

// drop closes the stream of hold holdID so the keeper re-attaches, unless it is already doing
// so or that hold was replaced.
func (h *HeldSession) drop(holdID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.holdID == holdID && !h.reattaching {
		h.dropped = true
		h.closeStream()
	}
}

type holdStream = connect.ServerStreamForClient[herdv1.HoldSessionResponse]

// Hold acquires (or attaches to) a session of pool and holds it until ctx is cancelled or
// Release is called; the daemon ends the session as soon as the hold goes away. The hold
// renews itself every third of the daemon's grace, and re-attaches after a transient failure of
// its stream for up to a grace, keeping the same session and worker.
func (c *Client) Hold(ctx context.Context, pool string, opts AcquireOptions) (*HeldSession, error) {
	holdCtx, cancel := context.WithCancel(ctx)
	stream, first, closeStream, err := c.openHold(holdCtx, &herdv1.HoldSessionRequest{
		Pool: pool, SessionId: opts.SessionID, Wait: opts.wait(), Labels: opts.Labels,
	}, 0)
	if err != nil {
		cancel()
		return nil, err
	}
	h := &HeldSession{
		Session:     Session{Info: first.GetSession(), client: c},
		Grace:       first.GetHeartbeatGrace().AsDuration(),
		cancel:      cancel,
		done:        make(chan struct{}),
		holdID:      first.GetHoldId(),
		lastOK:      time.Now(),
		closeStream: closeStream,
	}
	go c.keep(holdCtx, h, stream)
	if h.Grace > 0 {
		go c.renew(holdCtx, h)
	}
	return h, nil
}

// openHold opens a HoldSession stream and reads its first message, the session; with a limit,
// giving up on that first message after it. The stream lives until the returned func is called.
func (c *Client) openHold(ctx context.Context, req *herdv1.HoldSessionRequest, limit time.Duration) (*holdStream, *herdv1.HoldSessionResponse, context.CancelFunc, error) {
	streamCtx, cancel := context.WithCancel(ctx)
	stream, err := c.rpc.HoldSession(streamCtx, request(c, req))
	if err != nil {
		cancel()
		return nil, nil, nil, wrap(err)
	}
	if limit > 0 {
		t := time.AfterFunc(limit, cancel)
		defer t.Stop()
	}
	if !stream.Receive() {
		err := stream.Err()
		_ = stream.Close()
		cancel()
		if err == nil {
			err = &Error{Code: connect.CodeInternal, Message: "HoldSession stream ended before the session"}
		}
		return nil, nil, nil, wrap(err)
	}
	first := stream.Msg()
	if first.GetSession() == nil {
		_ = stream.Close()
		cancel()
		return nil, nil, nil, &Error{Code: connect.CodeInternal, Message: "HoldSession stream did not start with the session"}
	}
	return stream, first, cancel, nil
}

// transient says whether a stream failure may be cured by re-attaching: the connection, not
// the daemon, said no. connect-go reports a reset connection as canceled; callers rule out
// cancellations of their own (the hold's ctx) before asking.
func transient(err error) bool {
	switch CodeOf(err) {
	case connect.CodeUnavailable, connect.CodeAborted, connect.CodeInternal, connect.CodeUnknown,
		connect.CodeCanceled:
		return true
	}
	return false
}

// keep drains the stream; after a transient failure it re-attaches and drains the new one.
func (c *Client) keep(ctx context.Context, h *HeldSession, stream *holdStream) {
	for {
		for stream.Receive() {
			h.alive()
		}
		err := stream.Err()
		_ = stream.Close()
		if ctx.Err() != nil {
			h.end(nil) // the caller ended it
			return
		}
		h.mu.Lock()
		dropped := h.dropped // closed by renew, whose NOT_FOUND re-attaching must confirm
		h.dropped = false
		h.mu.Unlock()
		if err == nil {
			err = &Error{Code: connect.CodeUnavailable, Message: "hold stream ended by the daemon"}
			if !dropped {
				h.lose(err)
				return
			}
		}
		if err = wrap(err); (!dropped && !transient(err)) || h.Grace <= 0 {
			h.lose(err)
			return
		}
		if stream = c.reattach(ctx, h, err); stream == nil {
			return
		}
	}
}

func (c *Client) reattach(ctx context.Context, h *HeldSession, last error) *holdStream {
	h.mu.Lock()
	h.reattaching = true
	h.closeStream()
	h.mu.Unlock()
	req := &herdv1.HoldSessionRequest{Pool: h.Info.GetPool(), SessionId: h.ID(), AttachOnly: true}
	for delay := backoffFirst; ; delay = min(delay*2, backoffMax) {
		h.mu.Lock()
		left := h.Grace - time.Since(h.lastOK)
		h.mu.Unlock()
		if left <= delay {
			h.lose(fmt.Errorf("herd: hold lost: not re-attached within %s (heartbeat_grace): %w", h.Grace, last))
			return nil
		}
		select {
		case <-ctx.Done():
			h.end(nil)
			return nil
		case <-time.After(delay):
		}
		stream, first, closeStream, err := c.openHold(ctx, req, left-delay)
		switch {
		case ctx.Err() != nil:
			if err == nil {
				_ = stream.Close()
				closeStream()
			}
			h.end(nil)
			return nil
		case err != nil && transient(err):
			last = err // a cut connection, or this attempt's limit ran out
			continue
		case err != nil:
			h.lose(fmt.Errorf("herd: hold lost: re-attaching to session %s failed: %w", h.ID(), err))
			return nil
		}
		if s := first.GetSession(); s.GetWorkerId() != h.Info.GetWorkerId() || s.GetToken() != h.Info.GetToken() {
			// A daemon that ignores attach_only made a new session; closing its stream ends it.
			_ = stream.Close()
			closeStream()
			h.lose(&Error{Code: connect.CodeFailedPrecondition, Message: fmt.Sprintf(
				"hold lost: session %s came back on worker %s, not %s", h.ID(), s.GetWorkerId(), h.Info.GetWorkerId())})
			return nil
		}
		h.mu.Lock()
		h.holdID = first.GetHoldId()
		h.reattaches++
		h.reattaching = false
		h.lastOK = time.Now()
		h.closeStream = closeStream
		h.mu.Unlock()
		return stream
	}
}

func (c *Client) renew(ctx context.Context, h *HeldSession) {
	every := max(h.Grace/3, 10*time.Millisecond)
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
		h.mu.Lock()
		holdID, reattaching, lastOK := h.holdID, h.reattaching, h.lastOK
		h.mu.Unlock()
		if reattaching {
			continue // the keeper bounds its attempts by the grace itself
		}
		// A slow renewal still counts while the grace since the last success lasts.
		callCtx, cancel := context.WithTimeout(ctx, max(h.Grace-time.Since(lastOK), every))
		_, err := c.rpc.RenewHold(callCtx, request(c, &herdv1.RenewHoldRequest{SessionId: h.ID(), HoldId: holdID}))
		cancel()
		switch {
		case err == nil:
			h.mu.Lock()
			if h.holdID == holdID {
				h.lastOK = time.Now()
			}
			h.mu.Unlock()
		case ctx.Err() != nil:
			return
		case h.HoldID() != holdID:
			// Re-attached meanwhile: this renewal was for a hold already replaced.
		case connect.CodeOf(err) == connect.CodeNotFound:
			// The hold is gone; whether its session is too, only re-attaching can tell.
			h.drop(holdID)
		case time.Since(lastOK) > h.Grace && !h.isReattaching():
			h.lose(fmt.Errorf("herd: hold not renewed within %s: %w", h.Grace, wrap(err)))
			return
		}
	}
}

func (h *HeldSession) isReattaching() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.reattaching
}
