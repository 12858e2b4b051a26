package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// A client that sends the headers and part of the body, then stalls, is
// answered 408 after the body idle timeout, not held for ReadTimeout.
func TestStalledBodyIsA408AfterTheIdleTimeout(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	e.s.cfg.BodyIdleTimeout = time.Second
	e.rebuild(t)
	u, _ := url.Parse(e.srv.URL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	fmt.Fprintf(conn, "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"type\":", e.keyA)
	_ = conn.SetReadDeadline(time.Now().Add(8 * time.Second))
	answer, err := io.ReadAll(conn) // the server closes the connection after the answer
	took := time.Since(start)
	if err != nil {
		t.Fatalf("after %s: %v (answer %q)", took, err, answer)
	}
	head, body, _ := strings.Cut(string(answer), "\r\n\r\n")
	if !strings.HasPrefix(head, "HTTP/1.1 408 ") || !strings.Contains(head, "application/problem+json") ||
		!strings.Contains(body, problemPrefix+"request-timeout") {
		t.Fatalf("answer %q", answer)
	}
	if took < 900*time.Millisecond || took > 4*time.Second {
		t.Fatalf("answered after %s, want about the 1s idle timeout", took)
	}
	// A body that keeps coming, slower than the timeout in total but never
	// idle that long, is read.
	pr, pw := io.Pipe()
	go func() {
		for _, part := range []string{`{"type":`, `"system:ping"`, `}`} {
			time.Sleep(600 * time.Millisecond)
			_, _ = pw.Write([]byte(part))
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", e.srv.URL+"/v1/jobs", pr)
	req.Header.Set("Authorization", "Bearer "+e.keyA)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Fatalf("a slow but steady body: %d", resp.StatusCode)
	}
}
