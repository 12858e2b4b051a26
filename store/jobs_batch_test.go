package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/storetest"
)

// The batched insert, start and finish statements keep every rule of the
// single-row ones: an existing id is not inserted again, a succeeded job is
// not restarted, a missing row is ErrNotFound, and a stale attempt's finish
// changes nothing.
func TestBatchedJobStatementsKeepTheSingleRowRules(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org, _ := storetest.NewOrg(t, db, "acme")
	user := "u-1"
	if _, _, err := db.InsertJobSingle(ctx, store.Job{ID: "old", OrgID: org.ID, Type: "t", Queue: "low", MaxRetry: 1, Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	jobs, inserted, err := db.InsertJobsBatch(ctx, []store.Job{
		{ID: "a", OrgID: org.ID, UserID: &user, Type: "t", Queue: "critical", MaxRetry: 2, Payload: []byte(`{"q":"say \"hi\" \\ é"}`)},
		{ID: "old", OrgID: org.ID, Type: "t", Queue: "low", MaxRetry: 1, Payload: []byte(`{}`)},
		{ID: "b", OrgID: org.ID, Type: "t", Queue: "low", MaxRetry: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, false, true}; !slices.Equal(inserted, want) {
		t.Fatalf("inserted %v, want %v", inserted, want)
	}
	if j := jobs[0]; j.State != store.JobQueued || j.UserID == nil || *j.UserID != user || j.MaxRetry != 2 || j.Queue != "critical" {
		t.Fatalf("stored row a: %+v", j)
	}
	if a, _ := db.Job(ctx, org.ID, "a"); string(a.Payload) != `{"q": "say \"hi\" \\ é"}` {
		t.Fatalf("payload stored as %s", a.Payload)
	}

	// b already succeeded: a redelivery must not restart it.
	if _, err := db.StartJob(ctx, "b", 1, "run-b"); err != nil {
		t.Fatal(err)
	}
	if err := db.FinishJob(ctx, "b", "run-b", store.JobSucceeded, []byte(`{"n":1}`), ""); err != nil {
		t.Fatal(err)
	}
	starts, errs, err := db.StartJobsBatch(ctx, []store.JobStartIn{
		store.NewJobStartIn("a", 1, "run-a"), store.NewJobStartIn("b", 2, "run-b2"), store.NewJobStartIn("missing", 1, "run-m"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if starts[0].Final != "" || errs[0] != nil || starts[0].StartedAt.IsZero() {
		t.Errorf("start a: %+v, %v", starts[0], errs[0])
	}
	if starts[1].Final != store.JobSucceeded || errs[1] != nil {
		t.Errorf("start b: %+v, %v", starts[1], errs[1])
	}
	if !errors.Is(errs[2], store.ErrNotFound) {
		t.Errorf("start of a missing row: %v, want ErrNotFound", errs[2])
	}
	if b, _ := db.Job(ctx, org.ID, "b"); b.State != store.JobSucceeded || b.Attempts != 1 {
		t.Errorf("succeeded job restarted: %+v", b)
	}

	if err := db.FinishJobsBatch(ctx, []store.JobFinishIn{
		store.NewJobFinishIn("a", "run-a", store.JobSucceeded, []byte(`{"ok":true}`), ""),
		store.NewJobFinishIn("old", "not-its-run", store.JobFailed, nil, "late"),
	}); err != nil {
		t.Fatal(err)
	}
	a, _ := db.Job(ctx, org.ID, "a")
	if a.State != store.JobSucceeded || a.Result == nil || string(*a.Result) != `{"ok": true}` || a.Progress != 100 || a.FinishedAt == nil || a.Error != nil {
		t.Errorf("finish a: %+v", a)
	}
	if old, _ := db.Job(ctx, org.ID, "old"); old.State != store.JobQueued || old.Error != nil {
		t.Errorf("a stale attempt changed the row: %+v", old)
	}
}

// Many workers writing job states at once share statements, and every
// job still ends with its own state and result.
func TestConcurrentJobWritesShareStatements(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org, _ := storetest.NewOrg(t, db, "acme")
	const n = 64
	before := db.JobWriteStats()
	var wg sync.WaitGroup
	start := make(chan struct{})
	errc := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			id, run := fmt.Sprintf("job-%d", i), fmt.Sprintf("run-%d", i)
			if _, ok, err := db.InsertJob(ctx, store.Job{ID: id, OrgID: org.ID, Type: "t", Queue: "low", MaxRetry: 1, Payload: []byte(`{}`)}); err != nil || !ok {
				errc <- fmt.Errorf("insert %s: %v %v", id, ok, err)
				return
			}
			if js, err := db.StartJob(ctx, id, 1, run); err != nil || js.Final != "" {
				errc <- fmt.Errorf("start %s: %+v %v", id, js, err)
				return
			}
			if err := db.FinishJob(ctx, id, run, store.JobSucceeded, fmt.Appendf(nil, `{"i":%d}`, i), ""); err != nil {
				errc <- fmt.Errorf("finish %s: %v", id, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	for i := range n {
		j, err := db.Job(ctx, org.ID, fmt.Sprintf("job-%d", i))
		if err != nil || j.State != store.JobSucceeded || j.Result == nil || string(*j.Result) != fmt.Sprintf(`{"i": %d}`, i) {
			t.Fatalf("job-%d: %+v %v", i, j, err)
		}
	}
	after := db.JobWriteStats()
	calls, stmts := after.Calls-before.Calls, after.Statements-before.Statements
	if calls != 3*n {
		t.Fatalf("%d job writes counted, want %d", calls, 3*n)
	}
	if stmts >= calls {
		t.Errorf("%d statements for %d concurrent job writes: none shared a statement", stmts, calls)
	}
	t.Logf("%d job writes in %d statements", calls, stmts)
}

// The batcher: a lone call runs alone, calls arriving meanwhile go
// together (never two with the same key, never more than max), and a
// failed batch is run again one call at a time so each call gets its own
// answer.
func TestBatcherGroupsAndFallsBack(t *testing.T) {
	ctx := context.Background()
	entered, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var batches [][]string
	var singles []string
	b := store.NewBatcher(3,
		func(_ context.Context, s string) (string, error) {
			if s == "first" {
				close(entered)
				<-release // hold the first call so the others pile up
			}
			mu.Lock()
			singles = append(singles, s)
			mu.Unlock()
			if s == "bad" {
				return "", errors.New("bad row")
			}
			return "one:" + s, nil
		},
		func(_ context.Context, in []string) ([]string, []error, error) {
			mu.Lock()
			batches = append(batches, slices.Clone(in))
			mu.Unlock()
			if slices.Contains(in, "bad") {
				return nil, nil, errors.New("statement failed")
			}
			out := make([]string, len(in))
			for i, s := range in {
				out[i] = "many:" + s
			}
			return out, make([]error, len(in)), nil
		})

	type answer struct {
		in, out string
		err     error
	}
	answers := make(chan answer, 6)
	call := func(s string) {
		r, err := b.Do(ctx, s)
		answers <- answer{s, r, err}
	}
	go call("first")
	<-entered
	for i, s := range []string{"x", "y", "x", "z", "bad"} {
		go call(s)
		for b.Pending() < i+1 { // one at a time: the arrival order is the list's
			runtime.Gosched()
		}
	}
	close(release)
	got := map[string][]string{}
	for range 6 {
		a := <-answers
		if a.err != nil {
			got[a.in] = append(got[a.in], "error: "+a.err.Error())
		} else {
			got[a.in] = append(got[a.in], a.out)
		}
	}
	want := map[string][]string{
		"first": {"one:first"},
		"y":     {"many:y"},
		"z":     {"many:z"},
		"x":     {"many:x", "one:x"}, // the second x waits for the next batch, which fails for "bad"
		"bad":   {"error: bad row"},
	}
	slices.Sort(got["x"])
	for k, v := range want {
		if !slices.Equal(got[k], v) {
			t.Errorf("%s: got %v, want %v", k, got[k], v)
		}
	}
	if want := [][]string{{"x", "y", "z"}, {"x", "bad"}}; !slices.EqualFunc(batches, want, slices.Equal) {
		t.Errorf("batches %v, want %v", batches, want)
	}
	if want := []string{"first", "x", "bad"}; !slices.Equal(singles, want) {
		t.Errorf("single calls %v, want %v", singles, want)
	}
}

// A start or finish, batched or not, looks its rows up by id however small
// the jobs table was when the statement first ran: a plan fixed while the
// table was small would read every row of the grown table at each run.
func TestBatchedStartAndFinishDoNotScanJobs(t *testing.T) {
	ctx := context.Background()
	_, url := storetest.NewDB(t)
	// One connection: every statement, and the statistics it flushes, in
	// one backend.
	db, err := store.Open(ctx, url, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	org, _ := storetest.NewOrg(t, db, "acme")
	if _, err := db.ExecContext(ctx, `INSERT INTO jobs (id, org_id, type, queue) SELECT 's' || g, $1, 't', 'low' FROM generate_series(1, 20) g`, org.ID); err != nil {
		t.Fatal(err)
	}
	batch := func(round int) {
		t.Helper()
		run := fmt.Sprintf("run-%d", round)
		if _, _, err := db.StartJobsBatch(ctx, []store.JobStartIn{store.NewJobStartIn("s1", 1, run), store.NewJobStartIn("s2", 1, run)}); err != nil {
			t.Fatal(err)
		}
		if err := db.FinishJobsBatch(ctx, []store.JobFinishIn{
			store.NewJobFinishIn("s1", run, store.JobFailed, nil, "x"), store.NewJobFinishIn("s2", run, store.JobFailed, nil, "x"),
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.StartJob(ctx, "s3", 1, run); err != nil { // and the single-row statements
			t.Fatal(err)
		}
		if err := db.FinishJob(ctx, "s3", run, store.JobFailed, nil, "x"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Job(ctx, org.ID, "s3"); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 { // enough runs for a prepared statement to settle on a generic plan
		batch(i)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO jobs (id, org_id, type, queue) SELECT 'b' || g, $1, 't', 'low' FROM generate_series(1, 20000) g`, org.ID); err != nil {
		t.Fatal(err)
	}
	scanned := func() int64 {
		t.Helper()
		// Flush this backend's counts, then read them in a new transaction.
		if _, err := db.ExecContext(ctx, `SELECT pg_stat_force_next_flush()`); err != nil {
			t.Fatal(err)
		}
		var n int64
		if err := db.GetContext(ctx, &n, `SELECT seq_tup_read FROM pg_stat_user_tables WHERE relname = 'jobs'`); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := scanned()
	batch(10)
	if read := scanned() - before; read > 1000 {
		t.Fatalf("starts and finishes of 3 jobs read %d rows of a 20,020-row jobs table by sequential scan", read)
	}
}

// recordingBatcher returns a batcher whose statements succeed and are
// recorded, and a function that returns the statements so far.
func recordingBatcher(max int) (*store.Batcher, func() [][]string) {
	var mu sync.Mutex
	var statements [][]string
	record := func(in ...string) {
		mu.Lock()
		statements = append(statements, in)
		mu.Unlock()
	}
	b := store.NewBatcher(max,
		func(_ context.Context, s string) (string, error) { record(s); return s, nil },
		func(_ context.Context, in []string) ([]string, []error, error) {
			record(in...)
			return in, make([]error, len(in)), nil
		})
	return b, func() [][]string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(statements)
	}
}

// With a linger, a call that follows another closely waits for company, and
// a call after a quiet spell runs at once.
func TestBatcherLingersOnlyWhileCallsComeSteadily(t *testing.T) {
	ctx := context.Background()
	const linger = 500 * time.Millisecond
	b, statements := recordingBatcher(10)
	b.SetLinger(linger)
	alone := func(s string) {
		t.Helper()
		start := time.Now()
		if _, err := b.Do(ctx, s); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d >= linger/2 {
			t.Errorf("call %s after a quiet spell took %s: it waited for company", s, d)
		}
	}
	alone("a")
	done := make(chan struct{}, 2)
	// b follows a closely: it waits, and c joins it (c is the company the
	// last round, a alone, promises: the batch runs when it comes).
	go func() { _, _ = b.Do(ctx, "b"); done <- struct{}{} }()
	for deadline := time.Now().Add(5 * time.Second); b.Pending() < 1; runtime.Gosched() {
		if time.Now().After(deadline) {
			t.Fatalf("call b did not wait: %d pending", b.Pending())
		}
	}
	go func() { _, _ = b.Do(ctx, "c"); done <- struct{}{} }()
	<-done
	<-done
	time.Sleep(2*linger + 50*time.Millisecond)
	alone("d")
	if got, want := statements(), [][]string{{"a"}, {"b", "c"}, {"d"}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("statements %v, want %v", got, want)
	}
}

// With a minimum rate, calls that come steadily but slower than it run at
// once, each alone; calls that come faster wait and share statements.
func TestBatcherLingersOnlyAboveItsMinimumRate(t *testing.T) {
	ctx := context.Background()
	const linger = 40 * time.Millisecond
	b, statements := recordingBatcher(64)
	b.SetLinger(linger)
	b.SetMinRate(100)
	// 20 calls a second: each follows the last within twice linger (it
	// would wait without a minimum rate) but comes at a fifth of the rate.
	for i := range 10 {
		start := time.Now()
		if _, err := b.Do(ctx, fmt.Sprint("slow", i)); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d >= linger/2 {
			t.Fatalf("call %d at 20 a second took %s: it waited for company below the minimum rate", i, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
	slow := len(statements())
	if slow != 10 {
		t.Fatalf("10 slow calls ran as %d statements, want one each", slow)
	}
	// 200 calls, one every 2 ms (500 a second, or fewer on a slow host):
	// above the minimum, they wait and share.
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() { _, _ = b.Do(ctx, fmt.Sprint("fast", i)) })
		time.Sleep(2 * time.Millisecond)
	}
	wg.Wait()
	if fast := len(statements()) - slow; fast > 100 {
		t.Fatalf("200 calls at up to 500 a second ran as %d statements: they did not wait for company", fast)
	}
}

// After a round of at least four calls, a lingering batch runs as soon as
// as many calls are pending as that round served, and waits the whole
// linger for fewer; after a smaller round it waits the whole linger.
func TestBatcherStopsLingeringOnceTheLastRoundIsBack(t *testing.T) {
	ctx := context.Background()
	const linger = time.Second
	var mu sync.Mutex
	var statements [][]string
	hold, entered := make(chan struct{}), make(chan struct{})
	b := store.NewBatcher(10,
		func(_ context.Context, s string) (string, error) {
			if s == "a" {
				close(entered)
				<-hold
			}
			mu.Lock()
			statements = append(statements, []string{s})
			mu.Unlock()
			return s, nil
		},
		func(_ context.Context, in []string) ([]string, []error, error) {
			mu.Lock()
			statements = append(statements, in)
			mu.Unlock()
			return in, make([]error, len(in)), nil
		})
	b.SetLinger(linger)
	// pendingAt waits until n calls are pending.
	pendingAt := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); b.Pending() < n; runtime.Gosched() {
			if time.Now().After(deadline) {
				t.Fatalf("%d calls pending, want %d", b.Pending(), n)
			}
		}
	}
	// together starts calls one after another, each pending before the
	// next but the last (which may start the batch), and returns how long
	// until all of them were served.
	together := func(names ...string) time.Duration {
		t.Helper()
		start := time.Now()
		var wg sync.WaitGroup
		for i, s := range names {
			wg.Go(func() { _, _ = b.Do(ctx, s) })
			if i < len(names)-1 {
				pendingAt(i + 1)
			}
		}
		wg.Wait()
		return time.Since(start)
	}

	// A round of five: a runs alone (after a quiet spell) and holds its
	// statement while four more gather behind it.
	first := make(chan struct{})
	go func() { _, _ = b.Do(ctx, "a"); close(first) }()
	<-entered
	for i, s := range []string{"b", "c", "d", "e"} {
		go func() { _, _ = b.Do(ctx, s) }()
		pendingAt(i + 1)
	}
	close(hold)
	<-first
	for b.Pending() > 0 {
		runtime.Gosched()
	}
	time.Sleep(10 * time.Millisecond) // the round ends

	if d := together("f", "g", "h", "i", "j"); d >= linger/2 {
		t.Errorf("five calls after a round of five took %s: they waited for more company than came back", d)
	}
	if d := together("k", "l", "m"); d < linger*9/10 {
		t.Errorf("three calls after a round of five took %s: they did not wait for company (linger %s)", d, linger)
	}
	// A round of three is a trickle, not a crowd: the next waits linger.
	if d := together("n", "o", "p"); d < linger*9/10 {
		t.Errorf("three calls after a round of three took %s: they did not wait for company (linger %s)", d, linger)
	}
	mu.Lock()
	defer mu.Unlock()
	want := [][]string{{"a"}, {"b", "c", "d", "e"}, {"f", "g", "h", "i", "j"}, {"k", "l", "m"}, {"n", "o", "p"}}
	if !slices.EqualFunc(statements, want, slices.Equal) {
		t.Fatalf("statements %v, want %v", statements, want)
	}
}

// A start that meets a job being cancelled waits for the cancel and then
// leaves the job cancelled: the single start and the batched one read the
// row again once its writer commits.
func TestAStartWaitingOnACancelLeavesItCancelled(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org, _ := storetest.NewOrg(t, db, "acme")
	for _, id := range []string{"one", "two", "other"} {
		if _, ok, err := db.InsertJob(ctx, store.Job{ID: id, OrgID: org.ID, Type: "t", Queue: "low", Payload: []byte(`{}`)}); err != nil || !ok {
			t.Fatalf("insert %s: %v %v", id, ok, err)
		}
	}
	starts := map[string]func() (store.JobStart, error){
		"one": func() (store.JobStart, error) { return db.StartJob(ctx, "one", 1, "run-1") },
		"two": func() (store.JobStart, error) {
			js, errs, err := db.StartJobsBatch(ctx, []store.JobStartIn{
				store.NewJobStartIn("two", 1, "run-2"), store.NewJobStartIn("other", 1, "run-o")})
			if err != nil {
				return js[0], err
			}
			if errs[1] != nil || js[1].Final != "" {
				return js[0], fmt.Errorf("other job: %+v %v", js[1], errs[1])
			}
			return js[0], errs[0]
		},
	}
	for id, start := range starts {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE jobs SET state = 'cancelled' WHERE id = $1`, id); err != nil {
			t.Fatal(err)
		}
		type result struct {
			js  store.JobStart
			err error
		}
		done := make(chan result, 1)
		go func() { js, err := start(); done <- result{js, err} }()
		// The start waits on the row until the cancel commits.
		waitFor(t, func() bool {
			var n int
			err := db.GetContext(ctx, &n, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`)
			return err == nil && n > 0
		})
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		r := <-done
		if r.err != nil || r.js.Final != store.JobCancelled {
			t.Errorf("start of %s after its cancel: %+v %v, want Final cancelled", id, r.js, r.err)
		}
		if j, _ := db.Job(ctx, org.ID, id); j.State != store.JobCancelled || j.Attempts != 0 {
			t.Errorf("%s after the start: %+v, want cancelled and never attempted", id, j)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// An insert returns only the times Postgres set; the rest of the job it
// answers with is what the caller gave and the table's defaults. It must
// be the row as stored, read back, for one insert alone (with an
// idempotency key) and for a batch.
func TestInsertedJobIsTheStoredRow(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org, _ := storetest.NewOrg(t, db, "acme")
	user, key := "u-1", "k-1"
	single, ok, err := db.InsertJob(ctx, store.Job{ID: "s", OrgID: org.ID, UserID: &user, Type: "t", Queue: "default", MaxRetry: 3,
		Payload: []byte(`{"org_id":1,"a":[1,2]}`), IdempotencyKey: &key})
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	batch, _, err := db.InsertJobsBatch(ctx, []store.Job{
		{ID: "b1", OrgID: org.ID, Type: "t", Queue: "low", MaxRetry: 0, Payload: []byte(`{"q":"é"}`)},
		{ID: "b2", OrgID: org.ID, UserID: &user, Type: "u", Queue: "critical", MaxRetry: 5},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range append([]store.Job{single}, batch...) {
		read, err := db.JobUncached(ctx, org.ID, got.ID)
		if err != nil {
			t.Fatal(err)
		}
		var a, b any
		if json.Unmarshal(got.Payload, &a) != nil || json.Unmarshal(read.Payload, &b) != nil || !reflect.DeepEqual(a, b) {
			t.Errorf("job %s: payload %s, stored %s", got.ID, got.Payload, read.Payload)
		}
		got.Payload, read.Payload = nil, nil
		if !reflect.DeepEqual(got, read) {
			t.Errorf("job %s as the insert answered:\n%+v\nas stored:\n%+v", got.ID, got, read)
		}
	}
}
