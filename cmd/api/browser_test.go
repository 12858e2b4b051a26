package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/hibiken/asynqmon"
)

// chromiumPath is the headless browser deploy/dev/chromium.sh installs
// (CRMQ_CHROMIUM names another).
func chromiumPath() string {
	for _, p := range []string{os.Getenv("CRMQ_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
	}
	return ""
}

// An operator opens /monitoring in a real browser with the admin key: the
// page loads, its own API calls pass the key check, it lists the three
// queues, and the queue page shows a task the test enqueued. A screenshot
// of each page is kept under .artifacts/ at the repository root.
func TestMonitoringInABrowser(t *testing.T) {
	t.Parallel()
	browser := chromiumPath()
	if browser == "" {
		t.Skip("no chromium here: deploy/dev/chromium.sh installs the Debian package (needs root and apt-get); `make test` runs it first")
	}
	e := newAPI(t)
	mon := asynqmon.New(asynqmon.Options{RootPath: "/monitoring", RedisConnOpt: e.opt, ReadOnly: true})
	t.Cleanup(func() { mon.Close() })
	e.s.monitoring = mon
	e.rebuild(t)
	// No worker runs: the tasks stay pending where the pages can show
	// them, one in each queue (asynq lists a queue once it had a task).
	var job string
	for _, q := range []string{"critical", "low", "default"} {
		r := e.do(t, "POST", "/v1/jobs", e.keyA, `{"type":"system:ping","queue":"`+q+`"}`)
		wantStatus(t, r, 202)
		job = decode[accepted](t, r).JobID
	}

	artifacts, err := filepath.Abs("../../.artifacts")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser),
		chromedp.NoSandbox, // tests run as root in containers
		chromedp.WindowSize(1280, 900),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancel)

	// The key goes with every request the page makes, its API calls too.
	withKey := chromedp.Action[chromedp.Void](func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		if _, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{}); err != nil {
			return chromedp.Void{}, err
		}
		_, err := cdp.Call(ctx, t, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
			Headers: network.Headers{"Authorization": "Bearer " + testAdminKey}})
		return chromedp.Void{}, err
	})
	page := func(path, waitFor string) (text string, shot []byte) {
		t.Helper()
		err := chromedp.Do(ctx, chromedp.Navigate(e.srv.URL+path), chromedp.WaitVisible(waitFor))
		if err == nil {
			text, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		}
		if err == nil {
			shot, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
		}
		if err != nil {
			t.Fatalf("browser on %s waiting for %s: %v (page text: %.500q)", path, waitFor, err, text)
		}
		return text, shot
	}
	if err := chromedp.Do(ctx, withKey); err != nil {
		t.Fatalf("browser: %v", err)
	}
	dashText, dashboard := page("/monitoring/", `//td[normalize-space()="default"] | //a[normalize-space()="default"]`)
	queueText, queuePage := page("/monitoring/queues/default?status=pending", `//*[contains(text(), "`+job[:8]+`")]`)
	for _, q := range []string{"critical", "default", "low"} {
		if !strings.Contains(dashText, q) {
			t.Errorf("dashboard does not show queue %q: %.500q", q, dashText)
		}
	}
	if !strings.Contains(queueText, "system:ping") {
		t.Errorf("queue page does not show the task's type: %.500q", queueText)
	}
	for name, img := range map[string][]byte{"monitoring-dashboard.png": dashboard, "monitoring-queue-default.png": queuePage} {
		if err := os.WriteFile(filepath.Join(artifacts, name), img, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots in %s", artifacts)
}
