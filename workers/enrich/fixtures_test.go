package enrich_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/crmq/crmq/llm/offline"
	"github.com/crmq/crmq/workers/enrich"
	"github.com/crmq/crmq/workers/enrich/fetch"
	"github.com/crmq/crmq/workers/enrich/fetch/fetchtest"
	"github.com/crmq/crmq/workers/enrich/sites"
)

// fixtures are the fixture sites on loopback, named NAME.test by a local
// DNS server that also holds their MX records.
type fixtures struct {
	dns  *fetchtest.DNS
	urls map[string]string // site name -> home URL
}

func newFixtures(t *testing.T) *fixtures {
	t.Helper()
	f := &fixtures{dns: fetchtest.NewDNS(t,
		"northwind.test. 60 IN MX 1 aspmx.l.google.com.",
		"northwind.test. 60 IN MX 5 alt1.aspmx.l.google.com.",
		"bluefern.test. 60 IN MX 10 mx.zoho.eu.",
		"pressly.test. 60 IN MX 0 pressly-test.mail.protection.outlook.com.",
		"loopback.test. 60 IN A 127.0.0.1",
	), urls: map[string]string{}}
	for _, name := range sites.Names() {
		f.serve(t, name, sites.Handler(name))
	}
	f.serve(t, "huge", sites.Huge())
	f.serve(t, "deep", sites.Deep())
	f.serve(t, "metadata", http.RedirectHandler("http://169.254.169.254/latest/meta-data/", http.StatusFound))
	// A site that accepts connections and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	f.dns.Add(t, "silent.test. 60 IN A 127.0.0.1")
	f.urls["silent"] = fmt.Sprintf("http://silent.test:%d/", ln.Addr().(*net.TCPAddr).Port)
	return f
}

func (f *fixtures) serve(t *testing.T, name string, h http.Handler) {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	f.dns.Add(t, name+".test. 60 IN A 127.0.0.1")
	f.urls[name] = fmt.Sprintf("http://%s.test:%d/", name, srv.Listener.Addr().(*net.TCPAddr).Port)
}

// allow is the allow-list naming every fixture host but loopback.test,
// which stands for a name that resolves to 127.0.0.1 without being allowed.
func (f *fixtures) allow() string {
	return "northwind.test,bluefern.test,pressly.test,closed.test,huge.test,deep.test,metadata.test,silent.test"
}

func (f *fixtures) crawler(t *testing.T) enrich.Crawler {
	t.Helper()
	a, err := fetch.ParseAllow(f.allow())
	if err != nil {
		t.Fatal(err)
	}
	return enrich.Crawler{
		Fetch:    fetch.New(fetch.Config{Allow: a, Resolver: f.dns.Resolver(), Timeout: 500 * time.Millisecond, HostDelay: 5 * time.Millisecond}),
		Resolver: f.dns.Resolver(),
		Provider: offline.New(),
	}
}
