package fetch_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crmq/crmq/workers/enrich/fetch"
	"github.com/crmq/crmq/workers/enrich/fetch/fetchtest"
)

// site serves mux on loopback and names it host (resolved by dns to
// 127.0.0.1); it answers the URL of path on that host.
func site(t *testing.T, dns *fetchtest.DNS, host string, h http.Handler) func(path string) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	dns.Add(t, host+". 60 IN A 127.0.0.1")
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	return func(path string) string { return fmt.Sprintf("http://%s:%d%s", host, port, path) }
}

func client(t *testing.T, dns *fetchtest.DNS, allow string, mod func(*fetch.Config)) *fetch.Client {
	t.Helper()
	a, err := fetch.ParseAllow(allow)
	if err != nil {
		t.Fatal(err)
	}
	cfg := fetch.Config{Allow: a, Resolver: dns.Resolver(), HostDelay: 0, Timeout: 2 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	return fetch.New(cfg)
}

func wantReason(t *testing.T, err error, want fetch.Reason) {
	t.Helper()
	if got := fetch.ReasonOf(err); got != want {
		t.Fatalf("reason %q (err %v), want %q", got, err, want)
	}
}

func TestAnAllowedSiteIsFetched(t *testing.T) {
	dns := fetchtest.NewDNS(t)
	at := site(t, dns, "acme.test", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/robots.txt" {
			http.NotFound(w, r)
			return
		}
		if ua := r.Header.Get("User-Agent"); !strings.HasPrefix(ua, fetch.Agent) {
			t.Errorf("User-Agent %q", ua)
		}
		fmt.Fprint(w, "<html><title>Acme</title></html>")
	}))
	p, err := client(t, dns, "acme.test", nil).Get(context.Background(), at("/"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != 200 || !strings.Contains(string(p.Body), "Acme") || p.Truncated {
		t.Fatalf("page %d %q truncated=%v", p.Status, p.Body, p.Truncated)
	}
}

func TestAHostnameResolvingToLoopbackIsRefusedWhileTheGuardIsOn(t *testing.T) {
	dns := fetchtest.NewDNS(t)
	var hits atomic.Int32
	at := site(t, dns, "inside.test", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	for _, allow := range []string{"", "other.test,10.0.0.0/8"} {
		_, err := client(t, dns, allow, nil).Get(context.Background(), at("/"))
		wantReason(t, err, fetch.ReasonRefused)
		if !strings.Contains(err.Error(), "127.0.0.1") {
			t.Errorf("error does not name the address: %v", err)
		}
	}
	if hits.Load() != 0 {
		t.Fatalf("the refused site was reached %d times", hits.Load())
	}
}

func TestLiteralPrivateAddressesAndOtherSchemesAreRefused(t *testing.T) {
	dns := fetchtest.NewDNS(t)
	c := client(t, dns, "", nil)
	for _, u := range []string{
		"http://127.0.0.1/", "http://[::1]/", "http://[::ffff:127.0.0.1]/", "http://10.1.2.3/",
		"http://169.254.169.254/latest/meta-data/", "http://100.64.0.1/", "http://0.0.0.0/",
		"http://224.0.0.1/", "http://[fe80::1]/", "http://[fd00:ec2::254]/", "http://192.168.1.1:8080/",
		"ftp://example.com/", "file:///etc/passwd", "gopher://x/", "http:///nohost",
	} {
		_, err := c.Get(context.Background(), u)
		wantReason(t, err, fetch.ReasonRefused)
	}
}

func TestAMetadataAddressIsRefusedEvenWhenTheAllowListCoversIt(t *testing.T) {
	dns := fetchtest.NewDNS(t, "meta.test. 60 IN A 169.254.169.254")
	c := client(t, dns, "169.254.0.0/16,meta.test", nil)
	for _, u := range []string{"http://169.254.169.254/", "http://meta.test/"} {
		_, err := c.Get(context.Background(), u)
		wantReason(t, err, fetch.ReasonRefused)
	}
}

func TestARedirectToTheMetadataAddressIsRefused(t *testing.T) {
	dns := fetchtest.NewDNS(t, "evil-meta.test. 60 IN A 169.254.169.254")
	for _, target := range []string{"http://169.254.169.254/latest/meta-data/iam/", "http://evil-meta.test/", "http://127.0.0.1:1/"} {
		at := site(t, dns, "redirector.test", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/robots.txt" {
				http.NotFound(w, r)
				return
			}
			http.Redirect(w, r, target, http.StatusFound)
		}))
		_, err := client(t, dns, "redirector.test", nil).Get(context.Background(), at("/"))
		wantReason(t, err, fetch.ReasonRefused)
	}
}

func TestANameAnsweringAPrivateAddressBesideAnAllowedOneIsRefused(t *testing.T) {
	dns := fetchtest.NewDNS(t, "mixed.test. 60 IN A 127.0.0.2", "mixed.test. 60 IN A 10.0.0.1")
	_, err := client(t, dns, "127.0.0.2/32", nil).Get(context.Background(), "http://mixed.test/")
	wantReason(t, err, fetch.ReasonRefused)
}

func TestAtMostFiveRedirectsAreFollowed(t *testing.T) {
	dns := fetchtest.NewDNS(t)
	handler := func(limit int) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/robots.txt" {
				http.NotFound(w, r)
				return
			}
			var n int
			fmt.Sscanf(r.URL.Path, "/r/%d", &n)
			if n < limit {
				http.Redirect(w, r, fmt.Sprintf("/r/%d", n+1), http.StatusFound)
				return
			}
			fmt.Fprint(w, "landed")
		})
	}
	five := site(t, dns, "five.test", handler(5))
	p, err := client(t, dns, "five.test", nil).Get(context.Background(), five("/r/0"))
	if err != nil || string(p.Body) != "landed" || p.URL.Path != "/r/5" {
		t.Fatalf("5 redirects: %v %+v", err, p)
	}
	six := site(t, dns, "six.test", handler(6))
	_, err = client(t, dns, "six.test", nil).Get(context.Background(), six("/r/0"))
	wantReason(t, err, fetch.ReasonUnreachable)
	if !strings.Contains(err.Error(), "redirects") {
		t.Fatalf("err %v", err)
	}
}

func TestAFiftyMegabyteResponseIsCutAtTwoMegabytes(t *testing.T) {
	dns := fetchtest.NewDNS(t)
	var written atomic.Int64
	done := make(chan struct{})
	at := site(t, dns, "huge.test", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/robots.txt" {
			http.NotFound(w, r)
			return
		}
		defer close(done)
		chunk := []byte(strings.Repeat("<p>filler</p>", 8<<10))
		for written.Load() < 50<<20 {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	p, err := client(t, dns, "huge.test", nil).Get(context.Background(), at("/"))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Body) != fetch.DefaultMaxBytes || !p.Truncated {
		t.Fatalf("body %d bytes truncated=%v, want %d and truncated", len(p.Body), p.Truncated, fetch.DefaultMaxBytes)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the server is still writing: the client did not hang up")
	}
	if written.Load() >= 50<<20 {
		t.Fatalf("the server wrote all %d bytes: the client read past its cap", written.Load())
	}
}

func TestASiteThatNeverAnswersTimesOut(t *testing.T) {
	dns := fetchtest.NewDNS(t, "silent.test. 60 IN A 127.0.0.1")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never answered
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	c := client(t, dns, "silent.test", func(c *fetch.Config) { c.Timeout = 300 * time.Millisecond })
	began := time.Now()
	_, err = c.Get(context.Background(), fmt.Sprintf("http://silent.test:%d/", ln.Addr().(*net.TCPAddr).Port))
	wantReason(t, err, fetch.ReasonTimeout)
	if !fetch.IsTransient(err) {
		t.Error("a timeout is transient")
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Fatalf("gave up after %v", d)
	}
}

func TestRobotsTxtThatDisallowsEverythingStopsTheFetch(t *testing.T) {
	dns := fetchtest.NewDNS(t)
	var pages atomic.Int32
	at := site(t, dns, "private-site.test", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/robots.txt" {
			fmt.Fprint(w, "User-agent: *\nDisallow: /\n")
			return
		}
		pages.Add(1)
	}))
	_, err := client(t, dns, "private-site.test", nil).Get(context.Background(), at("/about"))
	wantReason(t, err, fetch.ReasonRobots)
	if fetch.IsTransient(err) {
		t.Error("a robots disallow is not transient")
	}
	if pages.Load() != 0 {
		t.Fatalf("a disallowed page was requested %d times", pages.Load())
	}
}

func TestRobotsRulesForCrmqAreMatchedByItsProductToken(t *testing.T) {
	dns := fetchtest.NewDNS(t)
	at := site(t, dns, "picky.test", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/robots.txt" {
			fmt.Fprint(w, "User-agent: *\nAllow: /\n\nUser-agent: CrmqBot\nDisallow: /private\n")
			return
		}
		fmt.Fprint(w, "ok")
	}))
	c := client(t, dns, "picky.test", nil)
	if _, err := c.Get(context.Background(), at("/public")); err != nil {
		t.Fatal(err)
	}
	_, err := c.Get(context.Background(), at("/private/x"))
	wantReason(t, err, fetch.ReasonRobots)
}

func TestRobotsTxtAnswering429IsAServerErrorNotAllowAll(t *testing.T) {
	dns := fetchtest.NewDNS(t)
	var pages atomic.Int32
	at := site(t, dns, "busy.test", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/robots.txt" {
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		pages.Add(1)
	}))
	_, err := client(t, dns, "busy.test", nil).Get(context.Background(), at("/"))
	wantReason(t, err, fetch.ReasonUnreachable)
	if !fetch.IsTransient(err) {
		t.Error("a 429 robots.txt should be tried again later")
	}
	if pages.Load() != 0 {
		t.Fatal("the page was fetched although robots.txt could not be read")
	}
}

func TestRequestsToOneHostTakeTurnsAndAreSpaced(t *testing.T) {
	dns := fetchtest.NewDNS(t)
	var inflight, peak atomic.Int32
	var mu sync.Mutex
	var starts []time.Time
	at := site(t, dns, "polite.test", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		if n > peak.Load() {
			peak.Store(n)
		}
		mu.Lock()
		starts = append(starts, time.Now())
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		if r.URL.Path == "/robots.txt" {
			http.NotFound(w, r)
		}
	}))
	const delay = 80 * time.Millisecond
	c := client(t, dns, "polite.test", func(c *fetch.Config) { c.HostDelay = delay })
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			if _, err := c.Get(context.Background(), at(fmt.Sprintf("/p%d", i))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if peak.Load() != 1 {
		t.Fatalf("%d requests to one host ran at once", peak.Load())
	}
	for i := 1; i < len(starts); i++ {
		// A request starts at least the delay after the previous one
		// ended, which was 20 ms after it started.
		if gap := starts[i].Sub(starts[i-1]); gap < delay {
			t.Fatalf("request %d began %v after the previous one, want >= %v", i, gap, delay)
		}
	}
	if len(starts) != 5 { // robots.txt once, then 4 pages
		t.Fatalf("%d requests, want 5", len(starts))
	}
}

func TestTransientConnectionFailuresAreTriedAgain(t *testing.T) {
	dns := fetchtest.NewDNS(t)
	var calls atomic.Int32
	at := site(t, dns, "flaky.test", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/robots.txt" {
			http.NotFound(w, r)
			return
		}
		if calls.Add(1) == 1 { // drop the connection without an answer
			hj, _ := w.(http.Hijacker)
			c, _, _ := hj.Hijack()
			c.Close()
			return
		}
		fmt.Fprint(w, "second time lucky")
	}))
	c := client(t, dns, "flaky.test", func(c *fetch.Config) { c.Retries, c.Backoff = 2, 10*time.Millisecond })
	p, err := c.Get(context.Background(), at("/"))
	if err != nil || string(p.Body) != "second time lucky" {
		t.Fatalf("%v %+v", err, p)
	}
	if calls.Load() != 2 {
		t.Fatalf("%d calls", calls.Load())
	}
}

func TestAllowListEntriesAreHostsAddressesOrCIDRs(t *testing.T) {
	for _, bad := range []string{"http://x.test", "10.0.0.0/99", "a b"} {
		if _, err := fetch.ParseAllow(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	a, err := fetch.ParseAllow(" Site.Test , 127.0.0.1, 10.0.0.0/8 ,")
	if err != nil || a.Empty() {
		t.Fatal(err)
	}
	dns := fetchtest.NewDNS(t)
	at := site(t, dns, "cidr.test", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "in") }))
	if _, err := client(t, dns, "127.0.0.0/8", nil).Get(context.Background(), at("/")); err != nil {
		t.Fatalf("a CIDR entry did not let its address through: %v", err)
	}
	_ = url.URL{}
	_ = errors.New
	_ = io.EOF
}

// A name that answers an allowed address for the first connection and a
// private one for the next (DNS rebinding) is refused on the second: the
// address is checked at every dial, not once before fetching.
func TestANameThatRebindsToAPrivateAddressIsRefusedAtTheNextDial(t *testing.T) {
	dns := fetchtest.NewDNS(t, "rebind.test. 0 IN A 127.0.0.2")
	var pages atomic.Int32
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("127.0.0.2 not available: %v", err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close") // the page needs a new connection, so a new lookup
		if r.URL.Path == "/robots.txt" {
			dns.Replace(t, "rebind.test.", "rebind.test. 0 IN A 10.0.0.1")
			http.NotFound(w, r)
			return
		}
		pages.Add(1)
	}))
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	_, err = client(t, dns, "127.0.0.2/32", nil).Get(context.Background(), fmt.Sprintf("http://rebind.test:%d/", ln.Addr().(*net.TCPAddr).Port))
	wantReason(t, err, fetch.ReasonRefused)
	if !strings.Contains(err.Error(), "10.0.0.1") || pages.Load() != 0 {
		t.Fatalf("err %v, pages %d", err, pages.Load())
	}
}

// A name that does not exist (NXDOMAIN) fails at once and is not tried
// again: the record's reason is unreachable, without a retry's back-off.
func TestANameThatDoesNotExistIsNotTriedAgain(t *testing.T) {
	dns := fetchtest.NewDNS(t)
	_, err := client(t, dns, "nowhere.test", nil).Get(context.Background(), "http://nowhere.test/")
	wantReason(t, err, fetch.ReasonUnreachable)
	if fetch.IsTransient(err) {
		t.Fatalf("a name that does not exist counted as transient: %v", err)
	}
}
