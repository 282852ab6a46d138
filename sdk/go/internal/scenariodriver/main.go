// Command scenariodriver is the Go driver of the SDK scenario suite
// (sdk/ts/test/scenarios.spec.ts): the same steps and JSON lines as the TypeScript and
// Python drivers, through the herd package's public API.
//
//	scenariodriver <identity|errors|watch|logs-usage|hold|tenant-key> <controlURL> <pool>
//
// tenant-key reads the key from HERD_SCENARIO_KEY and the recorder's URL from
// HERD_SCENARIO_RECORDER (see the TypeScript driver).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	herd "github.com/herd-dev/herd/sdk/go"
	herdv1 "github.com/herd-dev/herd/sdk/go/gen/herd/v1"
)

func out(v any) {
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "scenariodriver:", err)
	os.Exit(1)
}

func call(method, url string, h http.Header) ([]byte, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header = h
	res, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	return io.ReadAll(res.Body)
}

func codeName(err error) string {
	if err == nil {
		return "ok"
	}
	return herd.CodeOf(err).String()
}

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: scenariodriver <identity|errors|watch|hold> <controlURL> <pool>")
		os.Exit(2)
	}
	step, url, pool := os.Args[1], os.Args[2], os.Args[3]
	ctx := context.Background()
	c := herd.New(url)
	switch step {
	case "identity":
		s, err := c.Acquire(ctx, pool, herd.AcquireOptions{})
		if err != nil {
			fail(err)
		}
		var pids []int
		for range 3 {
			body, err := call("GET", s.ProxyURL()+"/whoami", s.Headers())
			if err != nil {
				fail(err)
			}
			var who struct{ Pid int }
			if err := json.Unmarshal(body, &who); err != nil {
				fail(fmt.Errorf("whoami answered %q: %w", body, err))
			}
			pids = append(pids, who.Pid)
		}
		if err := s.Release(ctx); err != nil {
			fail(err)
		}
		out(map[string]any{"session": s.ID(), "workerPid": s.Info.GetWorkerPid(), "pids": pids})
	case "errors":
		_, unknown := c.Acquire(ctx, "no-such-pool", herd.AcquireOptions{})
		_, invalid := c.Acquire(ctx, pool, herd.AcquireOptions{SessionID: "bad id!"})
		out(map[string]string{"unknownPool": codeName(unknown), "invalidId": codeName(invalid)})
	case "watch":
		ids := []string{fmt.Sprintf("go-a-%d", os.Getpid()), fmt.Sprintf("go-b-%d", os.Getpid())}
		events := [][]string{}
		for ev, err := range c.Watch(ctx, herd.WatchOptions{Pool: pool, Snapshot: true}) {
			if err != nil {
				fail(err)
			}
			switch {
			case ev.GetType() == herdv1.SessionEventType_SESSION_EVENT_TYPE_SNAPSHOT_COMPLETE:
				a, err := c.Acquire(ctx, pool, herd.AcquireOptions{SessionID: ids[0]})
				if err != nil {
					fail(err)
				}
				if err := a.Release(ctx); err != nil {
					fail(err)
				}
				b, err := c.Acquire(ctx, pool, herd.AcquireOptions{SessionID: ids[1]})
				if err != nil {
					fail(err)
				}
				_, _ = call("POST", b.ProxyURL()+"/control/crash?code=3", b.Headers()) // dies mid-request
			case ev.GetSessionId() == ids[0] || ev.GetSessionId() == ids[1]:
				which := "a"
				if ev.GetSessionId() == ids[1] {
					which = "b"
				}
				events = append(events, []string{strings.TrimPrefix(ev.GetType().String(), "SESSION_EVENT_TYPE_"), which})
			}
			if ev.GetType() == herdv1.SessionEventType_SESSION_EVENT_TYPE_SESSION_LOST && ev.GetSessionId() == ids[1] {
				break
			}
		}
		out(map[string]any{"events": events})
	case "logs-usage":
		s, err := c.Acquire(ctx, pool, herd.AcquireOptions{})
		if err != nil {
			fail(err)
		}
		if _, err := call("GET", s.ProxyURL()+"/whoami", s.Headers()); err != nil {
			fail(err)
		}
		if _, err := call("POST", s.ProxyURL()+"/control/stderr?line=go-before", s.Headers()); err != nil {
			fail(err)
		}
		held := ""
		for piece, err := range c.TailLogs(ctx, s.ID(), false) {
			if err != nil {
				fail(err)
			}
			held += string(piece)
		}
		seen, asked := "", false
		for piece, err := range c.TailLogs(ctx, s.ID(), true) {
			if err != nil {
				fail(err)
			}
			seen += string(piece)
			if strings.Contains(seen, "go-before\n") && !asked {
				asked = true
				if _, err := call("POST", s.ProxyURL()+"/control/stderr?line=go-after", s.Headers()); err != nil {
					fail(err)
				}
			}
			if strings.Contains(seen, "go-after\n") {
				break
			}
		}
		usage, err := c.Usage(ctx, s.ID())
		if err != nil || usage == nil {
			fail(fmt.Errorf("usage: %v", err))
		}
		if err := s.Release(ctx); err != nil {
			fail(err)
		}
		out(map[string]any{
			"logged":   strings.Contains(held, "go-before\n"),
			"followed": strings.Contains(seen, "go-after\n"),
			"rx":       usage.GetRxBytes(),
			"tx":       usage.GetTxBytes(),
			"cpuKnown": usage.CpuSeconds != nil,
		})
	case "tenant-key":
		keyed := herd.New(url, herd.WithTenantKey(os.Getenv("HERD_SCENARIO_KEY")))
		recorder := os.Getenv("HERD_SCENARIO_RECORDER")
		s, err := keyed.Acquire(ctx, pool, herd.AcquireOptions{})
		if err != nil {
			fail(err)
		}
		if _, err := call("GET", recorder+"/go", s.Headers()); err != nil {
			fail(err)
		}
		body, err := call("GET", s.ProxyURL()+"/whoami", s.Headers())
		if err != nil {
			fail(err)
		}
		var who struct{ Pid int }
		_ = json.Unmarshal(body, &who)
		h, err := keyed.Hold(ctx, pool, herd.AcquireOptions{})
		if err != nil {
			fail(err)
		}
		if _, err := call("GET", recorder+"/go-held", h.Headers()); err != nil {
			fail(err)
		}
		if err := h.Release(ctx); err != nil {
			fail(err)
		}
		if err := s.Release(ctx); err != nil {
			fail(err)
		}
		out(map[string]any{
			"sessions": map[string]string{"go": s.ID(), "go-held": h.ID()},
			"reached":  who.Pid == int(s.Info.GetWorkerPid()),
		})
	case "hold":
		h, err := c.Hold(ctx, pool, herd.AcquireOptions{})
		if err != nil {
			fail(err)
		}
		out(map[string]any{"held": h.ID(), "workerPid": h.Info.GetWorkerPid()})
		<-h.Done()
		fail(fmt.Errorf("hold ended: %v", h.Err()))
	default:
		fail(fmt.Errorf("unknown step %q", step))
	}
}
