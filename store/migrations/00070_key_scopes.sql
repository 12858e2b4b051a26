-- +goose Up
-- The scopes an API key carries; NULL grants every scope, including scopes
-- added later, so keys made before scopes existed keep working as they did.
-- Which names are scopes is checked in Go (store.ParseScopes), the one
-- list: a CHECK naming them would be a second list, and adding a scope a
-- migration. The database holds the shape: at least one scope, no NULL
-- element. A name no route asks for grants nothing, so a stale name fails
-- closed.
ALTER TABLE api_keys ADD COLUMN scopes text[]
    CHECK (scopes IS NULL OR (cardinality(scopes) > 0 AND array_position(scopes, NULL) IS NULL));

-- +goose Down
ALTER TABLE api_keys DROP COLUMN scopes;
