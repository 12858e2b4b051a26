package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func env(kv map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
}

func TestDefaultsAreValid(t *testing.T) {
	c, err := load(env(nil), false)
	if err != nil {
		t.Fatal(err)
	}
	if c.PollInterval != 20*time.Millisecond || c.QueueWeights["critical"] != 6 || c.CronOrphans == "" {
		t.Fatalf("unexpected defaults: %+v", c)
	}
}

func TestBadVariableIsNamed(t *testing.T) {
	cases := map[string]map[string]string{
		"DATABASE_URL":            {"DATABASE_URL": "mysql://x/y"},
		"REDIS_URL":               {"REDIS_URL": "not a url"},
		"CRMQ_WORKER_CONCURRENCY": {"CRMQ_WORKER_CONCURRENCY": "0"},
		"CRMQ_QUEUE_WEIGHTS":      {"CRMQ_QUEUE_WEIGHTS": "critical=6,default=3"},
		"CRMQ_POLL_INTERVAL":      {"CRMQ_POLL_INTERVAL": "fast"},
		"CRMQ_LOG_LEVEL":          {"CRMQ_LOG_LEVEL": "loud"},
		"CRMQ_ADMIN_KEY":          {"CRMQ_ADMIN_KEY": "short"},
		"CRMQ_LLM_PROVIDER":       {"CRMQ_LLM_PROVIDER": "openai"},
		"GEMINI_API_KEY":          {"CRMQ_LLM_PROVIDER": "gemini"},
		"CRMQ_GEMINI_BASE_URL":    {"CRMQ_GEMINI_BASE_URL": "not a url"},
		"REDIS_SENTINELS":         {"REDIS_SENTINELS": "127.0.0.1:26379,sentinel-2"},
	}
	for name, kv := range cases {
		t.Run(name+" is named in the error", func(t *testing.T) {
			_, err := load(env(kv), true)
			if err == nil || !strings.HasPrefix(err.Error(), name+":") {
				t.Fatalf("want error naming %s, got %v", name, err)
			}
		})
	}
}

func TestSentinelsAreListed(t *testing.T) {
	c, err := load(env(map[string]string{"REDIS_SENTINELS": " 10.0.0.1:26379, sentinel-2:26379 ,[::1]:26380"}), false)
	if err != nil || strings.Join(c.RedisSentinels, " ") != "10.0.0.1:26379 sentinel-2:26379 [::1]:26380" || c.RedisSentinelMaster != "crmq" {
		t.Fatalf("got %q master %q, %v", c.RedisSentinels, c.RedisSentinelMaster, err)
	}
}

func TestEmptyCronDisablesEntry(t *testing.T) {
	c, err := load(env(map[string]string{"CRMQ_CRON_ORPHANS": ""}), false)
	if err != nil || c.CronOrphans != "" {
		t.Fatalf("got %q, %v", c.CronOrphans, err)
	}
}

func TestPasswordIsRedacted(t *testing.T) {
	_, err := load(env(map[string]string{"DATABASE_URL": "postgres://u:secret@/x"}), false)
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("want an error without the password, got %v", err)
	}
}

// Every documented variable is read: one listed in Vars but never looked
// up would be a setting an operator changes to no effect.
func TestEveryVariableIsRead(t *testing.T) {
	asked := map[string]bool{}
	_, _ = load(func(k string) (string, bool) { asked[k] = true; return "", false }, false)
	for _, v := range Vars {
		if !asked[v.Name] {
			t.Errorf("%s is documented but never read", v.Name)
		}
	}
	c, err := load(env(map[string]string{"CRMQ_KEY_CACHE_TTL": "3s"}), false)
	if err != nil || c.KeyCacheTTL != 3*time.Second {
		t.Fatalf("CRMQ_KEY_CACHE_TTL=3s gives %s (%v)", c.KeyCacheTTL, err)
	}
}

// CRMQ_ORG_CONCURRENCY: percentages by default (of the fleet's slots, and
// of this worker's until the fleet is known), numbers, a queue left out
// uncapped, off.
func TestOrgConcurrency(t *testing.T) {
	for _, c := range []struct {
		env    map[string]string
		want   map[string]int
		shares map[string]float64
	}{
		{nil, map[string]int{"critical": 32, "default": 16, "low": 8}, map[string]float64{"critical": 0.8, "default": 0.4, "low": 0.2}},
		{map[string]string{"CRMQ_WORKER_CONCURRENCY": "3"}, map[string]int{"critical": 2, "default": 1, "low": 1}, map[string]float64{"critical": 0.8, "default": 0.4, "low": 0.2}},
		{map[string]string{"CRMQ_ORG_CONCURRENCY": "critical=8,default=4,low=2"}, map[string]int{"critical": 8, "default": 4, "low": 2}, map[string]float64{}},
		{map[string]string{"CRMQ_ORG_CONCURRENCY": "default=50%, low=0"}, map[string]int{"default": 20, "low": 0}, map[string]float64{"default": 0.5}},
		{map[string]string{"CRMQ_ORG_CONCURRENCY": "off"}, map[string]int{}, map[string]float64{}},
		{map[string]string{"CRMQ_ORG_CONCURRENCY": "0"}, map[string]int{}, map[string]float64{}},
	} {
		got, err := load(env(c.env), false)
		if err != nil {
			t.Fatalf("%v: %v", c.env, err)
		}
		if fmt.Sprint(got.OrgConcurrency) != fmt.Sprint(c.want) || fmt.Sprint(got.OrgShares) != fmt.Sprint(c.shares) {
			t.Errorf("%v: %v %v, want %v %v", c.env, got.OrgConcurrency, got.OrgShares, c.want, c.shares)
		}
	}
	for _, bad := range []string{"critical=8,urgent=2", "default=-1", "default=120%", "default", "default=4,default=5"} {
		if _, err := load(env(map[string]string{"CRMQ_ORG_CONCURRENCY": bad}), false); err == nil || !strings.Contains(err.Error(), "CRMQ_ORG_CONCURRENCY") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
