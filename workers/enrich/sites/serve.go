package sites

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Demo are the sites `make run` serves, one per port from a base port, in
// this order.
var Demo = []string{"northwind", "bluefern", "pressly", "closed"}

// DemoURL is the home page of Demo[i] served from host:basePort+i.
func DemoURL(host string, basePort, i int) string {
	return "http://" + net.JoinHostPort(host, strconv.Itoa(basePort+i)) + "/"
}

// Serve serves the Demo sites on host, ports basePort onwards, until ctx
// ends. It answers once every listener is open (nil error) or failed.
func Serve(ctx context.Context, host string, basePort int) (<-chan error, error) {
	var servers []*http.Server
	done := make(chan error, len(Demo))
	for i, name := range Demo {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(basePort+i)))
		if err != nil {
			for _, s := range servers {
				_ = s.Close()
			}
			return nil, fmt.Errorf("demo site %s: %w", name, err)
		}
		srv := &http.Server{Handler: Handler(name), ReadHeaderTimeout: 5 * time.Second}
		servers = append(servers, srv)
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				done <- fmt.Errorf("demo site %s: %w", name, err)
			}
		}()
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		for _, s := range servers {
			_ = s.Shutdown(sctx)
		}
		close(done)
	}()
	return done, nil
}
