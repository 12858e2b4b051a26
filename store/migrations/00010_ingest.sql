-- +goose Up

-- Keyset pagination of GET /v1/modules/{module}/records reads (org_id, id).

CREATE INDEX accounts_org_id_idx ON accounts (org_id, id);
CREATE INDEX contacts_org_id_idx ON contacts (org_id, id);
CREATE INDEX leads_org_id_idx ON leads (org_id, id);
CREATE INDEX products_org_id_idx ON products (org_id, id);
CREATE INDEX deals_org_id_idx ON deals (org_id, id);
CREATE INDEX deal_line_items_org_id_idx ON deal_line_items (org_id, id);
CREATE INDEX cases_org_id_idx ON cases (org_id, id);
CREATE INDEX success_plans_org_id_idx ON success_plans (org_id, id);
CREATE INDEX objectives_org_id_idx ON objectives (org_id, id);
CREATE INDEX kpis_org_id_idx ON kpis (org_id, id);
CREATE INDEX business_challenges_org_id_idx ON business_challenges (org_id, id);
CREATE INDEX playbooks_org_id_idx ON playbooks (org_id, id);
CREATE INDEX playbook_tasks_org_id_idx ON playbook_tasks (org_id, id);
CREATE INDEX projects_org_id_idx ON projects (org_id, id);
CREATE INDEX activities_org_id_idx ON activities (org_id, id);
CREATE INDEX records_org_module_id_idx ON records (org_id, module, id);

-- Deleting a record clears or cascades the foreign keys that point at it;
-- these columns had no index, so each delete would scan the whole table.
CREATE INDEX activities_case_idx ON activities (case_id) WHERE case_id IS NOT NULL;
CREATE INDEX activities_success_plan_idx ON activities (success_plan_id) WHERE success_plan_id IS NOT NULL;
CREATE INDEX activities_objective_idx ON activities (objective_id) WHERE objective_id IS NOT NULL;
CREATE INDEX activities_kpi_idx ON activities (kpi_id) WHERE kpi_id IS NOT NULL;
CREATE INDEX activities_business_challenge_idx ON activities (business_challenge_id) WHERE business_challenge_id IS NOT NULL;
CREATE INDEX activities_playbook_task_idx ON activities (playbook_task_id) WHERE playbook_task_id IS NOT NULL;
CREATE INDEX objectives_success_plan_idx ON objectives (success_plan_id) WHERE success_plan_id IS NOT NULL;
CREATE INDEX business_challenges_success_plan_idx ON business_challenges (success_plan_id) WHERE success_plan_id IS NOT NULL;

-- +goose Down
DROP INDEX accounts_org_id_idx;
DROP INDEX contacts_org_id_idx;
DROP INDEX leads_org_id_idx;
DROP INDEX products_org_id_idx;
DROP INDEX deals_org_id_idx;
DROP INDEX deal_line_items_org_id_idx;
DROP INDEX cases_org_id_idx;
DROP INDEX success_plans_org_id_idx;
DROP INDEX objectives_org_id_idx;
DROP INDEX kpis_org_id_idx;
DROP INDEX business_challenges_org_id_idx;
DROP INDEX playbooks_org_id_idx;
DROP INDEX playbook_tasks_org_id_idx;
DROP INDEX projects_org_id_idx;
DROP INDEX activities_org_id_idx;
DROP INDEX records_org_module_id_idx;
DROP INDEX activities_case_idx;
DROP INDEX activities_success_plan_idx;
DROP INDEX activities_objective_idx;
DROP INDEX activities_kpi_idx;
DROP INDEX activities_business_challenge_idx;
DROP INDEX activities_playbook_task_idx;
DROP INDEX objectives_success_plan_idx;
DROP INDEX business_challenges_success_plan_idx;
