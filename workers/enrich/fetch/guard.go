// Package fetch is the one HTTP client that enrichment uses to read
// untrusted websites. It resolves a name itself and dials only an address
// it has checked, so loopback, private, link-local, CGNAT, multicast,
// unspecified and cloud-metadata addresses are refused at dial time: for
// the first request, for every redirect and for a name that rebinds
// between two lookups. It caps redirects, bytes and time, honours
// robots.txt and is polite per host.
package fetch

import (
	"fmt"
	"net/netip"
	"strings"
)

// blocked are the ranges no enrichment request may reach unless the
// allow-list names them.
var blocked = mustPrefixes(
	"0.0.0.0/8",       // "this network", unspecified
	"10.0.0.0/8",      // private
	"100.64.0.0/10",   // CGNAT (also Alibaba's metadata 100.100.100.200)
	"127.0.0.0/8",     // loopback
	"169.254.0.0/16",  // link-local (cloud metadata 169.254.169.254)
	"172.16.0.0/12",   // private
	"192.0.0.0/24",    // IETF protocol assignments
	"192.0.2.0/24",    // documentation
	"192.168.0.0/16",  // private
	"198.18.0.0/15",   // benchmarking
	"198.51.100.0/24", // documentation
	"203.0.113.0/24",  // documentation
	"224.0.0.0/4",     // multicast
	"240.0.0.0/4",     // reserved, broadcast
	"::/128",          // unspecified
	"::1/128",         // loopback
	"64:ff9b::/96",    // NAT64: may translate to any IPv4 address
	"64:ff9b:1::/48",  // local-use NAT64
	"100::/64",        // discard
	"2001::/32",       // Teredo
	"2001:db8::/32",   // documentation
	"2002::/16",       // 6to4: embeds an IPv4 address
	"fc00::/7",        // unique local (AWS metadata fd00:ec2::254)
	"fe80::/10",       // link-local
	"ff00::/8",        // multicast
)

// metadata are cloud instance-metadata addresses: refused even when the
// allow-list would let their range through, so no setting opens them.
var metadata = []netip.Addr{
	netip.MustParseAddr("169.254.169.254"),
	netip.MustParseAddr("169.254.170.2"),
	netip.MustParseAddr("100.100.100.200"),
	netip.MustParseAddr("fd00:ec2::254"),
}

func mustPrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// Allow is the parsed CRMQ_ENRICH_ALLOW_HOSTS: host names and CIDRs whose
// addresses pass although they are not public. The guard stays on
// whatever it holds: every other address is still checked, and metadata
// addresses are never let through.
type Allow struct {
	hosts    map[string]bool
	prefixes []netip.Prefix
}

// ParseAllow reads a comma-separated list of host names, IP addresses and
// CIDRs.
func ParseAllow(s string) (Allow, error) {
	a := Allow{hosts: map[string]bool{}}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.ToLower(strings.TrimSpace(item))
		if item == "" {
			continue
		}
		if p, err := netip.ParsePrefix(item); err == nil {
			a.prefixes = append(a.prefixes, p.Masked())
			continue
		}
		if ip, err := netip.ParseAddr(item); err == nil {
			a.prefixes = append(a.prefixes, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
			continue
		}
		if strings.ContainsAny(item, "/: ") {
			return Allow{}, fmt.Errorf("allow-list entry %q is neither a host name nor an address or CIDR", item)
		}
		a.hosts[strings.TrimSuffix(item, ".")] = true
	}
	return a, nil
}

// Empty tells whether the list names nothing.
func (a Allow) Empty() bool { return len(a.hosts) == 0 && len(a.prefixes) == 0 }

// permits tells whether host's address ip may be dialled.
func (a Allow) permits(host string, ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, m := range metadata {
		if ip == m {
			return false
		}
	}
	if !isBlocked(ip) {
		return true
	}
	if a.hosts[strings.TrimSuffix(strings.ToLower(host), ".")] {
		return true
	}
	for _, p := range a.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// isBlocked tells whether ip is not a public unicast address.
func isBlocked(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.Zone() != "" {
		return true
	}
	for _, p := range blocked {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
