-- +goose Up
-- account_recommendations is derived data: a recommendations refresh
-- deletes the org's rows and writes them again (13.7 million on the
-- million-account bench set), always from a join over existing accounts,
-- products and the org. Its three foreign keys checked every written row
-- (one lookup and row lock per key per row): 73% of the time of writing a
-- chunk's 274,183 rows (8.3 s with them, 2.2 s without; psql, the same
-- rows deleted and written again in one transaction, rolled back).
-- What the keys also gave, rows deleted with their account or product
-- (ON DELETE CASCADE), is kept by a statement-level trigger on each,
-- which costs per DELETE statement, not per written row; an org's rows go
-- with its accounts, which its deletion deletes. A refresh that runs while
-- one of its accounts is deleted may write that account's rows (the key
-- made the delete wait, or failed the refresh); the next refresh, which
-- starts by deleting the org's rows, drops them.
ALTER TABLE account_recommendations
    DROP CONSTRAINT account_recommendations_org_id_fkey,
    DROP CONSTRAINT account_recommendations_account_id_fkey,
    DROP CONSTRAINT account_recommendations_product_id_fkey;

-- +goose StatementBegin
CREATE FUNCTION crmq_recommendations_of_gone_accounts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM account_recommendations r USING gone g WHERE r.org_id = g.org_id AND r.account_id = g.id;
    RETURN NULL;
END $$;

CREATE FUNCTION crmq_recommendations_of_gone_products() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM account_recommendations r USING gone g WHERE r.org_id = g.org_id AND r.product_id = g.id;
    RETURN NULL;
END $$;
-- +goose StatementEnd

CREATE TRIGGER recommendations_of_gone_accounts AFTER DELETE ON accounts
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION crmq_recommendations_of_gone_accounts();
CREATE TRIGGER recommendations_of_gone_products AFTER DELETE ON products
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION crmq_recommendations_of_gone_products();

-- +goose Down
DROP TRIGGER recommendations_of_gone_accounts ON accounts;
DROP TRIGGER recommendations_of_gone_products ON products;
DROP FUNCTION crmq_recommendations_of_gone_accounts();
DROP FUNCTION crmq_recommendations_of_gone_products();
-- Rows whose parent went while the keys were away would fail the keys.
DELETE FROM account_recommendations r WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = r.account_id)
    OR NOT EXISTS (SELECT 1 FROM products p WHERE p.id = r.product_id)
    OR NOT EXISTS (SELECT 1 FROM orgs o WHERE o.id = r.org_id);
ALTER TABLE account_recommendations
    ADD CONSTRAINT account_recommendations_org_id_fkey FOREIGN KEY (org_id) REFERENCES orgs (id) ON DELETE CASCADE,
    ADD CONSTRAINT account_recommendations_account_id_fkey FOREIGN KEY (account_id) REFERENCES accounts (id) ON DELETE CASCADE,
    ADD CONSTRAINT account_recommendations_product_id_fkey FOREIGN KEY (product_id) REFERENCES products (id) ON DELETE CASCADE;
