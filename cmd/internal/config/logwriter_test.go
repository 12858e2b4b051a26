package config

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the LogWriter's timer goroutine
// and the test to share, counting the writes it received.
type syncBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	return s.b.Write(p)
}

func (s *syncBuffer) read() (string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String(), s.writes
}

func flushConfig(t *testing.T, d time.Duration) Config {
	t.Helper()
	c, err := load(env(map[string]string{"CRMQ_LOG_FLUSH": d.String()}), false)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestLogRecordsWaitForTheFlushButWarningsDoNot(t *testing.T) {
	var out syncBuffer
	log, flush := flushConfig(t, 10*time.Second).loggerTo(&out)
	log = log.With("process", "api")
	log.Info("first")
	log.Debug("below the level")
	log.Info("second")
	if s, _ := out.read(); s != "" {
		t.Fatalf("info records were written before the flush: %q", s)
	}
	log.Warn("a warning")
	s, writes := out.read()
	if writes != 1 || strings.Count(s, "\n") != 3 || !strings.Contains(s, `"msg":"first"`) ||
		!strings.Contains(s, `"msg":"a warning"`) || strings.Contains(s, "below the level") {
		t.Fatalf("a warning should write it and the records before it in one write, got %d writes: %q", writes, s)
	}
	log.Info("third")
	flush()
	if s, writes := out.read(); writes != 2 || !strings.HasSuffix(s, "\"msg\":\"third\",\"process\":\"api\"}\n") {
		t.Fatalf("flush should write the held record, got %d writes: %q", writes, s)
	}
	flush()
	if _, writes := out.read(); writes != 2 {
		t.Fatal("a flush with nothing held wrote")
	}
}

func TestLogRecordsAreWrittenWithinTheDelay(t *testing.T) {
	var out syncBuffer
	log, _ := flushConfig(t, 20*time.Millisecond).loggerTo(&out)
	for i := range 3 {
		log.Info("record", "i", i)
		deadline := time.Now().Add(10 * time.Second)
		for {
			s, _ := out.read()
			if strings.Count(s, "\n") == i+1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("record %d not written by the timer: %q", i, s)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func TestLogWriterWritesWhenFull(t *testing.T) {
	var out syncBuffer
	w := NewLogWriter(&out, time.Hour, 100)
	line := []byte(strings.Repeat("x", 39) + "\n")
	for range 2 {
		if _, err := w.Write(line); err != nil {
			t.Fatal(err)
		}
	}
	if _, writes := out.read(); writes != 0 {
		t.Fatalf("80 bytes of 100 written early (%d writes)", writes)
	}
	_, _ = w.Write(line) // 120 > 100: the first two go first
	if s, writes := out.read(); writes != 1 || len(s) != 80 {
		t.Fatalf("want the 80 held bytes in one write, got %d writes of %d bytes", writes, len(s))
	}
	big := []byte(strings.Repeat("y", 150) + "\n")
	_, _ = w.Write(big) // larger than the buffer: what is held, then it
	if s, writes := out.read(); writes != 3 || len(s) != 80+40+151 || !strings.HasSuffix(s, string(big)) {
		t.Fatalf("a record larger than the buffer should follow the held one at once, got %d writes: %q", writes, s)
	}
}

func TestLogFlushZeroWritesEveryRecord(t *testing.T) {
	var out syncBuffer
	c := flushConfig(t, 0)
	c.LogFormat = "text"
	log, flush := c.loggerTo(&out)
	log.Info("first")
	log.Info("second")
	flush()
	if s, writes := out.read(); writes != 2 || !strings.Contains(s, "msg=second") {
		t.Fatalf("want two writes of text records, got %d: %q", writes, s)
	}
}

// BenchmarkLogRecord is the API's line per request written from many
// goroutines to a file, one write per record (CRMQ_LOG_FLUSH=0) against
// the default's LogWriter.
func BenchmarkLogRecord(b *testing.B) {
	for _, d := range []time.Duration{0, 100 * time.Millisecond} {
		b.Run("flush="+d.String(), func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "log"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			c := Config{LogLevel: slog.LevelInfo, LogFormat: "json", LogFlush: d}
			log, flush := c.loggerTo(f)
			defer flush()
			h := log.With("process", "api").Handler()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					rec := slog.NewRecord(time.Now(), slog.LevelInfo, "http", 0)
					rec.AddAttrs(slog.String("method", "POST"), slog.String("path", "/v1/jobs"),
						slog.String("route", "POST /v1/jobs"), slog.Int("status", 202),
						slog.Duration("duration", 1200*time.Microsecond),
						slog.String("request_id", "0123456789abcdef"), slog.Int64("org_id", 1))
					_ = h.Handle(b.Context(), rec)
				}
			})
		})
	}
}
