package storetest

import (
	"context"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"

	"github.com/crmq/crmq/store"
)

// Cut is a loopback TCP relay in front of the test's real Postgres that a
// test can sever: Down closes every relayed connection and refuses new
// ones (clients see "connection refused", as when Postgres stops); Up
// listens again on the same port. Everything else is the real server.
type Cut struct {
	t      testing.TB
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
}

// NewCutDB returns a fresh database (as NewDB) reached through a Cut, and
// the handle to sever it. Use the first handle for what must keep working
// while Postgres is "down" (the test's own checks), the second for the
// code under test.
func NewCutDB(t testing.TB, maxConns int) (*store.DB, *store.DB, *Cut) {
	t.Helper()
	direct, dbURL := NewDB(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	c := &Cut{t: t, target: u.Host, conns: map[net.Conn]struct{}{}}
	c.listen("127.0.0.1:0")
	t.Cleanup(c.Down)
	u.Host = c.addr
	cut, err := store.Open(context.Background(), u.String(), maxConns)
	if err != nil {
		t.Fatalf("open through the relay: %v", err)
	}
	t.Cleanup(func() { cut.Close() })
	return direct, cut, c
}

func (c *Cut) listen(addr string) {
	c.t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		c.t.Fatalf("relay listen: %v", err)
	}
	c.mu.Lock()
	c.ln, c.addr = ln, ln.Addr().String()
	c.mu.Unlock()
	go c.accept(ln)
}

func (c *Cut) accept(ln net.Listener) {
	for {
		in, err := ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", c.target)
		if err != nil {
			in.Close()
			continue
		}
		c.mu.Lock()
		if c.ln != ln { // cut meanwhile
			c.mu.Unlock()
			in.Close()
			out.Close()
			return
		}
		c.conns[in], c.conns[out] = struct{}{}, struct{}{}
		c.mu.Unlock()
		go c.pipe(in, out)
		go c.pipe(out, in)
	}
}

func (c *Cut) pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	c.mu.Lock()
	delete(c.conns, dst)
	delete(c.conns, src)
	c.mu.Unlock()
}

// Down severs every connection and refuses new ones until Up.
func (c *Cut) Down() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ln != nil {
		c.ln.Close()
		c.ln = nil
	}
	for conn := range c.conns {
		conn.Close()
		delete(c.conns, conn)
	}
}

// Up accepts connections again, on the same address.
func (c *Cut) Up() {
	c.t.Helper()
	c.mu.Lock()
	up := c.ln != nil
	c.mu.Unlock()
	if !up {
		c.listen(c.addr)
	}
}
