"""Properties of the delivery workflows that a schema check cannot see.

check-jsonschema (.ci/policy.sh) proves the files are valid GitHub workflows; these tests pin down
what makes them safe: minimal permissions, OIDC instead of stored keys, one `pulumi up` per stack at
a time, an approval gate on prod, and previews that apply the policy pack and edit one comment.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
PR_FILE = WORKFLOWS / "pull-request.yml"
DEPLOY_FILE = WORKFLOWS / "deploy.yml"

PULUMI_ACTION = "pulumi/actions@v6"
AWS_ACTION = "aws-actions/configure-aws-credentials@"
ALLOWED_PERMISSIONS = {
    "pull-request": {"contents": "read", "id-token": "write", "pull-requests": "write"},
    "deploy": {"contents": "read", "id-token": "write"},
}


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def triggers(workflow: dict) -> dict:
    # YAML 1.1 reads the bare key `on` as the boolean True.
    return workflow.get("on", workflow.get(True))


def steps_using(job: dict, action_prefix: str) -> list[dict]:
    return [s for s in job.get("steps", []) if str(s.get("uses", "")).startswith(action_prefix)]


def pulumi_jobs(workflow: dict) -> dict[str, dict]:
    return {name: job for name, job in workflow["jobs"].items() if steps_using(job, PULUMI_ACTION)}


def stacks_of(job: dict) -> list[str]:
    [step] = steps_using(job, PULUMI_ACTION)
    stack = step["with"]["stack-name"]
    if stack == "${{ matrix.stack }}":
        return list(job["strategy"]["matrix"]["stack"])
    return [stack]


@pytest.fixture(scope="module")
def pr() -> dict:
    return load(PR_FILE)


@pytest.fixture(scope="module")
def deploy() -> dict:
    return load(DEPLOY_FILE)


def all_workflows():
    return sorted(WORKFLOWS.glob("*.yml")) + sorted(WORKFLOWS.glob("*.yaml"))


def test_the_two_workflows_exist():
    assert {p.name for p in all_workflows()} >= {"pull-request.yml", "deploy.yml"}


# --- permissions -------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [PR_FILE, DEPLOY_FILE], ids=lambda p: p.name)
def test_permissions_are_minimal(path):
    workflow = load(path)
    allowed = ALLOWED_PERMISSIONS[path.stem]
    assert workflow["permissions"] == {"contents": "read"}
    for name, job in workflow["jobs"].items():
        permissions = job.get("permissions")
        assert isinstance(permissions, dict), f"{name} must state its permissions"
        for scope, level in permissions.items():
            assert allowed.get(scope) == level, (name, scope)
        if name in pulumi_jobs(workflow):
            assert permissions["id-token"] == "write", name
        else:
            assert permissions == {"contents": "read"}, name


def test_only_the_preview_may_comment(pr, deploy):
    assert pr["jobs"]["preview"]["permissions"]["pull-requests"] == "write"
    assert all("pull-requests" not in job["permissions"] for job in deploy["jobs"].values())


# --- credentials -------------------------------------------------------------------------------

LONG_LIVED = re.compile(
    r"AWS_SECRET_ACCESS_KEY|AWS_ACCESS_KEY_ID|aws-secret-access-key|aws-access-key-id|AKIA[0-9A-Z]{16}")


@pytest.mark.parametrize("path", all_workflows(), ids=lambda p: p.name)
def test_no_long_lived_cloud_keys(path):
    assert not LONG_LIVED.search(path.read_text())


@pytest.mark.parametrize("path", [PR_FILE, DEPLOY_FILE], ids=lambda p: p.name)
def test_cloud_credentials_come_from_oidc_before_pulumi_runs(path):
    for name, job in pulumi_jobs(load(path)).items():
        [aws] = steps_using(job, AWS_ACTION)
        assert re.fullmatch(r"\$\{\{ vars\.AWS_[A-Z_]*ROLE_ARN \}\}", aws["with"]["role-to-assume"]), name
        assert set(aws["with"]) <= {"role-to-assume", "role-session-name", "aws-region"}, name
        steps = job["steps"]
        assert steps.index(aws) < steps.index(steps_using(job, PULUMI_ACTION)[0]), name


@pytest.mark.parametrize("path", [PR_FILE, DEPLOY_FILE], ids=lambda p: p.name)
def test_backend_and_passphrase_come_from_settings(path):
    for name, job in pulumi_jobs(load(path)).items():
        assert job["env"]["PULUMI_BACKEND_URL"] == "${{ vars.PULUMI_BACKEND_URL }}", name
        assert job["env"]["PULUMI_CONFIG_PASSPHRASE"] == "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}", name
        [step] = steps_using(job, PULUMI_ACTION)
        assert step["with"]["cloud-url"] == "${{ vars.PULUMI_BACKEND_URL }}", name


# --- pull-request previews ----------------------------------------------------------------------

def test_pull_request_runs_tests_then_previews_every_stack(pr):
    assert "pull_request" in triggers(pr)
    preview = pr["jobs"]["preview"]
    assert preview["needs"] == "test"
    assert stacks_of(preview) == ["dev", "staging", "prod", "onprem", "single"]
    assert preview["strategy"]["fail-fast"] is False
    test_runs = " ".join(s.get("run", "") for s in pr["jobs"]["test"]["steps"])
    assert "pip install -r requirements-dev.txt" in test_runs, "the suite needs the dev requirements (pytest, paramiko)"
    assert "pytest tests" in test_runs


def test_preview_comments_once_per_stack_and_edits_in_place(pr):
    [step] = steps_using(pr["jobs"]["preview"], PULUMI_ACTION)
    assert step["with"]["command"] == "preview"
    assert step["with"]["stack-name"] == "${{ matrix.stack }}"
    assert step["with"]["comment-on-pr"] is True
    assert step["with"]["edit-pr-comment"] is True


def test_preview_skips_forks_that_cannot_get_credentials(pr):
    assert pr["jobs"]["preview"]["if"] == "github.event.pull_request.head.repo.full_name == github.repository"


def test_previews_never_share_the_deploy_concurrency_group(pr, deploy):
    # A pending job displaces the pending one of its group, so a shared group could drop a deploy.
    group = pr["jobs"]["preview"]["concurrency"]["group"]
    assert group.startswith("preview-")
    assert "github.event.pull_request.number" in group and "matrix.stack" in group
    assert all(job["concurrency"]["group"].startswith("pulumi-") for job in pulumi_jobs(deploy).values())


# --- deploys -----------------------------------------------------------------------------------

def test_deploy_runs_on_push_to_main_only(deploy):
    on = triggers(deploy)
    assert set(on) == {"push"}
    assert on["push"]["branches"] == ["main"]


def test_deploy_ups_dev_staging_and_prod(deploy):
    jobs = pulumi_jobs(deploy)
    for job in jobs.values():
        [step] = steps_using(job, PULUMI_ACTION)
        assert step["with"]["command"] == "up"
    assert sorted(s for job in jobs.values() for s in stacks_of(job)) == ["dev", "prod", "staging"]
    assert all(job["needs"] for job in jobs.values())


def test_one_up_per_stack_at_a_time(deploy):
    groups = []
    for name, job in pulumi_jobs(deploy).items():
        concurrency = job["concurrency"]
        assert concurrency["cancel-in-progress"] is False, name
        for stack in stacks_of(job):
            groups.append(concurrency["group"].replace("${{ matrix.stack }}", stack))
    assert sorted(groups) == ["pulumi-dev", "pulumi-prod", "pulumi-staging"]


def test_prod_waits_for_lower_stacks_and_a_protected_environment(deploy):
    jobs = pulumi_jobs(deploy)
    [(prod_name, prod)] = [(n, j) for n, j in jobs.items() if stacks_of(j) == ["prod"]]
    assert prod["environment"] == "prod"
    lower = [n for n, j in jobs.items() if "dev" in stacks_of(j)]
    assert prod["needs"] in (lower[0], lower)


def test_dev_deploys_without_the_prod_environment(deploy):
    [dev] = [j for j in pulumi_jobs(deploy).values() if "dev" in stacks_of(j)]
    assert dev["environment"] == "${{ matrix.stack }}"
    assert "prod" not in stacks_of(dev)


# --- both ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [PR_FILE, DEPLOY_FILE], ids=lambda p: p.name)
def test_policy_pack_is_applied_from_its_own_venv(path):
    pack_venv = load(ROOT / "policy" / "PulumiPolicy.yaml")["runtime"]["options"]["virtualenv"]
    for name, job in pulumi_jobs(load(path)).items():
        [step] = steps_using(job, PULUMI_ACTION)
        assert step["with"]["policyPacks"] == "policy", name
        runs = " ".join(s.get("run", "") for s in job["steps"])
        assert f"python -m venv policy/{pack_venv}" in runs, name
        assert f"policy/{pack_venv}/bin/python -m pip install -r policy/requirements.txt" in runs, name


@pytest.mark.parametrize("path", [PR_FILE, DEPLOY_FILE], ids=lambda p: p.name)
def test_actions_are_the_expected_majors(path):
    uses = {s["uses"] for job in load(path)["jobs"].values() for s in job["steps"] if "uses" in s}
    expected = {"actions/checkout@v4", "actions/setup-python@v5", PULUMI_ACTION, AWS_ACTION + "v4"}
    assert uses <= expected
    assert {"actions/checkout@v4", "actions/setup-python@v5"} <= uses


@pytest.mark.parametrize("path", [PR_FILE, DEPLOY_FILE], ids=lambda p: p.name)
def test_run_scripts_take_no_expressions(path):
    # Values reach scripts through env, never `${{ }}` pasted into shell (script injection).
    for job in load(path)["jobs"].values():
        for step in job["steps"]:
            assert "${{" not in step.get("run", "")


def test_every_stack_file_is_previewed(pr):
    previewed = set(stacks_of(pr["jobs"]["preview"]))
    present = {p.name[len("Pulumi."):-len(".yaml")] for p in (ROOT / "stacks").glob("Pulumi.*.yaml")}
    assert present <= previewed, "add new stacks to the preview matrix in pull-request.yml"


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_scripts_are_shellcheck_clean(tmp_path):
    scripts = [ROOT / ".ci" / "policy.sh"]
    for path in (PR_FILE, DEPLOY_FILE):
        for job_name, job in load(path)["jobs"].items():
            for index, step in enumerate(job["steps"]):
                if "run" in step:
                    script = tmp_path / f"{path.stem}-{job_name}-{index}.sh"
                    script.write_text("#!/usr/bin/env bash\nset -eo pipefail\n" + step["run"])
                    scripts.append(script)
    result = subprocess.run(["shellcheck", *map(str, scripts)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_deploys_run_where_ssh_to_the_nodes_is_allowed():
    """`up` runs remote commands over SSH; nodes accept SSH only from adminCidrs, never GitHub's runners."""
    deploy = yaml.safe_load((ROOT / ".github" / "workflows" / "deploy.yml").read_text())
    for name in ("up", "up-prod"):
        assert deploy["jobs"][name]["runs-on"] == ["self-hosted", "linux", "kube-ha-deploy"], name
