package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of the fetch limits the issue sets.
const (
	DefaultTimeout      = 10 * time.Second
	DefaultMaxBytes     = 2 << 20
	DefaultMaxRedirects = 5
	DefaultHostDelay    = time.Second
	DefaultMaxInflight  = 16
	// Agent is the product token robots.txt groups are matched against
	// (the robots parser matches a lowercased prefix of it, so the token
	// alone, not the whole User-Agent).
	Agent            = "CrmqBot"
	DefaultUserAgent = "CrmqBot/1.0 (+account enrichment; honours robots.txt)"
)

// Config sets the client's limits. Zero values take the defaults.
type Config struct {
	Allow        Allow
	Resolver     *net.Resolver // nil: the system resolver
	UserAgent    string
	Timeout      time.Duration // per request, body included
	MaxBytes     int64         // per response body; the rest is not read
	MaxRedirects int
	HostDelay    time.Duration // between two requests to one host
	MaxInflight  int           // requests in flight across all hosts
	Retries      int           // more tries of a transient network failure
	Backoff      time.Duration // before the first retry; doubled each time
	// Robots shares robots.txt files between processes (RedisRobots);
	// nil keeps them in this process only.
	Robots RobotsCache
}

// Client fetches pages of untrusted sites. It is safe for concurrent use;
// one client per process shares the politeness state and the global cap.
type Client struct {
	cfg      Config
	http     *http.Client
	resolver *net.Resolver
	inflight chan struct{}

	mu     sync.Mutex
	hosts  map[string]*hostSlot
	robots map[string]*robotsEntry

	robotsShared atomic.Int64
}

// Page is one fetched response.
type Page struct {
	URL       *url.URL // after redirects
	Status    int
	Header    http.Header
	Body      []byte
	Truncated bool // the body was longer than MaxBytes and was cut there
}

// New builds a client.
func New(cfg Config) *Client {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.MaxRedirects <= 0 {
		cfg.MaxRedirects = DefaultMaxRedirects
	}
	if cfg.HostDelay < 0 {
		cfg.HostDelay = 0
	}
	if cfg.MaxInflight <= 0 {
		cfg.MaxInflight = DefaultMaxInflight
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = DefaultUserAgent
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 200 * time.Millisecond
	}
	c := &Client{cfg: cfg, resolver: cfg.Resolver, inflight: make(chan struct{}, cfg.MaxInflight),
		hosts: map[string]*hostSlot{}, robots: map[string]*robotsEntry{}}
	if c.resolver == nil {
		c.resolver = net.DefaultResolver
	}
	tr := &http.Transport{
		Proxy:                  nil, // never an environment proxy: it would dial for us, unchecked
		DialContext:            c.dial,
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    cfg.Timeout,
		ResponseHeaderTimeout:  cfg.Timeout,
		MaxResponseHeaderBytes: 64 << 10,
		MaxIdleConns:           64,
		IdleConnTimeout:        30 * time.Second,
	}
	c.http = &http.Client{
		Transport: tr,
		// Redirects are followed by Get itself, one hop at a time, so each
		// hop is checked against robots.txt and waits its host's turn.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c
}

// dial resolves the name itself and connects only to an address it has
// checked: what was checked is what is dialled, so a name that answers a
// public address first and a private one next (DNS rebinding) cannot slip
// through, and neither can a redirect to a private address.
func (c *Client) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("port %q: %w", portStr, err)
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else {
		ips, err = c.resolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", host, err)
		}
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("resolve %s: no address", host)
	}
	// Every address must pass: a name that also points inside is refused.
	for _, ip := range ips {
		if !c.cfg.Allow.permits(host, ip) {
			if host == ip.String() || host == ip.Unmap().String() {
				return nil, &Error{Reason: ReasonRefused, Err: fmt.Errorf("%s is not a public address", ip.Unmap())}
			}
			return nil, &Error{Reason: ReasonRefused, Err: fmt.Errorf("%s resolves to %s, which is not a public address", host, ip.Unmap())}
		}
	}
	d := net.Dialer{Timeout: c.cfg.Timeout}
	var last error
	for _, ip := range ips {
		conn, err := d.DialContext(ctx, network, netip.AddrPortFrom(ip.Unmap(), uint16(port)).String())
		if err == nil {
			return conn, nil
		}
		last = err
	}
	return nil, last
}

// Get fetches rawURL, following at most MaxRedirects redirects. Every hop
// must be http or https, allowed by its host's robots.txt and waits for
// its host's turn.
func (c *Client) Get(ctx context.Context, rawURL string) (*Page, error) {
	u, err := checkURL(rawURL)
	if err != nil {
		return nil, err
	}
	for hop := 0; ; hop++ {
		if err := c.robotsAllow(ctx, u); err != nil {
			return nil, err
		}
		p, next, err := c.getRetrying(ctx, u)
		if err != nil || next == nil {
			return p, err
		}
		if hop == c.cfg.MaxRedirects {
			return nil, &Error{Reason: ReasonUnreachable, URL: u.String(), Err: fmt.Errorf("more than %d redirects", c.cfg.MaxRedirects)}
		}
		if u, err = checkURL(next.String()); err != nil {
			return nil, err
		}
	}
}

// checkURL accepts http and https URLs with a host.
func checkURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, &Error{Reason: ReasonRefused, URL: raw, Err: err}
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, &Error{Reason: ReasonRefused, URL: raw, Err: errors.New("only http and https are fetched")}
	}
	if u.Hostname() == "" {
		return nil, &Error{Reason: ReasonRefused, URL: raw, Err: errors.New("no host")}
	}
	u.Fragment = ""
	return u, nil
}

// getRetrying is one hop, tried again after a transient network failure.
func (c *Client) getRetrying(ctx context.Context, u *url.URL) (*Page, *url.URL, error) {
	wait := c.cfg.Backoff
	for try := 0; ; try++ {
		p, next, err := c.getOnce(ctx, u)
		if err == nil || try >= c.cfg.Retries || ReasonOf(err) != ReasonUnreachable || !IsTransient(err) {
			return p, next, err
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// getOnce sends one request in its host's turn and reads at most MaxBytes
// of the body. A redirect answers the next URL instead of a page.
func (c *Client) getOnce(ctx context.Context, u *url.URL) (*Page, *url.URL, error) {
	release, err := c.turn(ctx, u.Host)
	if err != nil {
		return nil, nil, err
	}
	defer release()
	rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, nil, &Error{Reason: ReasonRefused, URL: u.String(), Err: err}
	}
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	req.Header.Set("Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, classify(ctx, u.String(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 && resp.Header.Get("Location") != "" {
		next, err := u.Parse(resp.Header.Get("Location"))
		if err != nil {
			return nil, nil, &Error{Reason: ReasonUnreachable, URL: u.String(), Err: fmt.Errorf("bad redirect: %w", err)}
		}
		return nil, next, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxBytes+1))
	if err != nil {
		return nil, nil, classify(ctx, u.String(), err)
	}
	p := &Page{URL: u, Status: resp.StatusCode, Header: resp.Header}
	if int64(len(body)) > c.cfg.MaxBytes {
		body, p.Truncated = body[:c.cfg.MaxBytes], true
	}
	p.Body = body
	return p, nil, nil
}
