package fetch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/temoto/robotstxt"
)

// hostSlot serialises requests to one host and spaces them.
type hostSlot struct {
	busy  chan struct{} // holds one token while a request to the host runs
	last  time.Time     // when the last request to the host ended
	delay time.Duration // the host's crawl delay, when robots.txt sets a longer one
}

// maxCrawlDelay caps a robots.txt Crawl-delay: a site asking for more is
// still fetched, at this pace.
const maxCrawlDelay = 5 * time.Second

// turn waits until no other request to host runs and the host's delay has
// passed since the last one, then for a global slot. release ends the turn.
func (c *Client) turn(ctx context.Context, host string) (release func(), err error) {
	host = strings.ToLower(host)
	c.mu.Lock()
	s := c.hosts[host]
	if s == nil {
		if len(c.hosts) > 4096 {
			c.pruneHosts()
		}
		s = &hostSlot{busy: make(chan struct{}, 1)}
		c.hosts[host] = s
	}
	c.mu.Unlock()
	select {
	case s.busy <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	c.mu.Lock()
	wait := time.Until(s.last.Add(max(c.cfg.HostDelay, s.delay)))
	c.mu.Unlock()
	if wait > 0 && !s.last.IsZero() {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			<-s.busy
			return nil, ctx.Err()
		}
	}
	select {
	case c.inflight <- struct{}{}:
	case <-ctx.Done():
		<-s.busy
		return nil, ctx.Err()
	}
	return func() {
		<-c.inflight
		c.mu.Lock()
		s.last = time.Now()
		c.mu.Unlock()
		<-s.busy
	}, nil
}

// pruneHosts forgets hosts idle for longer than any delay; c.mu is held.
func (c *Client) pruneHosts() {
	for h, s := range c.hosts {
		if len(s.busy) == 0 && time.Since(s.last) > maxCrawlDelay+c.cfg.HostDelay {
			delete(c.hosts, h)
		}
	}
	for o, r := range c.robots {
		if r.mu.TryLock() { // one being read is kept
			if time.Since(r.fetched) > robotsTTL {
				delete(c.robots, o)
			}
			r.mu.Unlock()
		}
	}
}

// robotsEntry is a host's robots.txt as last read; mu makes concurrent
// first requests to a host read it once.
type robotsEntry struct {
	mu      sync.Mutex
	group   *robotstxt.Group
	fetched time.Time
}

const (
	// robotsTTL: RFC 9309 2.4 asks not to cache longer than a day.
	robotsTTL = 24 * time.Hour
	// robotsMaxBytes: the RFC asks to parse at least 500 KiB; the parser
	// would otherwise read any size.
	robotsMaxBytes = 512 << 10
)

// robotsAllow fails with ReasonRobots when u's robots.txt forbids it to crmq.
// The file is read once per origin and day: from this process's memory,
// else from the shared cache (Config.Robots), else from the site, and then
// kept in both.
func (c *Client) robotsAllow(ctx context.Context, u *url.URL) error {
	origin := u.Scheme + "://" + strings.ToLower(u.Host)
	c.mu.Lock()
	e := c.robots[origin]
	if e == nil {
		e = &robotsEntry{}
		c.robots[origin] = e
	}
	c.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.group == nil || time.Since(e.fetched) > robotsTTL {
		f, err := c.robotsFile(ctx, origin)
		if err != nil {
			return err // not kept: the next request asks again
		}
		data, err := robotstxt.FromStatusAndBytes(f.Status, f.Body)
		if err != nil {
			return &Error{Reason: ReasonUnreachable, URL: origin + "/robots.txt", Err: fmt.Errorf("robots.txt: %w", err)}
		}
		g := data.FindGroup(Agent)
		e.group, e.fetched = g, f.Fetched
		if g.CrawlDelay > 0 {
			c.mu.Lock()
			if s := c.hosts[strings.ToLower(u.Host)]; s != nil {
				s.delay = min(g.CrawlDelay, maxCrawlDelay)
			}
			c.mu.Unlock()
		}
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	if u.RawQuery != "" {
		path += "?" + u.RawQuery
	}
	if !e.group.Test(path) {
		return &Error{Reason: ReasonRobots, URL: u.String(), Err: fmt.Errorf("robots.txt of %s disallows %s for %s", u.Host, path, Agent)}
	}
	return nil
}

// robotsFile is origin's robots.txt from the shared cache, or read from
// the site and put there. The cache is a saving, not a rule: when it does
// not answer, the site is asked.
func (c *Client) robotsFile(ctx context.Context, origin string) (RobotsFile, error) {
	if c.cfg.Robots != nil {
		f, ok, err := c.cfg.Robots.Get(ctx, origin)
		if err == nil && ok && time.Since(f.Fetched) <= robotsTTL {
			c.robotsShared.Add(1)
			return f, nil
		}
	}
	f, err := c.readRobots(ctx, origin)
	if err != nil {
		return RobotsFile{}, err
	}
	if c.cfg.Robots != nil {
		_ = c.cfg.Robots.Put(context.WithoutCancel(ctx), origin, f, robotsTTL)
	}
	return f, nil
}

// RobotsFromCache counts the robots.txt files this client took from the
// shared cache instead of the site.
func (c *Client) RobotsFromCache() int64 { return c.robotsShared.Load() }

// readRobots fetches origin's robots.txt. 4xx means no rules
// (RFC 9309 2.3.1.3); 5xx and 429 mean the site is unreachable for now
// and must not be crawled (2.3.1.4; a 429 is a server asking to back off,
// although the parser would read it as "allow all"). At most
// robotsMaxBytes of the body are kept.
func (c *Client) readRobots(ctx context.Context, origin string) (RobotsFile, error) {
	u, _ := url.Parse(origin + "/robots.txt")
	var resp *Page
	for hop := 0; ; hop++ {
		p, next, err := c.getRetrying(ctx, u)
		if err != nil {
			return RobotsFile{}, err
		}
		if next == nil {
			resp = p
			break
		}
		if hop == c.cfg.MaxRedirects {
			return RobotsFile{}, &Error{Reason: ReasonUnreachable, URL: u.String(), Err: errors.New("robots.txt: too many redirects")}
		}
		if u, err = checkURL(next.String()); err != nil {
			return RobotsFile{}, err
		}
	}
	if resp.Status == http.StatusTooManyRequests || resp.Status >= 500 {
		return RobotsFile{}, &Error{Reason: ReasonUnreachable, URL: u.String(), Transient: true,
			Err: fmt.Errorf("robots.txt answered %d: the site is not crawled until it answers", resp.Status)}
	}
	body := resp.Body
	if len(body) > robotsMaxBytes {
		body = body[:robotsMaxBytes]
	}
	if _, err := robotstxt.FromStatusAndBytes(resp.Status, body); err != nil {
		return RobotsFile{}, &Error{Reason: ReasonUnreachable, URL: u.String(), Err: fmt.Errorf("robots.txt: %w", err)}
	}
	if resp.Status >= 400 {
		body = nil // no rules: the parser allows all for any 4xx
	}
	return RobotsFile{Status: resp.Status, Body: body, Fetched: time.Now()}, nil
}
