// Package herd is the Go client of the herd control plane: a thin layer over the
// buf-generated connect-go client (package herdv1connect) that adds bearer auth, typed
// errors, session handles with data-plane headers, holds that renew themselves, and a
// Watch iterator.
package herd

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	herdv1 "github.com/herd-dev/herd/sdk/go/gen/herd/v1"
	"github.com/herd-dev/herd/sdk/go/gen/herd/v1/herdv1connect"
)

// Client talks to one herd daemon. It is safe for concurrent use.
type Client struct {
	rpc   herdv1connect.HerdServiceClient
	token string
	// key is the tenant key the client was given (WithTenantKey), for sessions' Headers.
	key string
}

// Option configures a Client.
type Option func(*config)

type config struct {
	httpClient connect.HTTPClient
	token      string
	key        string
	connect    []connect.ClientOption
}

// WithToken sends "Authorization: Bearer <token>" on every call: the operator's token
// (control.token). It replaces an earlier WithTenantKey.
func WithToken(token string) Option { return func(c *config) { c.token, c.key = token, "" } }

// WithTenantKey makes the client a tenant's: the key is the control plane's bearer token
// (as WithToken), and every session's Headers carry it as X-Herd-Key for the data plane.
// It replaces an earlier WithToken.
func WithTenantKey(key string) Option { return func(c *config) { c.token, c.key = key, key } }

// WithHTTPClient replaces http.DefaultClient (e.g. an h2c client for gRPC).
func WithHTTPClient(h connect.HTTPClient) Option { return func(c *config) { c.httpClient = h } }

// WithGRPC speaks gRPC instead of Connect (needs an HTTP/2 client: see WithHTTPClient).
func WithGRPC() Option {
	return func(c *config) { c.connect = append(c.connect, connect.WithGRPC()) }
}

// WithGRPCWeb speaks gRPC-Web instead of Connect.
func WithGRPCWeb() Option {
	return func(c *config) { c.connect = append(c.connect, connect.WithGRPCWeb()) }
}

// New returns a client of the control plane at baseURL, e.g. "http://127.0.0.1:7070".
func New(baseURL string, opts ...Option) *Client {
	cfg := config{httpClient: http.DefaultClient}
	for _, o := range opts {
		o(&cfg)
	}
	return &Client{
		rpc:   herdv1connect.NewHerdServiceClient(cfg.httpClient, strings.TrimRight(baseURL, "/"), cfg.connect...),
		token: cfg.token,
		key:   cfg.key,
	}
}

// Error is every failure of a call: the Connect code the daemon answered with (see
// DESIGN.md's error table) and its message. Use errors.As, or CodeOf.
type Error struct {
	Code    connect.Code
	Message string
	cause   error
}

func (e *Error) Error() string { return fmt.Sprintf("herd: %s: %s", e.Code, e.Message) }
func (e *Error) Unwrap() error { return e.cause }

// CodeOf returns the code of a herd error, connect.CodeUnknown for any other error.
func CodeOf(err error) connect.Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return connect.CodeUnknown
}

func wrap(err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return &Error{Code: ce.Code(), Message: ce.Message(), cause: err}
	}
	return &Error{Code: connect.CodeOf(err), Message: err.Error(), cause: err}
}

func request[T any](c *Client, msg *T) *connect.Request[T] {
	req := connect.NewRequest(msg)
	if c.token != "" {
		req.Header().Set("Authorization", "Bearer "+c.token)
	}
	return req
}

// AcquireOptions are the optional parts of Acquire and Hold.
type AcquireOptions struct {
	// SessionID to acquire or re-attach to; empty: the daemon generates one.
	SessionID string
	// Wait is the longest wait in the pool's queue; 0: the pool's acquire_timeout.
	Wait time.Duration
	// Labels are stored with a new session.
	Labels map[string]string
}

func (o AcquireOptions) wait() *durationpb.Duration {
	if o.Wait == 0 {
		return nil
	}
	return durationpb.New(o.Wait)
}

// Acquire pins a session of pool to a worker. It lives until Release (or the daemon
// expires it); use Hold to tie it to the caller's lifetime instead.
func (c *Client) Acquire(ctx context.Context, pool string, opts AcquireOptions) (*Session, error) {
	res, err := c.rpc.AcquireSession(ctx, request(c, &herdv1.AcquireSessionRequest{
		Pool: pool, SessionId: opts.SessionID, Wait: opts.wait(), Labels: opts.Labels,
	}))
	if err != nil {
		return nil, wrap(err)
	}
	return &Session{Info: res.Msg.GetSession(), client: c}, nil
}

// Release ends a session by ID; kill kills its worker tree even when the pool reuses workers.
func (c *Client) Release(ctx context.Context, sessionID string, kill bool) error {
	_, err := c.rpc.ReleaseSession(ctx, request(c, &herdv1.ReleaseSessionRequest{SessionId: sessionID, Kill: kill}))
	return wrap(err)
}

// Stats reports pool (all pools when empty) and the node.
func (c *Client) Stats(ctx context.Context, pool string) (*herdv1.GetStatsResponse, error) {
	res, err := c.rpc.GetStats(ctx, request(c, &herdv1.GetStatsRequest{Pool: pool}))
	if err != nil {
		return nil, wrap(err)
	}
	return res.Msg, nil
}

// Sessions lists the live sessions of pool (all pools when empty).
func (c *Client) Sessions(ctx context.Context, pool string) ([]*herdv1.Session, error) {
	res, err := c.rpc.ListSessions(ctx, request(c, &herdv1.ListSessionsRequest{Pool: pool}))
	if err != nil {
		return nil, wrap(err)
	}
	return res.Msg.GetSessions(), nil
}

// WatchOptions select the events of Watch.
type WatchOptions struct {
	Pool      string
	SessionID string
	// Snapshot first yields one SNAPSHOT event per live session, then SNAPSHOT_COMPLETE.
	Snapshot bool
	// SinceRevision resumes after this revision (the last one seen).
	SinceRevision uint64
	// ConnectionEvents also yields CONNECTION_OPENED / CONNECTION_CLOSED, one pair per
	// data-plane connection (off by default).
	ConnectionEvents bool
}

// Watch yields lifecycle events as they happen, until ctx is cancelled (then it simply
// stops), the caller breaks out of the loop, or the stream fails (one final non-nil error).
func (c *Client) Watch(ctx context.Context, opts WatchOptions) iter.Seq2[*herdv1.SessionEvent, error] {
	return func(yield func(*herdv1.SessionEvent, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := c.rpc.WatchSessions(ctx, request(c, &herdv1.WatchSessionsRequest{
			Pool: opts.Pool, SessionId: opts.SessionID, Snapshot: opts.Snapshot, SinceRevision: opts.SinceRevision,
			ConnectionEvents: opts.ConnectionEvents,
		}))
		if err != nil {
			if ctx.Err() == nil {
				yield(nil, wrap(err))
			}
			return
		}
		defer stream.Close()
		for stream.Receive() {
			if !yield(stream.Msg(), nil) {
				return
			}
		}
		if err := stream.Err(); err != nil && ctx.Err() == nil {
			yield(nil, wrap(err))
		}
	}
}

// Usage reports what a live session used so far (CPU seconds, memory peak, bytes in and out;
// a figure the host cannot give is a nil CpuSeconds / MemoryPeakBytes field). It returns
// nil, nil when no such session is live.
func (c *Client) Usage(ctx context.Context, sessionID string) (*herdv1.SessionUsage, error) {
	sessions, err := c.Sessions(ctx, "")
	if err != nil {
		return nil, err
	}
	for _, s := range sessions {
		if s.GetSessionId() == sessionID {
			return s.GetUsage(), nil
		}
	}
	return nil, nil
}

// TailLogs yields the raw bytes the session's worker wrote to stdout and stderr since the
// session began; with follow, each later write until the session ends. It stops when ctx is
// cancelled, the caller breaks out of the loop, or the stream fails (one final non-nil error).
func (c *Client) TailLogs(ctx context.Context, sessionID string, follow bool) iter.Seq2[[]byte, error] {
	return func(yield func([]byte, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := c.rpc.TailSessionLogs(ctx, request(c, &herdv1.TailSessionLogsRequest{
			SessionId: sessionID, Follow: follow,
		}))
		if err != nil {
			if ctx.Err() == nil {
				yield(nil, wrap(err))
			}
			return
		}
		defer stream.Close()
		for stream.Receive() {
			if !yield(stream.Msg().GetData(), nil) {
				return
			}
		}
		if err := stream.Err(); err != nil && ctx.Err() == nil {
			yield(nil, wrap(err))
		}
	}
}
