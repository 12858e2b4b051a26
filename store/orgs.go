package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Org is a tenant.
type Org struct {
	ID        int64     `db:"id" json:"id"`
	Name      string    `db:"name" json:"name"`
	CreatedAt time.Time `db:"created_at" json:"created_at"`
}

// keyPrefix marks crmq keys so a leaked one is recognisable in a scan.
const keyPrefix = "crmq_"

// HashKey is the form in which an API key is stored and looked up.
func HashKey(key string) []byte {
	sum := sha256.Sum256([]byte(key))
	return sum[:]
}

// OrgKeyShaped tells whether key has the form NewKey gives, without
// asking the database whose it is.
func OrgKeyShaped(key string) bool {
	hexPart, ok := strings.CutPrefix(key, keyPrefix)
	if !ok || len(hexPart) != 48 {
		return false
	}
	_, err := hex.DecodeString(hexPart)
	return err == nil
}

// NewKey returns a fresh random API key.
func NewKey() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return keyPrefix + hex.EncodeToString(b)
}

// CreateOrg creates an org; ErrConflict when the name is taken.
func (db *DB) CreateOrg(ctx context.Context, name string) (Org, error) {
	var o Org
	err := db.GetContext(ctx, &o, `INSERT INTO orgs (name) VALUES ($1) RETURNING id, name, created_at`, name)
	if isUniqueViolation(err) {
		return Org{}, fmt.Errorf("org %q: %w", name, ErrConflict)
	}
	if err != nil {
		return Org{}, fmt.Errorf("create org: %w", err)
	}
	return o, nil
}

// CreateOrgWithKey creates an org and its first API key in one transaction.
func (db *DB) CreateOrgWithKey(ctx context.Context, name string) (Org, string, error) {
	var (
		o   Org
		key = NewKey()
	)
	err := db.InTx(ctx, func(tx *sqlx.Tx) error {
		err := tx.GetContext(ctx, &o, `INSERT INTO orgs (name) VALUES ($1) RETURNING id, name, created_at`, name)
		if isUniqueViolation(err) {
			return fmt.Errorf("org %q: %w", name, ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("create org: %w", err)
		}
		return insertKey(ctx, tx, o.ID, key, nil)
	})
	if err != nil {
		return Org{}, "", err
	}
	return o, key, nil
}

// OrgByID finds an org by its id; ErrNotFound when there is none.
func (db *DB) OrgByID(ctx context.Context, id int64) (Org, error) {
	var o Org
	err := db.GetContext(ctx, &o, `SELECT id, name, created_at FROM orgs WHERE id = $1`, id)
	if err != nil {
		return Org{}, notFound(err, fmt.Sprintf("org %d", id))
	}
	return o, nil
}

// OrgByName finds an org by its name.
func (db *DB) OrgByName(ctx context.Context, name string) (Org, error) {
	var o Org
	err := db.GetContext(ctx, &o, `SELECT id, name, created_at FROM orgs WHERE name = $1`, name)
	if err != nil {
		return Org{}, notFound(err, "org "+name)
	}
	return o, nil
}

// CreateAPIKey issues a new key with every scope for the org and returns
// it; only its hash is kept.
func (db *DB) CreateAPIKey(ctx context.Context, orgID int64) (string, error) {
	key := NewKey()
	if err := insertKey(ctx, db, orgID, key, nil); err != nil {
		return "", err
	}
	return key, nil
}

// CreateScopedAPIKey issues a new key for the org that carries only the
// given scopes (checked by ParseScopes). ErrNotFound when there is no
// such org.
func (db *DB) CreateScopedAPIKey(ctx context.Context, orgID int64, scopes []string) (string, error) {
	scopes, err := ParseScopes(scopes)
	if err != nil {
		return "", err
	}
	key := NewKey()
	if err := insertKey(ctx, db, orgID, key, scopes); err != nil {
		return "", err
	}
	return key, nil
}

// insertKey stores key's hash; nil scopes is stored as NULL: every scope.
func insertKey(ctx context.Context, ex sqlx.ExecerContext, orgID int64, key string, scopes []string) error {
	_, err := ex.ExecContext(ctx, `INSERT INTO api_keys (org_id, prefix, key_hash, scopes) VALUES ($1, $2, $3, $4)`,
		orgID, key[:len(keyPrefix)+6], HashKey(key), pq.StringArray(scopes))
	if isForeignKeyViolation(err) {
		return fmt.Errorf("create api key: org %d: %w", orgID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("create api key: %w", err)
	}
	return nil
}

// GrantByKey resolves a bearer key to its org and scopes; ErrNotFound for
// an unknown or revoked key.
func (db *DB) GrantByKey(ctx context.Context, key string) (KeyGrant, error) {
	if !strings.HasPrefix(key, keyPrefix) {
		return KeyGrant{}, fmt.Errorf("api key: %w", ErrNotFound)
	}
	var row struct {
		Org
		Scopes pq.StringArray `db:"scopes"`
	}
	err := db.GetContext(ctx, &row, `
		SELECT o.id, o.name, o.created_at, k.scopes
		FROM api_keys k JOIN orgs o ON o.id = k.org_id
		WHERE k.key_hash = $1 AND k.revoked_at IS NULL`, HashKey(key))
	if err != nil {
		return KeyGrant{}, notFound(err, "api key")
	}
	return KeyGrant{Org: row.Org, Scopes: []string(row.Scopes)}, nil
}

// OrgByKey resolves a bearer key to its org, whatever its scopes;
// ErrNotFound for an unknown or revoked key.
func (db *DB) OrgByKey(ctx context.Context, key string) (Org, error) {
	g, err := db.GrantByKey(ctx, key)
	return g.Org, err
}

// OrgIDs lists every org, for the periodic tasks that run per org.
func (db *DB) OrgIDs(ctx context.Context) ([]int64, error) {
	var ids []int64
	if err := db.SelectContext(ctx, &ids, `SELECT id FROM orgs ORDER BY id`); err != nil {
		return nil, fmt.Errorf("list orgs: %w", err)
	}
	return ids, nil
}
