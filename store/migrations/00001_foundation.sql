-- +goose Up

-- Tenancy ------------------------------------------------------------------

CREATE TABLE orgs (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL UNIQUE CHECK (name <> ''),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Only the SHA-256 of a key is stored; the key itself is shown once.
CREATE TABLE api_keys (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id     bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    prefix     text NOT NULL,
    key_hash   bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE INDEX api_keys_org_idx ON api_keys (org_id);

-- Users of the calling app, known by their external id (X-User-ID).
CREATE TABLE users (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id      bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    external_id text NOT NULL CHECK (external_id <> ''),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, external_id)
);

-- Jobs: one row per accepted task; id is the asynq task id ------------------

CREATE TABLE jobs (
    id              text PRIMARY KEY,
    org_id          bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id         text,
    type            text NOT NULL,
    queue           text NOT NULL,
    state           text NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'running', 'retrying', 'succeeded', 'failed', 'cancelled')),
    progress        smallint NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    attempts        integer NOT NULL DEFAULT 0,
    max_retry       integer NOT NULL DEFAULT 0,
    payload         jsonb NOT NULL DEFAULT '{}',
    result          jsonb,
    error           text,
    idempotency_key text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX jobs_idempotency_idx ON jobs (org_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_org_created_idx ON jobs (org_id, created_at DESC);

-- CRM modules ----------------------------------------------------------------
-- Every CRM row: org_id, external_id (the app's id, unique per org), state,
-- attributes (custom fields), created_at, updated_at.

CREATE TABLE accounts (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id         bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    external_id    text NOT NULL CHECK (external_id <> ''),
    state          text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'draft', 'incomplete')),
    name           text NOT NULL DEFAULT '',
    industry       text,
    employees      integer,
    annual_revenue numeric(18, 2),
    product_family text,
    website        text,
    city           text,
    country        text,
    owner          text,
    attributes     jsonb NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, external_id)
);

CREATE TABLE contacts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id          bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    external_id     text NOT NULL CHECK (external_id <> ''),
    state           text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'draft', 'incomplete')),
    account_id      bigint REFERENCES accounts (id) ON DELETE SET NULL,
    first_name      text,
    last_name       text,
    email           text,
    phone           text,
    title           text,
    lifecycle_stage text,
    owner           text,
    attributes      jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, external_id)
);
CREATE INDEX contacts_account_idx ON contacts (account_id);

CREATE TABLE leads (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id          bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    external_id     text NOT NULL CHECK (external_id <> ''),
    state           text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'draft', 'incomplete')),
    first_name      text,
    last_name       text,
    company         text,
    email           text,
    phone           text,
    lead_source     text,
    lead_status     text,
    potential_value numeric(18, 2),
    converted       boolean NOT NULL DEFAULT false,
    owner           text,
    attributes      jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, external_id)
);

CREATE TABLE products (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id      bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    external_id text NOT NULL CHECK (external_id <> ''),
    state       text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'draft', 'incomplete')),
    name        text NOT NULL DEFAULT '',
    code        text,
    family      text,
    unit_price  numeric(18, 2),
    attributes  jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, external_id)
);

CREATE TABLE deals (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id      bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    external_id text NOT NULL CHECK (external_id <> ''),
    state       text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'draft', 'incomplete')),
    account_id  bigint REFERENCES accounts (id) ON DELETE SET NULL,
    contact_id  bigint REFERENCES contacts (id) ON DELETE SET NULL,
    name        text NOT NULL DEFAULT '',
    stage       text,
    deal_type   text,
    amount      numeric(18, 2),
    probability smallint CHECK (probability BETWEEN 0 AND 100),
    close_date  date,
    next_step   text,
    competitor  text,
    owner       text,
    attributes  jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, external_id)
);
CREATE INDEX deals_account_idx ON deals (account_id);
CREATE INDEX deals_contact_idx ON deals (contact_id);

CREATE TABLE deal_line_items (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id      bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    external_id text NOT NULL CHECK (external_id <> ''),
    state       text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'draft', 'incomplete')),
    deal_id     bigint REFERENCES deals (id) ON DELETE CASCADE,
    product_id  bigint REFERENCES products (id) ON DELETE SET NULL,
    quantity    numeric(18, 4),
    unit_price  numeric(18, 2),
    total       numeric(18, 2),
    attributes  jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, external_id)
);
CREATE INDEX deal_line_items_deal_idx ON deal_line_items (deal_id);
CREATE INDEX deal_line_items_product_idx ON deal_line_items (product_id);

CREATE TABLE cases (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id      bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    external_id text NOT NULL CHECK (external_id <> ''),
    state       text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'draft', 'incomplete')),
    account_id  bigint REFERENCES accounts (id) ON DELETE SET NULL,
    contact_id  bigint REFERENCES contacts (id) ON DELETE SET NULL,
    subject     text NOT NULL DEFAULT '',
    status      text,
    priority    text,
    escalated   boolean NOT NULL DEFAULT false,
    opened_at   timestamptz,
    closed_at   timestamptz,
    attributes  jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, external_id)
);
CREATE INDEX cases_account_idx ON cases (account_id);

CREATE TABLE success_plans (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id      bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    external_id text NOT NULL CHECK (external_id <> ''),
    state       text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'draft', 'incomplete')),
    account_id  bigint REFERENCES accounts (id) ON DELETE CASCADE,
    name        text NOT NULL DEFAULT '',
    status      text,
    start_date  date,
    end_date    date,
    attributes  jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, external_id)
);
CREATE INDEX success_plans_account_idx ON success_plans (account_id);

CREATE TABLE objectives (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id          bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    external_id     text NOT NULL CHECK (external_id <> ''),
    state           text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'draft', 'incomplete')),
    account_id      bigint REFERENCES accounts (id) ON DELETE CASCADE,
    success_plan_id bigint REFERENCES success_plans (id) ON DELETE SET NULL,
    name            text NOT NULL DEFAULT '',
    status          text,
    description     text,
    due_date        date,
    attributes      jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, external_id)
);
CREATE INDEX objectives_account_idx ON objectives (account_id);

-- KPI status is one of the five Certinia statuses.
CREATE TABLE kpis (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id       bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    external_id  text NOT NULL CHECK (external_id <> ''),
    state        text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'draft', 'incomplete')),
    objective_id bigint REFERENCES objectives (id) ON DELETE CASCADE,
    account_id   bigint REFERENCES accounts (id) ON DELETE CASCADE,
    name         text NOT NULL DEFAULT '',
    status       text CHECK (status IN ('Not Started', 'On Track', 'Off Track', 'Blocked', 'Completed')),
    target       numeric(18, 2),
    actual       numeric(18, 2),
    unit         text,
    comment      text,
    attributes   jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, external_id)
);
CREATE INDEX kpis_objective_idx ON kpis (objective_id);
CREATE INDEX kpis_account_idx ON kpis (account_id);

CREATE TABLE business_challenges (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id          bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    external_id     text NOT NULL CHECK (external_id <> ''),
    state           text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'draft', 'incomplete')),
    account_id      bigint REFERENCES accounts (id) ON DELETE CASCADE,
    success_plan_id bigint REFERENCES success_plans (id) ON DELETE SET NULL,
    name            text NOT NULL DEFAULT '',
    description     text,
    status          text,
    attributes      jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, external_id)
);
CREATE INDEX business_challenges_account_idx ON business_challenges (account_id);

CREATE TABLE playbooks (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id      bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    external_id text NOT NULL CHECK (external_id <> ''),
    state       text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'draft', 'incomplete')),
    account_id  bigint REFERENCES accounts (id) ON DELETE CASCADE,
    name        text NOT NULL DEFAULT '',
    status      text,
    attributes  jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, external_id)
);
CREATE INDEX playbooks_account_idx ON playbooks (account_id);

CREATE TABLE playbook_tasks (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id      bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    external_id text NOT NULL CHECK (external_id <> ''),
    state       text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'draft', 'incomplete')),
    playbook_id bigint REFERENCES playbooks (id) ON DELETE CASCADE,
    name        text NOT NULL DEFAULT '',
    status      text,
    due_date    date,
    owner       text,
    attributes  jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, external_id)
);
CREATE INDEX playbook_tasks_playbook_idx ON playbook_tasks (playbook_id);

CREATE TABLE projects (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id      bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    external_id text NOT NULL CHECK (external_id <> ''),
    state       text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'draft', 'incomplete')),
    account_id  bigint REFERENCES accounts (id) ON DELETE CASCADE,
    name        text NOT NULL DEFAULT '',
    status      text,
    health      text CHECK (health IN ('green', 'amber', 'red')),
    attributes  jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, external_id)
);
CREATE INDEX projects_account_idx ON projects (account_id);

-- Activities are the touchpoints of seed 003: signals come from the customer,
-- follow-ups from a CRM user. Deleting the lead or contact deletes its trail.
CREATE TABLE activities (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id                bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    external_id           text NOT NULL CHECK (external_id <> ''),
    state                 text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'draft', 'incomplete')),
    kind                  text NOT NULL DEFAULT 'note'
                          CHECK (kind IN ('call', 'meeting', 'email', 'note', 'task', 'cs_activity', 'survey', 'visit', 'ticket', 'social', 'event')),
    medium                text NOT NULL
                          CHECK (medium IN ('email', 'call', 'meeting', 'survey', 'desk', 'facebook', 'twitter', 'backstage', 'webinar', 'visit', 'portal')),
    direction             text NOT NULL CHECK (direction IN ('signal', 'follow_up')),
    status                text,
    user_id               text,
    occurred_at           timestamptz NOT NULL,
    subject               text,
    notes                 text,
    questions_answered    integer CHECK (questions_answered >= 0),
    time_spent_seconds    integer CHECK (time_spent_seconds >= 0),
    pages_visited         integer CHECK (pages_visited >= 0),
    contact_id            bigint REFERENCES contacts (id) ON DELETE CASCADE,
    lead_id               bigint REFERENCES leads (id) ON DELETE CASCADE,
    account_id            bigint REFERENCES accounts (id) ON DELETE SET NULL,
    deal_id               bigint REFERENCES deals (id) ON DELETE SET NULL,
    case_id               bigint REFERENCES cases (id) ON DELETE SET NULL,
    success_plan_id       bigint REFERENCES success_plans (id) ON DELETE SET NULL,
    objective_id          bigint REFERENCES objectives (id) ON DELETE SET NULL,
    kpi_id                bigint REFERENCES kpis (id) ON DELETE SET NULL,
    business_challenge_id bigint REFERENCES business_challenges (id) ON DELETE SET NULL,
    playbook_task_id      bigint REFERENCES playbook_tasks (id) ON DELETE SET NULL,
    attributes            jsonb NOT NULL DEFAULT '{}',
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, external_id)
);
-- The interactions trail and the orphan computation read by (record, time).
CREATE INDEX activities_contact_time_idx ON activities (contact_id, occurred_at) WHERE contact_id IS NOT NULL;
CREATE INDEX activities_lead_time_idx ON activities (lead_id, occurred_at) WHERE lead_id IS NOT NULL;
CREATE INDEX activities_account_time_idx ON activities (account_id, occurred_at) WHERE account_id IS NOT NULL;
CREATE INDEX activities_deal_idx ON activities (deal_id) WHERE deal_id IS NOT NULL;

-- Custom modules: one generic table, keyed by module name.
CREATE TABLE records (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id      bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    module      text NOT NULL CHECK (module ~ '^custom_[a-z0-9_]{1,56}$'),
    external_id text NOT NULL CHECK (external_id <> ''),
    state       text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'draft', 'incomplete')),
    name        text NOT NULL DEFAULT '',
    attributes  jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, module, external_id)
);

-- History of tracked picklists (lead status, deal stage, contact lifecycle
-- stage): the milestones of seed 003. record_id points into the table named
-- by module, so rows are deleted with the record by the store, not by a FK.
CREATE TABLE field_history (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id     bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    module     text NOT NULL,
    record_id  bigint NOT NULL,
    field      text NOT NULL,
    old_value  text,
    new_value  text,
    changed_at timestamptz NOT NULL
);
CREATE INDEX field_history_record_idx ON field_history (org_id, module, record_id, changed_at);

-- Module and field mapping (seed 004): which org module plays a system role
-- and which org field maps to each system field.
CREATE TABLE module_mappings (
    org_id     bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    role       text NOT NULL CHECK (role IN ('accounts', 'contacts', 'deals', 'products')),
    module     text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, role)
);

CREATE TABLE field_mappings (
    org_id       bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    role         text NOT NULL,
    system_field text NOT NULL,
    org_field    text NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, role, system_field)
);

-- +goose Down
DROP TABLE field_mappings, module_mappings, field_history, records, activities,
    projects, playbook_tasks, playbooks, business_challenges, kpis, objectives,
    success_plans, cases, deal_line_items, deals, products, leads, contacts,
    accounts, jobs, users, api_keys, orgs;
