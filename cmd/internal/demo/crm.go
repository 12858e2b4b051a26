package demo

import (
	"fmt"
	"math"
	"strings"
	"time"
)

var (
	productFamilies = []string{"Core Platform", "Analytics", "Support Plans", "Integrations"}
	industries      = []string{"Software", "Manufacturing", "Retail", "Healthcare", "Financial Services",
		"Education", "Logistics", "Energy", "Media", "Hospitality"}
	cities = [][2]string{{"Lyon", "France"}, {"Munich", "Germany"}, {"Austin", "United States"},
		{"Toronto", "Canada"}, {"Manchester", "United Kingdom"}, {"Pune", "India"}, {"Melbourne", "Australia"},
		{"Rotterdam", "Netherlands"}, {"Barcelona", "Spain"}, {"Osaka", "Japan"}, {"Denver", "United States"},
		{"São Paulo", "Brazil"}, {"Dublin", "Ireland"}, {"Stockholm", "Sweden"}, {"Chennai", "India"}}
	companyWords = []string{"Northwind", "Bluefin", "Cedar", "Granite", "Harbor", "Ironbark", "Juniper",
		"Kestrel", "Lumen", "Meridian", "Nimbus", "Orchard", "Pioneer", "Quartz", "Redwood", "Summit",
		"Tidewater", "Umber", "Vantage", "Willow", "Xenon", "Yarrow", "Zephyr", "Atlas", "Beacon",
		"Copper", "Delta", "Ember", "Falcon", "Glacier"}
	companyKinds = []string{"Logistics", "Labs", "Foods", "Health", "Systems", "Partners", "Industries"}
	firstNames   = []string{"Ana", "Ben", "Chloé", "Dev", "Elif", "Farid", "Grace", "Hiro", "Ines", "Jonas",
		"Kara", "Luis", "Maya", "Noor", "Owen", "Priya", "Quinn", "Rosa", "Sam", "Tariq", "Uma", "Viktor",
		"Wen", "Ximena", "Yusuf", "Zoe", "Arjun", "Beatriz", "Carlos", "Dana"}
	lastNames = []string{"Almeida", "Brennan", "Chen", "Dubois", "Eriksen", "Fischer", "García", "Haddad",
		"Ivanova", "Jensen", "Kowalski", "Laurent", "Moreau", "Nakamura", "Okafor", "Patel", "Quispe",
		"Rossi", "Schmidt", "Tanaka", "Umarov", "Varga", "Weber", "Yilmaz", "Zhang"}
	titles = []string{"CTO", "VP Operations", "IT Manager", "Head of Procurement", "Finance Director",
		"Operations Lead", "Product Owner", "Customer Success Manager", "CEO", "Engineering Manager"}
	lifecycle   = []string{"subscriber", "lead", "marketing_qualified", "sales_qualified", "opportunity", "customer", "evangelist"}
	leadSources = []string{"Web", "Referral", "Trade Show", "Partner", "Cold Call", "Webinar", "Advertisement"}
	dealStages  = []string{"Qualification", "Needs Analysis", "Proposal", "Negotiation"}
	competitors = []string{"Acumen CRM", "Brightline", "CoreDesk", "Dynamo Suite"}
)

func (g *generator) genProducts() {
	names := []string{"Seats - Standard", "Seats - Professional", "Seats - Enterprise", "Storage Add-on",
		"Sandbox", "Dashboards", "Forecasting", "Data Warehouse Sync", "AI Insights", "Report Builder",
		"Premium Support", "24x7 Support", "Onboarding Package", "Training Day", "Success Architect",
		"ERP Connector", "Marketing Connector", "Telephony Bridge", "API Pack", "SSO & Audit"}
	var rows []row
	for i, n := range names {
		id := g.id("prd", 3)
		g.products = append(g.products, id)
		family := productFamilies[min(i/5, len(productFamilies)-1)]
		rows = append(rows, row{"external_id": id, "name": n, "code": fmt.Sprintf("P%03d", 100+i),
			"family": family, "unit_price": money(float64(g.between(2, 120)) * 10)})
	}
	g.emit("products", rows)
}

func (g *generator) genAccounts() {
	var rows []row
	for i := range 200 {
		a := &account{id: g.id("acc", 4), owner: g.pick(g.users)}
		a.name = companyWords[i%len(companyWords)] + " " + companyKinds[i/len(companyWords)%len(companyKinds)]
		a.domain = strings.ToLower(strings.ReplaceAll(a.name, " ", "")) + ".example"
		switch n := g.r.IntN(100); {
		case i%40 == 39 || n < 6: // every fortieth is guaranteed empty
			a.tier = tierEmpty
		case n < 33:
			a.tier = tierSparse
		case n < 88:
			a.tier = tierNormal
		default:
			a.tier = tierRich
		}
		g.accounts = append(g.accounts, a)
		employees := []int{20, 80, 400, 2500, 12000}[g.r.IntN(5)] * (80 + g.r.IntN(40)) / 100
		city := cities[g.r.IntN(len(cities))]
		r := row{"external_id": a.id, "name": a.name, "industry": g.pick(industries), "employees": employees,
			"annual_revenue": money(float64(employees) * float64(g.between(60, 260)) * 1000),
			"product_family": g.pick(productFamilies), "website": "https://www." + a.domain,
			"city": city[0], "country": city[1], "owner": a.owner,
			"attributes": map[string]any{"segment": []string{"SMB", "Mid-Market", "Enterprise"}[min(employees/1000, 2)]}}
		g.state(r, "industry", "city", "country", "employees")
		rows = append(rows, r)
	}
	g.emit("accounts", rows)
}

func (g *generator) genContacts() {
	var recs []tracked
	for _, a := range g.accounts {
		n := map[tier][2]int{tierEmpty: {0, 0}, tierSparse: {1, 2}, tierNormal: {3, 7}, tierRich: {14, 22}}[a.tier]
		for range g.between(n[0], n[1]) {
			p := &person{id: g.id("con", 5), owner: a.owner, account: a}
			a.contacts = append(a.contacts, p)
			first, last := g.pick(firstNames), g.pick(lastNames)
			base := row{"external_id": p.id, "account": a.id, "first_name": first, "last_name": last,
				"email": strings.ToLower(first+"."+last) + "@" + a.domain,
				"phone": fmt.Sprintf("+1-555-%04d", g.r.IntN(10000)), "title": g.pick(titles), "owner": p.owner}
			g.state(base, "email", "phone", "title")
			// Contacts walk the lifecycle from where they entered it.
			from := g.r.IntN(3)
			to := from + g.r.IntN(len(lifecycle)-from)
			if a.tier == tierRich && to < 5 && g.chance(0.7) {
				to = 5
			}
			recs = append(recs, g.walk(base, lifecycle[from:to+1]))
		}
	}
	g.emitHistory("contacts", "lifecycle_stage", recs)
}

// walk spreads a picklist path over the past: the first value between 18
// and 6 months ago, each next one some weeks later.
func (g *generator) walk(base row, path []string) tracked {
	t := tracked{base: base, values: path}
	at := g.ago(180, 540)
	for range path {
		t.times = append(t.times, at)
		at = at.Add(time.Duration(g.between(5, 60)) * 24 * time.Hour)
		if at.After(g.day) {
			at = g.day.Add(-time.Hour)
		}
	}
	return t
}

func (g *generator) genLeads() {
	var recs []tracked
	for range 300 {
		p := &person{id: g.id("lead", 4), owner: g.pick(g.users), lead: true}
		g.leads = append(g.leads, p)
		first, last := g.pick(firstNames), g.pick(lastNames)
		company := g.pick(companyWords) + " " + g.pick([]string{"Group", "Ltd", "GmbH", "Inc", "SA"})
		path := []string{"New", "Contacted", "Working"}[:g.between(1, 3)]
		converted := false
		if len(path) == 3 && g.chance(0.6) {
			if g.chance(0.6) {
				path = append(path, "Qualified")
				converted = g.chance(0.5)
			} else {
				path = append(path, "Unqualified")
			}
		}
		base := row{"external_id": p.id, "first_name": first, "last_name": last, "company": company,
			"email":       strings.ToLower(first) + "@" + strings.ToLower(strings.Fields(company)[0]) + ".example",
			"phone":       fmt.Sprintf("+44-20-%04d-%04d", g.r.IntN(10000), g.r.IntN(10000)),
			"lead_source": g.pick(leadSources), "potential_value": money(float64(g.between(5, 250)) * 1000),
			"converted": converted, "owner": p.owner}
		g.state(base, "email", "phone", "lead_source")
		recs = append(recs, g.walk(base, path))
	}
	g.emitHistory("leads", "lead_status", recs)
}

func (g *generator) genDeals() {
	// Deals go to accounts with contacts, more to the bigger ones.
	var pool []*account
	for _, a := range g.accounts {
		w := map[tier]int{tierSparse: 1, tierNormal: 4, tierRich: 15}[a.tier]
		for range w {
			pool = append(pool, a)
		}
	}
	var recs []tracked
	var items []row
	for range 3000 {
		a := pool[g.r.IntN(len(pool))]
		id := g.id("deal", 5)
		a.deals = append(a.deals, id)
		kind := "new"
		switch n := g.r.IntN(100); {
		case n < 30:
			kind = "expansion"
		case n < 50:
			kind = "renewal"
		}
		open := g.between(1, len(dealStages))
		path := append([]string(nil), dealStages[:open]...)
		closed := g.chance(0.65)
		if closed {
			path = append(path, []string{"Closed Won", "Closed Lost"}[g.r.IntN(2)])
		}
		t := g.walk(nil, path)
		last := t.times[len(t.times)-1]
		stage := path[len(path)-1]
		closeDate := last
		if !closed {
			closeDate = g.day.Add(time.Duration(g.between(7, 120)) * 24 * time.Hour)
		}
		prob := map[string]int{"Qualification": 10, "Needs Analysis": 25, "Proposal": 50, "Negotiation": 75,
			"Closed Won": 100, "Closed Lost": 0}[stage]
		var amount float64
		for range g.between(1, 3) {
			product := g.products[g.r.IntN(len(g.products))]
			qty := g.between(1, 50)
			price := float64(g.between(2, 120)) * 10 * (0.8 + 0.2*g.r.Float64())
			price = math.Round(price*100) / 100
			total := math.Round(price*float64(qty)*100) / 100
			amount += total
			items = append(items, row{"external_id": g.id("dli", 6), "deal": id, "product": product,
				"quantity": qty, "unit_price": money(price), "total": money(total)})
		}
		base := row{"external_id": id, "account": a.id, "contact": a.contacts[g.r.IntN(len(a.contacts))].id,
			"name": fmt.Sprintf("%s - %s %d", a.name, kind, closeDate.Year()), "deal_type": kind,
			"amount": money(amount), "probability": prob, "close_date": date(closeDate), "owner": a.owner}
		if !closed {
			base["next_step"] = g.pick([]string{"Send proposal", "Security review", "Pricing call", "Legal redlines", "Demo for finance"})
		}
		if g.chance(0.3) {
			base["competitor"] = g.pick(competitors)
		}
		g.state(base, "amount", "close_date")
		t.base = base
		recs = append(recs, t)
	}
	g.emitHistory("deals", "stage", recs)
	g.emit("deal_line_items", items)
}

func (g *generator) genCustom() {
	var rows []row
	for i, c := range competitors {
		rows = append(rows, row{"external_id": fmt.Sprintf("cmp-%d", i+1), "name": c,
			"website": "https://" + strings.ToLower(strings.ReplaceAll(c, " ", "")) + ".example",
			"threat":  []string{"high", "medium", "low", "medium"}[i]})
	}
	g.emit("custom_competitors", rows)
}
