#!/usr/bin/env bash
# Policy pack tests and the workflow schema check, in a venv of their own.
#
# Usage: bash .ci/policy.sh [VENV_DIR]   (default: a reusable venv under the temp directory)
#
# The venv is separate from the program's venv/ on purpose: pulumi-policy pins protobuf ~=5.29 and
# grpcio ~=1.71, and Pulumi runs the pack in its own interpreter (policy/venv) anyway, so the
# program's SDKs stay free of those pins. docs/delivery.md has the details.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv_dir="${1:-${TMPDIR:-/tmp}/kube-ha-policy-venv}"
python="${PYTHON:-python3}"

cd "$root"

if [ ! -x "$venv_dir/bin/python" ]; then
    "$python" -m venv "$venv_dir"
fi
"$venv_dir/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r policy/requirements.txt "check-jsonschema>=0.29,<1" "pytest>=8,<10"
"$venv_dir/bin/python" -m pip check

# The schema ships inside check-jsonschema, so this needs no network.
"$venv_dir/bin/check-jsonschema" --builtin-schema vendor.github-workflows .github/workflows/*.yml

# --noconftest: tests/conftest.py belongs to the program's tests and may import packages
# (pulumi_aws, paramiko, ...) that this venv deliberately lacks; these two files need none of it.
"$venv_dir/bin/python" -m pytest --noconftest -q tests/test_policy_rules.py tests/test_policy_pack.py
