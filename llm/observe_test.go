package llm

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

type scripted struct {
	resp Response
	err  error
}

func (s scripted) Name() string { return "scripted" }
func (s scripted) Generate(context.Context, Request) (Response, error) {
	return s.resp, s.err
}

func TestObservedReportsEveryCall(t *testing.T) {
	cases := []struct {
		inner Provider
		want  Call
	}{
		{scripted{resp: Response{Model: "m-2", Usage: Usage{PromptTokens: 10, OutputTokens: 3, TotalTokens: 13}}},
			Call{Provider: "scripted", Model: "m-2", Outcome: "ok", Usage: Usage{PromptTokens: 10, OutputTokens: 3, TotalTokens: 13}}},
		{scripted{err: fmt.Errorf("call: %w", &RateLimitError{Delay: time.Second, Scope: "org"})},
			Call{Provider: "scripted", Model: "configured", Outcome: "rate_limited"}},
		{scripted{err: fmt.Errorf("call: %w", permanent("bad request"))},
			Call{Provider: "scripted", Model: "configured", Outcome: "permanent"}},
		{scripted{err: context.DeadlineExceeded}, Call{Provider: "scripted", Model: "configured", Outcome: "cancelled"}},
		{scripted{err: errors.New("connection reset")}, Call{Provider: "scripted", Model: "configured", Outcome: "error"}},
	}
	for _, c := range cases {
		var got []Call
		p := Observed(c.inner, "configured", func(call Call) { got = append(got, call) })
		_, _ = p.Generate(context.Background(), Request{})
		if len(got) != 1 {
			t.Fatalf("%d calls observed, want 1", len(got))
		}
		got[0].Duration = 0
		if got[0] != c.want {
			t.Errorf("observed %+v, want %+v", got[0], c.want)
		}
	}
	if _, wrapped := Observed(scripted{}, "m", nil).(*observed); wrapped {
		t.Error("a nil observer should leave the provider as it is")
	}
}
