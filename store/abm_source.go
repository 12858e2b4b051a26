package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// ErrCustomAccounts: what was asked does not work yet when a custom module
// plays the accounts role (the behavioural techniques, enrichment). The
// API answers 409.
var ErrCustomAccounts = errors.New("not available while a custom module plays the accounts role")

// accountSource is where the org's accounts role lives, as the ABM
// queries read it. With the built-in module, the accounts table, whose
// rows technique results and segment members name by account_id. With a
// custom module custom_<name>, its rows in records (a.module restricted
// to it), named by record_id, and deals reaching them through the
// accounts_deals lookup: an attribute of deals holding the record's
// external id (a custom module has no typed lookup).
//
// Every field is a constant of this package or checked here before it
// is written into SQL: the module against the records table's own CHECK,
// the deal attribute key against attributeKeyRE.
type accountSource struct {
	module  string // accounts, or custom_<name>
	table   string // accounts or records
	key     string // column of account_labels and segment_members: account_id or record_id
	other   string // the other one
	dealKey string // custom only: deals.attributes key holding the account's external id
}

var builtinAccounts = accountSource{module: "accounts", table: "accounts", key: "account_id", other: "record_id"}

func (s accountSource) custom() bool { return s.table == "records" }

// from is the table aliased alias ("accounts a", "records a").
func (s accountSource) from(alias string) string { return s.table + " " + alias }

// only restricts the table aliased alias to the module: "" for accounts,
// " AND a.module = 'custom_x'" for records.
func (s accountSource) only(alias string) string {
	if !s.custom() {
		return ""
	}
	return " AND " + alias + ".module = " + pq.QuoteLiteral(s.module)
}

// dealRef is what a deal (alias d) holds of its account: the account's id
// (d.account_id) or, for a custom module, the record's external id.
func (s accountSource) dealRef() string {
	if !s.custom() {
		return "d.account_id"
	}
	return "(d.attributes->>" + pq.QuoteLiteral(s.dealKey) + ")"
}

// refCol is the account column dealRef matches: a.id or a.external_id.
func (s accountSource) refCol(alias string) string {
	if !s.custom() {
		return alias + ".id"
	}
	return alias + ".external_id"
}

// sourceOf reads the accounts role of a resolved mapping.
func sourceOf(m ABMMapping) (accountSource, error) {
	module := m.Roles[RoleAccounts].Module
	if module == "" || module == "accounts" {
		return builtinAccounts, nil
	}
	if !customModuleRE.MatchString(module) {
		return accountSource{}, fmt.Errorf("accounts role: module %q is neither accounts nor a custom module", module)
	}
	s := accountSource{module: module, table: "records", key: "record_id", other: "account_id"}
	if lk := m.Lookups[LinkAccountsDeals]; lk != nil {
		if key, ok := strings.CutPrefix(*lk, RoleDeals+"."+attributesPrefix); ok && attributeKeyRE.MatchString(key) {
			s.dealKey = key
		}
	}
	if s.dealKey == "" {
		return accountSource{}, fmt.Errorf("accounts role %s: the accounts_deals lookup must be deals.attributes.<key>: %w", module, ErrInvalidMapping)
	}
	return s, nil
}

// accountSource reads where the org's accounts role lives.
func (db *DB) accountSource(ctx context.Context, orgID int64) (accountSource, error) {
	m, err := db.ABMMapping(ctx, orgID)
	if err != nil {
		return accountSource{}, err
	}
	return sourceOf(m)
}

// CustomAccounts tells whether a custom module plays the org's accounts
// role, and names it.
func (db *DB) CustomAccounts(ctx context.Context, orgID int64) (string, bool, error) {
	m, err := db.ABMMapping(ctx, orgID)
	if err != nil {
		return "", false, err
	}
	module := m.Roles[RoleAccounts].Module
	return module, module != "" && module != "accounts", nil
}

// accountCatalog is AccountFields and the source it reads, from one read
// of the mapping.
func (db *DB) accountCatalog(ctx context.Context, orgID int64) (accountSource, map[string]AccountField, error) {
	m, err := db.ABMMapping(ctx, orgID)
	if err != nil {
		return accountSource{}, nil, err
	}
	src, err := sourceOf(m)
	if err != nil {
		return accountSource{}, nil, err
	}
	fields, err := m.roleFields(RoleAccounts, AccountAlias)
	return src, fields, err
}

// dropOtherKind deletes the technique's results that name the other kind
// of account row than src does: the org's accounts role moved between the
// built-in module and a custom one since they were written. (An index
// leads with org_id, technique and each kind, so this is a lookup.)
func dropOtherKind(ctx context.Context, tx *sqlx.Tx, orgID int64, technique string, src accountSource) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM account_labels WHERE org_id = $1 AND technique = $2 AND `+src.other+` IS NOT NULL`, orgID, technique)
	if err != nil {
		return fmt.Errorf("drop %s results of the other accounts module: %w", technique, err)
	}
	return nil
}
