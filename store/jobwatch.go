package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lib/pq"
)

// jobsChannel is where the jobs_notify trigger announces every change of a
// job row (migration 00170).
const jobsChannel = "crmq_jobs"

// Limits of the job-status cache an API process keeps.
const (
	watchTTL     = time.Minute // an entry is dropped after this, changed or not
	watchMax     = 100_000     // entries; beyond it the expired go, then all
	watchMaxRead = 5 * time.Second
)

// jobWatch keeps, while one LISTEN connection is up, the job rows this
// process read or inserted, updated from the trigger's notifications: a
// status read of a cached row costs no query. While the connection is down
// nothing is served from it (every read queries Postgres), and on a new
// connection it starts empty, since notifications may have been missed.
//
// A read that queried Postgres stores its row only if no notification for
// that job arrived since the read began (else the row may be older than
// the one announced), so the cache never goes back in time.
type jobWatch struct {
	mu        sync.Mutex
	up        bool
	seq       uint64 // counts notifications and connection changes
	clearedAt uint64 // seq of the last connection change
	entries   map[string]watchEntry
	// seq of the last notification per job id, kept for watchMaxRead at
	// least: two maps, the older dropped when they rotate.
	inv, invOld map[string]uint64
	rotated     time.Time
	subs        map[string]map[chan struct{}]struct{}

	hits, misses atomic.Int64
}

// watchEntry is a cached row: decoded, or (raw set) the notification
// that announced it, decoded when first read. Most announced rows are
// never read by this process (every API hears every change), so a
// notification costs a look at its id, not a decode.
type watchEntry struct {
	job   Job
	raw   string
	until time.Time
}

// watchToken is what a read notes before it queries, for store.
type watchToken struct {
	seq   uint64
	at    time.Time
	valid bool
}

func newJobWatch() *jobWatch {
	return &jobWatch{
		entries: map[string]watchEntry{}, inv: map[string]uint64{}, invOld: map[string]uint64{},
		rotated: time.Now(), subs: map[string]map[chan struct{}]struct{}{},
	}
}

func (w *jobWatch) get(orgID int64, id string) (Job, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e, ok := w.entries[id]
	if ok && w.up && e.raw != "" {
		n, err := decodeNotification(e.raw)
		if err != nil || n.Gone || n.ID != id {
			delete(w.entries, id) // read from Postgres instead
			ok = false
		} else {
			e.job, e.raw = n.Job, ""
			w.entries[id] = e
		}
	}
	if !w.up || !ok || e.job.OrgID != orgID || time.Now().After(e.until) {
		w.misses.Add(1)
		return Job{}, false
	}
	w.hits.Add(1)
	return e.job, true
}

func (w *jobWatch) begin() watchToken {
	w.mu.Lock()
	defer w.mu.Unlock()
	return watchToken{seq: w.seq, at: time.Now(), valid: w.up}
}

// store keeps a row read from Postgres unless something changed since the
// read began (see jobWatch).
func (w *jobWatch) store(j Job, t watchToken) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !t.valid || !w.up || w.clearedAt > t.seq || time.Since(t.at) > watchMaxRead ||
		w.inv[j.ID] > t.seq || w.invOld[j.ID] > t.seq {
		return
	}
	w.put(j)
}

// put stores an entry; mu is held.
func (w *jobWatch) put(j Job) {
	now := time.Now()
	if len(w.entries) >= watchMax {
		for k, e := range w.entries {
			if now.After(e.until) {
				delete(w.entries, k)
			}
		}
		if len(w.entries) >= watchMax {
			clear(w.entries)
		}
	}
	w.entries[j.ID] = watchEntry{job: j, until: now.Add(watchTTL)}
}

// putRaw stores an announced row, decoded when first read; mu is held and
// the entry exists.
func (w *jobWatch) putRaw(id, raw string) {
	w.entries[id] = watchEntry{raw: raw, until: time.Now().Add(watchTTL)}
}

// changed records a change of job id: the announced row when known (raw,
// the notification; it replaces an entry this process holds), else the
// entry goes. It wakes the job's streams.
func (w *jobWatch) changed(id string, raw string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seq++
	if time.Since(w.rotated) > watchMaxRead {
		w.invOld, w.inv, w.rotated = w.inv, map[string]uint64{}, time.Now()
	}
	w.inv[id] = w.seq
	if _, held := w.entries[id]; held && raw != "" && w.up {
		w.putRaw(id, raw)
	} else {
		delete(w.entries, id)
	}
	for ch := range w.subs[id] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// setUp records the LISTEN connection's state; either way the cache
// starts again empty and every stream re-reads its job.
func (w *jobWatch) setUp(up bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.up = up
	w.seq++
	w.clearedAt = w.seq
	clear(w.entries)
	for _, chans := range w.subs {
		for ch := range chans {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}

func (w *jobWatch) subscribe(id string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	if w.subs[id] == nil {
		w.subs[id] = map[chan struct{}]struct{}{}
	}
	w.subs[id][ch] = struct{}{}
	w.mu.Unlock()
	return ch, func() {
		w.mu.Lock()
		delete(w.subs[id], ch)
		if len(w.subs[id]) == 0 {
			delete(w.subs, id)
		}
		w.mu.Unlock()
	}
}

func (w *jobWatch) isUp() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.up
}

// notification is the trigger's message.
type notification struct {
	Job
	OrgID int64 `json:"org_id"`
	Gone  bool  `json:"gone"`
}

func decodeNotification(payload string) (notification, error) {
	var n notification
	if err := json.Unmarshal([]byte(payload), &n); err != nil || n.ID == "" {
		return n, fmt.Errorf("job notification %.80q: %w", payload, errors.Join(err, errors.New("no id")))
	}
	n.Job.OrgID = n.OrgID
	return n, nil
}

// notifiedPrefix starts every message of the trigger, which builds it with
// json_build_object: the job id comes first, as text.
const notifiedPrefix = `{"id" : "`

// notifiedID reads the job id a notification starts with, and whether it
// announces a row gone (or too large to announce); ok is false for a
// message of another shape, which is then decoded whole.
func notifiedID(payload string) (id string, gone, ok bool) {
	rest, found := strings.CutPrefix(payload, notifiedPrefix)
	if !found {
		return "", false, false
	}
	id, rest, found = strings.Cut(rest, `"`)
	if !found || id == "" || strings.IndexByte(id, '\\') >= 0 {
		return "", false, false // an escaped id: left to the decoder
	}
	return id, strings.HasSuffix(rest, `"gone" : true}`), true
}

func (w *jobWatch) apply(payload string) error {
	id, gone, ok := notifiedID(payload)
	if !ok {
		n, err := decodeNotification(payload)
		if err != nil {
			return err
		}
		id, gone = n.ID, n.Gone
	}
	if gone {
		payload = ""
	}
	w.changed(id, payload)
	return nil
}

// WatchJobs makes this DB serve job status reads from memory, kept current
// by the jobs_notify trigger over one LISTEN connection to url, and lets
// JobChanges wake a stream when its job changes. It returns once the
// connection listens, or with an error (the DB then keeps querying); the
// connection closes when ctx ends. For API processes; call it once,
// before serving.
func (db *DB) WatchJobs(ctx context.Context, url string, log *slog.Logger) error {
	w := newJobWatch()
	l := pq.NewListener(url, 100*time.Millisecond, 5*time.Second, func(ev pq.ListenerEventType, err error) {
		switch ev {
		case pq.ListenerEventDisconnected, pq.ListenerEventConnectionAttemptFailed:
			w.setUp(false)
			log.Warn("job notifications lost; status reads query postgres until they are back", "err", err)
		case pq.ListenerEventReconnected:
			log.Info("job notifications back")
		}
	})
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	listened := make(chan error, 1)
	go func() { listened <- l.Listen(jobsChannel) }()
	select {
	case err := <-listened:
		if err != nil {
			_ = l.Close()
			return fmt.Errorf("listen %s: %w", jobsChannel, err)
		}
	case <-lctx.Done():
		_ = l.Close()
		return fmt.Errorf("listen %s: %w", jobsChannel, lctx.Err())
	}
	w.setUp(true)
	db.watch.Store(w)
	go func() {
		defer l.Close()
		ping := time.NewTicker(30 * time.Second)
		defer ping.Stop()
		for {
			select {
			case <-ctx.Done():
				db.watch.Store(nil)
				return
			case <-ping.C:
				go func() { _ = l.Ping() }() // finds a dead connection
			case n := <-l.Notify:
				if n == nil { // a new connection: what was missed is unknown
					w.setUp(true)
					continue
				}
				if err := w.apply(n.Extra); err != nil {
					log.Warn("job notification not understood", "err", err)
				}
			}
		}
	}()
	return nil
}

// JobChanges returns a channel that receives when job id may have changed
// (and when the notifications were interrupted), and a function to stop.
// ok is false when this DB does not watch jobs: the caller polls.
func (db *DB) JobChanges(id string) (ch <-chan struct{}, stop func(), ok bool) {
	w := db.watch.Load()
	if w == nil || !w.isUp() {
		return nil, func() {}, false
	}
	ch, stop = w.subscribe(id)
	return ch, stop, true
}

// JobCacheStats counts status reads served from memory and from Postgres
// since WatchJobs; zero without it.
func (db *DB) JobCacheStats() (hits, misses int64) {
	if w := db.watch.Load(); w != nil {
		return w.hits.Load(), w.misses.Load()
	}
	return 0, 0
}

// forgetJob drops a job this process changed itself, so its next read
// sees the change without waiting for the notification.
func (db *DB) forgetJob(id string) {
	if w := db.watch.Load(); w != nil {
		w.changed(id, "")
	}
}
