package fetch

import (
	"context"
	"errors"
	"net"
)

// Reason names why a fetch failed, in the words a bulk result reports.
type Reason string

// The reasons a fetch fails with.
const (
	ReasonRefused     Reason = "refused_address"   // a non-public address, or not http(s)
	ReasonRobots      Reason = "robots_disallowed" // robots.txt forbids the page for crmq
	ReasonTimeout     Reason = "timeout"           // no complete answer within the time allowed
	ReasonUnreachable Reason = "unreachable"       // DNS, connection or server failure
)

// Error is a failed fetch with its reason.
type Error struct {
	Reason Reason
	URL    string
	Err    error
	// Transient errors may succeed later (a connection reset, a 503 for
	// robots.txt); refused addresses and robots disallows never will.
	Transient bool
}

func (e *Error) Error() string {
	msg := string(e.Reason) + ": " + e.URL
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// ReasonOf is the reason of a fetch error, or "" when err is not one.
func ReasonOf(err error) Reason {
	var fe *Error
	if errors.As(err, &fe) {
		return fe.Reason
	}
	return ""
}

// IsTransient tells whether err is a fetch failure that may pass if tried
// again later.
func IsTransient(err error) bool {
	var fe *Error
	return errors.As(err, &fe) && fe.Transient
}

// classify turns a transport error into an *Error, keeping one the dialer
// already made.
func classify(ctx context.Context, url string, err error) error {
	var fe *Error
	if errors.As(err, &fe) {
		if fe.URL == "" {
			fe.URL = url
		}
		return fe
	}
	if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return ctx.Err() // the caller gave up: not the site's failure
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		// The name does not exist: asking again in a minute will not
		// change that, so the record fails now instead of after its
		// retries' back-off.
		return &Error{Reason: ReasonUnreachable, URL: url, Err: err}
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return &Error{Reason: ReasonTimeout, URL: url, Err: err, Transient: true}
	}
	return &Error{Reason: ReasonUnreachable, URL: url, Err: err, Transient: true}
}
