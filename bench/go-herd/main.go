// The Go herd library's side of bench/acquire.ts: the library (HackStrix/herd, vendored in
// ./herd, see README.md) driving a pool of the bench's worker, served over the network so the
// bench calls it the way it calls herd's daemon.
//
// The library's own daemon (cmd/herd, internal/daemon) is a stub at the vendored commit: its
// Acquire answers a fixed session without touching a pool. So the control side here is this
// harness's: a bare net/http JSON endpoint around the library's Pool.Acquire and
// Session.Release, the least any daemon around the library would add. The data side is the
// library's own proxy.ReverseProxy; that proxy leaves a session pinned until the TTL sweep
// (a new session per request would hold its worker for the whole TTL), so the handler here
// ends each request's session right after the response with Session.Release, as herd's data
// plane ends a session when its connection closes (releaseOnDisconnect, no grace).
//
//	POST /acquire    {"sessionId":"…"} → {"sessionId":"…","workerId":"…","workerAddress":"…"}
//	POST /release    {"sessionId":"…"} → {}
//	POST /noop       {"sessionId":"…"} → {} (the plain HTTP round trip: the same call, no pool)
//	GET  /inprocess?n=N  N in-process Acquire+Release cycles → {"p50Ms":…} of the Acquire
//	data plane       any request with X-Session-ID, proxied by proxy.ReverseProxy
//
// Usage: go-herd [-max N] -- worker [args…] (the worker listens on $PORT and answers GET
// /health). Prints {"control":URL,"data":URL} once its max workers are healthy; shuts the pool
// down (every worker killed) when stdin closes or on SIGTERM/SIGINT.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hackstrix/herd"
	"github.com/hackstrix/herd/proxy"
)

type pool = herd.Pool[*http.Client]

func main() {
	max := flag.Int("max", 10, "workers (min = max, as the bench's herd pool)")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: go-herd [-max N] -- worker [args...]")
		os.Exit(2)
	}
	// The library logs every acquire and release; dropping those lines makes the baseline
	// cheaper, never dearer, than the library as shipped.
	log.SetOutput(io.Discard)
	factory := herd.NewProcessFactory(flag.Arg(0), flag.Args()[1:]...).
		WithInsecureSandbox(). // namespaces and cgroups need privileges herd's bench pool runs without
		WithStartHealthCheckDelay(10 * time.Millisecond)
	p, err := herd.New[*http.Client](factory, herd.WithAutoScale(*max, *max), herd.WithTTL(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-herd:", err)
		os.Exit(1)
	}
	defer p.Shutdown(context.Background())

	control, err := serve(controlHandler(p))
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-herd:", err)
		return
	}
	data, err := serve(dataHandler(p))
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-herd:", err)
		return
	}
	json.NewEncoder(os.Stdout).Encode(map[string]string{"control": control, "data": data})

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	stdinClosed := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()
	select {
	case <-stop:
	case <-stdinClosed:
	}
}

func serve(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go http.Serve(ln, h)
	return "http://" + ln.Addr().String(), nil
}

type call struct {
	SessionID string `json:"sessionId"`
}

func controlHandler(p *pool) http.Handler {
	var sessions sync.Map // session id → *herd.Session[*http.Client]
	mux := http.NewServeMux()
	decode := func(w http.ResponseWriter, r *http.Request) (string, bool) {
		var c call
		if err := json.NewDecoder(r.Body).Decode(&c); err != nil || c.SessionID == "" {
			http.Error(w, "want {\"sessionId\":\"…\"}", http.StatusBadRequest)
			return "", false
		}
		return c.SessionID, true
	}
	answer := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("POST /acquire", func(w http.ResponseWriter, r *http.Request) {
		id, ok := decode(w, r)
		if !ok {
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
		defer cancel()
		s, err := p.Acquire(ctx, id)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		sessions.Store(id, s)
		answer(w, map[string]string{"sessionId": id, "workerId": s.Worker.ID(), "workerAddress": s.Worker.Address()})
	})
	mux.HandleFunc("POST /release", func(w http.ResponseWriter, r *http.Request) {
		id, ok := decode(w, r)
		if !ok {
			return
		}
		if s, found := sessions.LoadAndDelete(id); found {
			s.(*herd.Session[*http.Client]).Release()
		}
		answer(w, struct{}{})
	})
	mux.HandleFunc("POST /noop", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := decode(w, r); ok {
			answer(w, struct{}{})
		}
	})
	mux.HandleFunc("GET /inprocess", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		samples := make([]float64, 0, n)
		for i := 0; i < n; i++ {
			t := time.Now()
			s, err := p.Acquire(r.Context(), fmt.Sprintf("inprocess-%d", i))
			if err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
			samples = append(samples, float64(time.Since(t).Microseconds())/1000)
			s.Release()
		}
		sort.Float64s(samples)
		p50 := 0.0
		if n > 0 {
			p50 = samples[(n+1)/2-1]
		}
		answer(w, map[string]float64{"p50Ms": p50})
	})
	return mux
}

func dataHandler(p *pool) http.Handler {
	sessionOf := func(r *http.Request) string { return r.Header.Get("X-Session-ID") }
	rp := proxy.NewReverseProxy(p, sessionOf)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rp.ServeHTTP(w, r)
		if sessionOf(r) == "" {
			return
		}
		// The session ends with its request: the fast-path Acquire finds the pinned worker,
		// Release unpins it and hands it to the next waiting Acquire.
		if s, err := p.Acquire(r.Context(), sessionOf(r)); err == nil {
			s.ConnRelease()
			s.Release()
		}
	})
}
