// The data-plane bench's worker (bench/data-plane.ts): a Go net/http server that answers far
// faster than any proxy in front of it on this machine, so the proxy, not the worker, sets the
// ceiling (the Node fixture worker serves about what herd does). Built by bench/go-worker.ts;
// standard library only.
//
//	GET /whoami  a small fixed JSON answer with the process id (which worker answered)
//	GET /ws      WebSocket: sends "hello <pid>", then echoes every text and binary message
//	GET /sleep   answers {"pid":…,"ms":N} after ?ms=N milliseconds (bench/acquire.ts's burst)
//
// Port: $PORT (0: one the OS picks). Prints `ready <port>` on stdout once listening.
package main

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

func main() {
	pid := os.Getpid()
	whoami := []byte(fmt.Sprintf(`{"pid":%d,"worker":"go"}`, pid))
	mux := http.NewServeMux()
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{strconv.Itoa(len(whoami))}
		w.Write(whoami)
	})
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("/sleep", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		time.Sleep(time.Duration(ms) * time.Millisecond)
		fmt.Fprintf(w, `{"pid":%d,"ms":%d}`, pid, ms)
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) { echo(w, r, pid) })
	ln, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-worker:", err)
		os.Exit(1)
	}
	fmt.Printf("ready %d\n", ln.Addr().(*net.TCPAddr).Port)
	http.Serve(ln, mux)
}

// echo runs one WebSocket: unfragmented messages only (what the bench sends), close on close.
func echo(w http.ResponseWriter, r *http.Request, pid int) {
	key := r.Header.Get("Sec-WebSocket-Key")
	if key == "" {
		http.Error(w, "not a websocket upgrade", http.StatusBadRequest)
		return
	}
	conn, rw, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	sum := sha1.Sum([]byte(key + wsGUID))
	rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(sum[:]) + "\r\n\r\n")
	writeFrame(rw.Writer, 1, []byte(fmt.Sprintf("hello %d", pid)))
	if rw.Flush() != nil {
		return
	}
	in := rw.Reader // may hold bytes read past the handshake
	var head [14]byte
	for {
		if _, err := io.ReadFull(in, head[:2]); err != nil {
			return
		}
		op := head[0] & 0x0f
		n := uint64(head[1] & 0x7f)
		switch n {
		case 126:
			if _, err := io.ReadFull(in, head[2:4]); err != nil {
				return
			}
			n = uint64(binary.BigEndian.Uint16(head[2:4]))
		case 127:
			if _, err := io.ReadFull(in, head[2:10]); err != nil {
				return
			}
			n = binary.BigEndian.Uint64(head[2:10])
		}
		var mask [4]byte
		if head[1]&0x80 != 0 {
			if _, err := io.ReadFull(in, mask[:]); err != nil {
				return
			}
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(in, payload); err != nil {
			return
		}
		for i := range payload {
			payload[i] ^= mask[i%4]
		}
		switch op {
		case 8: // close: answer it and stop
			writeFrame(rw.Writer, 8, payload)
			rw.Flush()
			return
		case 9: // ping
			writeFrame(rw.Writer, 10, payload)
		case 1, 2:
			writeFrame(rw.Writer, op, payload)
		}
		// Flush only when no further frame is already read: echoes of a burst go in one write.
		if in.Buffered() == 0 && rw.Flush() != nil {
			return
		}
	}
}

func writeFrame(w *bufio.Writer, op byte, payload []byte) {
	w.WriteByte(0x80 | op)
	n := len(payload)
	switch {
	case n < 126:
		w.WriteByte(byte(n))
	case n < 1<<16:
		w.WriteByte(126)
		binary.Write(w, binary.BigEndian, uint16(n))
	default:
		w.WriteByte(127)
		binary.Write(w, binary.BigEndian, uint64(n))
	}
	w.Write(payload)
}
