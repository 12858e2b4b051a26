package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/storetest"
)

var recToday = time.Date(2026, 6, 30, 12, 0, 0, 0, time.UTC)

// recDataset writes a random but fixed purchase history: 90 accounts (a
// tenth without deals), 14 products with a few popular ones, deals of one
// to three products over 400 days (one in six lost), and some accounts
// buying one product at a steady cycle, so that every type has rules and
// an antecedent has more rules than two per type keep.
func recDataset(t *testing.T, db *store.DB, org int64) {
	t.Helper()
	ctx := context.Background()
	r := rand.New(rand.NewPCG(12, 2026))
	var accounts, products, deals, items []json.RawMessage
	raw := func(format string, a ...any) json.RawMessage { return json.RawMessage(fmt.Sprintf(format, a...)) }
	for p := range 14 {
		products = append(products, raw(`{"external_id":"p%d","name":"Product %d"}`, p, p))
	}
	product := func() int { // skewed: low numbers are popular
		return min(r.IntN(14), r.IntN(14), r.IntN(18))
	}
	d := 0
	deal := func(acc, days int, stage string, ps ...int) {
		d++
		deals = append(deals, raw(`{"external_id":"d%d","account":"a%d","stage":%q,"amount":100,"close_date":%q}`,
			d, acc, stage, recToday.AddDate(0, 0, -days).Format(time.DateOnly)))
		for j, p := range ps {
			items = append(items, raw(`{"external_id":"d%d-%d","deal":"d%d","product":"p%d","quantity":1}`, d, j, d, p))
		}
	}
	for a := range 90 {
		accounts = append(accounts, raw(`{"external_id":"a%d","name":"Account %d"}`, a, a))
		if a%10 == 9 {
			continue
		}
		for range 1 + r.IntN(7) {
			ps := []int{product()}
			for range r.IntN(3) {
				if p := product(); !slices.Contains(ps, p) {
					ps = append(ps, p)
				}
			}
			stage := "Closed Won"
			if r.IntN(6) == 0 {
				stage = "Closed Lost"
			}
			deal(a, r.IntN(400), stage, ps...)
		}
		if a%7 == 3 { // a steady cycle, due or not
			cycle, last := 20+r.IntN(20), r.IntN(40)
			for k := range 3 + r.IntN(3) {
				deal(a, last+k*cycle+r.IntN(3), "Closed Won", 10+a%4)
			}
		}
	}
	for _, m := range []struct {
		module string
		rows   []json.RawMessage
	}{{"accounts", accounts}, {"products", products}, {"deals", deals}, {"deal_line_items", items}} {
		if res, err := db.UpsertRecords(ctx, org, m.module, m.rows); err != nil || res.Failed != 0 {
			t.Fatalf("%s: %+v %v", m.module, res, err)
		}
	}
}

// The chunked refresh gives, row for row and evidence for evidence, what
// the one statement it replaced gave, whatever the chunk size (one
// account a chunk, a few, all in one), over a random purchase history
// with a scope that leaves some accounts out; and each account's label
// and raw counts follow its stored recommendations.
func TestRecommendChunksMatchTheSingleStatement(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org, _ := storetest.NewOrg(t, db, "recs")
	recDataset(t, db, org.ID)
	// Not every account is in scope: those whose id ends in 7 are not.
	scope := store.Filter(func(args *[]any) (string, error) { return "a.external_id NOT LIKE '%7'", nil })
	labels := []store.RecommendLabel{
		{Name: "Likely add-on", Types: map[string][]int64{store.RecCrossSell: nil, store.RecBundle: nil}, MinProbability: 60},
		{Name: "Anything", Types: map[string][]int64{store.RecFirstBuy: nil, store.RecNextBuy: nil, store.RecRepeatBuy: nil,
			store.RecCrossSell: nil, store.RecBundle: nil}, MinProbability: 1},
	}
	for _, s := range []store.RecommendSettings{{MinAccounts: 2, PerType: 2}, {MinAccounts: 3, PerType: 1}, {MinAccounts: 1, PerType: 5}} {
		want, err := db.RecommendReference(ctx, org.ID, s, scope, recToday)
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[string]int{}
		for _, w := range want {
			kinds[w.Kind]++
		}
		if len(kinds) != 5 {
			t.Fatalf("%+v: the dataset gives %v, want every type", s, kinds)
		}
		for _, chunk := range []int{1, 7, 0} {
			steps := 0
			run, n, err := db.Recommend(ctx, org.ID, s, labels, scope, recToday, "test",
				store.RecommendRun{ChunkAccounts: chunk, Progress: func(done, total int) error { steps = total; return nil }})
			if err != nil {
				t.Fatal(err)
			}
			got, err := db.RecommendRows(ctx, org.ID)
			if err != nil {
				t.Fatal(err)
			}
			if n != len(want) || !reflect.DeepEqual(got, want) {
				t.Errorf("%+v, %d accounts a chunk (%d steps): %d recommendations (said %d), want the single statement's %d %v",
					s, chunk, steps, len(got), n, len(want), kinds)
				for i := range min(len(got), len(want)) {
					if !reflect.DeepEqual(got[i], want[i]) {
						t.Errorf("first difference: got %v, want %v", got[i], want[i])
						break
					}
				}
				continue
			}
			checkRecLabels(t, db, org.ID, want, labels, run.Scored)
		}
	}
}

// checkRecLabels compares the stored recommendation labels with what the
// recommendations give: per account its count, top probability, counts
// by type and the first label one of them meets.
func checkRecLabels(t *testing.T, db *store.DB, org int64, recs []store.RecRow, labels []store.RecommendLabel, scored int) {
	t.Helper()
	type lab struct {
		N      int            `json:"recommendations"`
		Top    int            `json:"top_probability"`
		ByType map[string]int `json:"by_type"`
		Label  string         `json:"-"`
	}
	want := map[int64]*lab{}
	for _, r := range recs {
		l := want[r.AccountID]
		if l == nil {
			l = &lab{ByType: map[string]int{}}
			want[r.AccountID] = l
		}
		l.N++
		l.Top = max(l.Top, r.Probability)
		l.ByType[r.Kind]++
	}
	for _, l := range want {
		l.Label = ""
	}
	for i := len(labels) - 1; i >= 0; i-- { // the first label met wins
		for _, r := range recs {
			if _, ok := labels[i].Types[r.Kind]; ok && r.Probability >= labels[i].MinProbability {
				want[r.AccountID].Label = labels[i].Name
			}
		}
	}
	var rows []struct {
		AccountID int64   `db:"account_id"`
		Raw       []byte  `db:"raw"`
		Score     int     `db:"score"`
		Label     *string `db:"label"`
	}
	if err := db.SelectContext(context.Background(), &rows, `SELECT account_id, raw, score, label FROM account_labels
		WHERE org_id = $1 AND technique = 'recommendations'`, org); err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(want) || scored != len(want) {
		t.Errorf("%d accounts labelled (scored %d), want %d", len(rows), scored, len(want))
	}
	for _, r := range rows {
		var got lab
		if err := json.Unmarshal(r.Raw, &got); err != nil {
			t.Fatal(err)
		}
		if r.Label != nil {
			got.Label = *r.Label
		}
		w := want[r.AccountID]
		if w == nil || !reflect.DeepEqual(&got, w) || r.Score != w.Top {
			t.Errorf("account %d: label %+v score %d, want %+v", r.AccountID, got, r.Score, w)
		}
	}
}

// An org's, an account's or a product's recommendations go with it, as
// their foreign keys' ON DELETE CASCADE did before migration 00250 (the
// keys checked each of the millions of rows a refresh writes; a trigger
// per DELETE statement does the cascade now), and nothing else goes.
func TestRecommendationsGoWithTheirOrgAccountOrProduct(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	a, _ := storetest.NewOrg(t, db, "recs-a")
	b, _ := storetest.NewOrg(t, db, "recs-b")
	all := store.Filter(func(*[]any) (string, error) { return "true", nil })
	rows := map[int64][]store.RecRow{}
	for _, org := range []int64{a.ID, b.ID} {
		recDataset(t, db, org)
		if _, _, err := db.Recommend(ctx, org, store.RecommendSettings{MinAccounts: 2, PerType: 2}, nil, all, recToday, "test", store.RecommendRun{}); err != nil {
			t.Fatal(err)
		}
		got, err := db.RecommendRows(ctx, org)
		if err != nil || len(got) == 0 {
			t.Fatalf("org %d: %d recommendations, %v", org, len(got), err)
		}
		rows[org] = got
	}
	// The first recommended account and a product of another row of org a.
	account, product := rows[a.ID][0].AccountID, int64(0)
	for _, r := range rows[a.ID] {
		if r.AccountID != account {
			product = r.ProductID
			break
		}
	}
	var keep []store.RecRow
	for _, r := range rows[a.ID] {
		if r.AccountID != account && r.ProductID != product {
			keep = append(keep, r)
		}
	}
	if len(keep) == 0 || len(keep) == len(rows[a.ID]) {
		t.Fatalf("the deletes would leave %d of %d rows: pick others", len(keep), len(rows[a.ID]))
	}
	for _, del := range []struct {
		table string
		id    int64
	}{{"accounts", account}, {"products", product}} {
		if res, err := db.ExecContext(ctx, `DELETE FROM `+del.table+` WHERE id = $1`, del.id); err != nil {
			t.Fatalf("delete %d from %s: %v", del.id, del.table, err)
		} else if n, _ := res.RowsAffected(); n != 1 {
			t.Fatalf("delete %d from %s: %d rows", del.id, del.table, n)
		}
	}
	if got, err := db.RecommendRows(ctx, a.ID); err != nil || !reflect.DeepEqual(got, keep) {
		t.Errorf("after deleting account %d and product %d: %d rows (%v), want the %d others of %d", account, product, len(got), err, len(keep), len(rows[a.ID]))
	}
	if _, err := db.ExecContext(ctx, `DELETE FROM orgs WHERE id = $1`, a.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := db.RecommendRows(ctx, a.ID); err != nil || len(got) != 0 {
		t.Errorf("after deleting org %d: %d of its rows left (%v)", a.ID, len(got), err)
	}
	if got, err := db.RecommendRows(ctx, b.ID); err != nil || !reflect.DeepEqual(got, rows[b.ID]) {
		t.Errorf("the other org's recommendations changed: %d rows, want %d (%v)", len(got), len(rows[b.ID]), err)
	}
}
