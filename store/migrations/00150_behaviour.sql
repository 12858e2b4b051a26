-- +goose Up
-- Behavioural techniques (seed 004: engagement, voice of the customer,
-- recommendations).

-- A technique's 0-100 score beside its label: the engagement score, or
-- the highest purchase probability of an account's recommendations. NULL
-- for the other techniques.
ALTER TABLE account_labels ADD COLUMN score smallint CHECK (score BETWEEN 0 AND 100);

-- The voice-of-the-customer analysis of each customer text, cached by the
-- text's row and its updated_at: a refresh analyses only texts that are
-- new, changed, or were analysed under other settings (analysis_key is a
-- hash of the keyword and competitor lists and the analyser's version).
-- keywords and competitors hold one entry per mention.
CREATE TABLE voc_texts (
    org_id            bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    source            text NOT NULL CHECK (source IN ('activity', 'case')),
    source_id         bigint NOT NULL,
    source_updated_at timestamptz NOT NULL,
    analysis_key      text NOT NULL,
    sentiment         text NOT NULL CHECK (sentiment IN ('positive', 'negative', 'neutral')),
    compound          real NOT NULL,
    intent            text NOT NULL,
    keywords          text[] NOT NULL DEFAULT '{}',
    competitors       text[] NOT NULL DEFAULT '{}',
    analysed_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, source, source_id)
);

-- What the recommendations technique recommends to each account: one row
-- per account, type and product, with its purchase probability and the
-- evidence (rule, support, confidence, lift, purchases) it rests on.
-- basis_product_id is the product the recommendation follows from (the
-- last purchase for next buy, the rule's antecedent for cross-sell, the
-- owned half of a bundle, the product itself for repeat buy).
CREATE TABLE account_recommendations (
    org_id           bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    account_id       bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    kind             text NOT NULL CHECK (kind IN ('first_buy', 'next_buy', 'repeat_buy', 'cross_sell', 'bundle')),
    product_id       bigint NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    basis_product_id bigint,
    probability      smallint NOT NULL CHECK (probability BETWEEN 0 AND 100),
    evidence         jsonb NOT NULL DEFAULT '{}',
    run_id           text NOT NULL,
    PRIMARY KEY (org_id, account_id, kind, product_id)
);

-- +goose Down
DROP TABLE account_recommendations, voc_texts;
ALTER TABLE account_labels DROP COLUMN score;
