package summary_test

import (
	"context"
	"testing"

	"github.com/crmq/crmq/llm/offline"
	"github.com/crmq/crmq/workers/summary"
)

// BenchmarkOfflineSummary runs over an account with 50,000 activities (the
// graph holds store.ActivityCap of them) and 329 associated records, at
// the default budget: building the prompt, composing the offline answer,
// and the whole of Generate with validation.
func BenchmarkOfflineSummary(b *testing.B) {
	g := bigAccountGraph(50000)
	asked, _ := summary.Sections("accounts", nil)
	ctx := context.Background()
	p := offline.New()

	b.Run("prompt", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := summary.BuildPrompt(g, "accounts", asked, 0, today); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("offline", func(b *testing.B) {
		req, _, err := summary.BuildPrompt(g, "accounts", asked, 0, today)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.Generate(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("generate", func(b *testing.B) {
		graphs := &fakeGraphs{g: g}
		in := input("accounts", "acc-1", nil)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := summary.Generate(ctx, graphs, p, in); err != nil {
				b.Fatal(err)
			}
		}
	})
}
