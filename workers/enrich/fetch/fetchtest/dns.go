// Package fetchtest serves what enrichment tests fetch from: a local DNS
// server with a zone the test writes, and a resolver pointed at it.
package fetchtest

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// DNS is a local authoritative DNS server for test zones.
type DNS struct {
	addr string
	mu   sync.Mutex
	zone map[string][]dns.RR
}

// NewDNS starts a DNS server on loopback (UDP and TCP on one port) that
// answers from records such as "acme.test. 300 IN A 127.0.0.1" or
// "acme.test. 300 IN MX 10 aspmx.l.google.com.". Names it does not hold
// are NXDOMAIN.
func NewDNS(t testing.TB, records ...string) *DNS {
	t.Helper()
	d := &DNS{zone: map[string][]dns.RR{}}
	d.Add(t, records...)
	// UDP and TCP share one port; the port the UDP socket was given may be
	// taken for TCP, so try a few.
	var pc net.PacketConn
	var ln net.Listener
	var err error
	for range 50 {
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	d.addr = pc.LocalAddr().String()
	h := dns.HandlerFunc(d.serve)
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go func() { _ = s.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = s.Shutdown() })
	}
	return d
}

// Add puts records into the zone.
func (d *DNS) Add(t testing.TB, records ...string) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range records {
		rr, err := dns.NewRR(r)
		if err != nil {
			t.Fatalf("record %q: %v", r, err)
		}
		name := dns.CanonicalName(rr.Header().Name)
		d.zone[name] = append(d.zone[name], rr)
	}
}

// Replace drops name's records and puts records in their place: a name
// that answers one address now and another later (DNS rebinding).
func (d *DNS) Replace(t testing.TB, name string, records ...string) {
	t.Helper()
	d.mu.Lock()
	delete(d.zone, dns.CanonicalName(name))
	d.mu.Unlock()
	d.Add(t, records...)
}

func (d *DNS) serve(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	// Authoritative, or an empty NOERROR answer reads as a lame referral.
	m.Authoritative = true
	q := r.Question[0]
	d.mu.Lock()
	rrs, ok := d.zone[dns.CanonicalName(q.Name)]
	d.mu.Unlock()
	if !ok {
		m.SetRcode(r, dns.RcodeNameError)
	}
	for _, rr := range rrs {
		if rr.Header().Rrtype == q.Qtype {
			m.Answer = append(m.Answer, rr)
		}
	}
	_ = w.WriteMsg(m)
}

// Resolver is a resolver that asks this server only.
func (d *DNS) Resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, d.addr)
	}}
}

// FQDN adds the trailing dot, so no search domain is tried.
func FQDN(name string) string {
	if strings.HasSuffix(name, ".") {
		return name
	}
	return name + "."
}
