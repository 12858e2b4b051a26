-- +goose Up
-- Which classifier gave a cached VoC text its intent: the rule table
-- ('rules'), the model ('llm', the org's optional Gemini classifier), or
-- the rule table because the model's answer did not cover the text
-- ('fallback'). A refresh under the other classifier analyses the text
-- again; existing rows were all made by the rule table. A constant
-- default: no table rewrite.
ALTER TABLE voc_texts
    ADD COLUMN intent_by text NOT NULL DEFAULT 'rules' CHECK (intent_by IN ('rules', 'llm', 'fallback'));

-- +goose Down
ALTER TABLE voc_texts DROP COLUMN intent_by;
