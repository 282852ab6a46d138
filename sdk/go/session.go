package herd

import (
	"context"
	"net/http"
	"sync"

	"connectrpc.com/connect"

	herdv1 "github.com/herd-dev/herd/sdk/go/gen/herd/v1"
)

// Data-plane headers that route a request to a session and authorize it.
const (
	SessionHeader = "X-Session-ID"
	TokenHeader   = "X-Herd-Token"
	// KeyHeader carries a tenant key (WithTenantKey) to the data plane.
	KeyHeader = "X-Herd-Key"
)

// Session is an acquired session: one worker, pinned until Release.
type Session struct {
	// Info is the session as the daemon returned it.
	Info   *herdv1.Session
	client *Client
	once   sync.Once
	err    error
}

// ID is the session ID.
func (s *Session) ID() string { return s.Info.GetSessionId() }

// ProxyURL is the data plane's base URL: send the session's HTTP/WebSocket traffic there.
func (s *Session) ProxyURL() string { return s.Info.GetDataPlaneUrl() }

// Headers route a data-plane request to this session and authorize it: its token, if any,
// and the client's tenant key (X-Herd-Key), if it has one.
func (s *Session) Headers() http.Header {
	h := http.Header{}
	h.Set(SessionHeader, s.ID())
	if t := s.Info.GetToken(); t != "" {
		h.Set(TokenHeader, t)
	}
	if s.client.key != "" {
		h.Set(KeyHeader, s.client.key)
	}
	return h
}

// Release ends the session. Idempotent; a session already gone counts as released.
func (s *Session) Release(ctx context.Context) error {
	s.once.Do(func() { s.err = s.client.releaseGoneOK(ctx, s.ID(), false) })
	return s.err
}

func (c *Client) releaseGoneOK(ctx context.Context, id string, kill bool) error {
	if err := c.Release(ctx, id, kill); err != nil && CodeOf(err) != connect.CodeNotFound {
		return err
	}
	return nil
}
