-- +goose Up
-- ABM module, field and lookup mapping (seed 004). module_mappings and
-- field_mappings come from the foundation; field_mappings holds only the
-- fields read from an attribute (a typed column maps to the system field
-- of its own name without a row), and such a field carries the criteria
-- type its value is read as.
ALTER TABLE field_mappings
    ADD COLUMN field_type text NOT NULL DEFAULT 'text' CHECK (field_type IN ('text', 'number', 'date')),
    ADD CONSTRAINT field_mappings_role_check CHECK (role IN ('accounts', 'contacts', 'deals', 'products'));

-- The lookup field that links two roles, e.g. 'contacts.account' (a typed
-- lookup) or 'contacts.attributes.company_ref' (an attribute holding the
-- related record's external id). A link without a row has no lookup
-- (only accounts_products may be left so).
CREATE TABLE lookup_mappings (
    org_id     bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    link       text NOT NULL CHECK (link IN
                   ('accounts_contacts', 'accounts_deals', 'products_deals', 'deals_contacts', 'accounts_products')),
    field      text NOT NULL CHECK (field <> ''),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, link)
);

-- Readers of a custom attribute as a number or a date: NULL for a value
-- that is not one, never an error, so one bad attribute cannot fail a
-- whole segment query. plpgsql, not SQL, so the planner never inlines the
-- cast and folds it against a constant outside the guard. The length bound
-- keeps the digits within numeric's range.
-- +goose StatementBegin
CREATE FUNCTION crmq_attr_number(v text) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    IF v IS NULL OR length(v) > 400 OR v !~ '^[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]{1,3})?$' THEN
        RETURN NULL;
    END IF;
    RETURN v::numeric;
END
$$;
-- +goose StatementEnd

-- A date attribute is read from its first ten characters, YYYY-MM-DD (a
-- timestamp's date as written, not moved to UTC); an impossible date
-- (2023-02-30, month 13, year 0) is NULL. make_date never sees a value
-- outside its range, so the function is immutable and never raises.
-- +goose StatementBegin
CREATE FUNCTION crmq_attr_date(v text) RETURNS date
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    y int;
    m int;
    d int;
BEGIN
    IF v IS NULL OR v !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ]|$)' THEN
        RETURN NULL;
    END IF;
    y := substr(v, 1, 4)::int;
    m := substr(v, 6, 2)::int;
    d := substr(v, 9, 2)::int;
    IF y < 1 OR m < 1 OR m > 12 OR d < 1
       OR d > extract(day FROM make_date(y, m, 1) + interval '1 month' - interval '1 day') THEN
        RETURN NULL;
    END IF;
    RETURN make_date(y, m, d);
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION crmq_attr_date(text);
DROP FUNCTION crmq_attr_number(text);
DROP TABLE lookup_mappings;
ALTER TABLE field_mappings
    DROP CONSTRAINT field_mappings_role_check,
    DROP COLUMN field_type;
