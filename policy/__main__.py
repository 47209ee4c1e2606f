"""kube-ha policy pack: wires the pure rules in rules.py into pulumi_policy.

Pulumi runs this file as ``__main__`` (``runpy`` on the pack directory, which also puts the
directory on sys.path so ``import rules`` resolves); only then is the PolicyPack served, because
constructing it starts a gRPC server that never returns. Tests import the module under another
name and inspect POLICIES.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi_policy.deserialize as sdk_deserialize
import pulumi_policy.policy as sdk_policy
import pulumi_policy.proxy as sdk_proxy
from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Secret,
    StackValidationArgs,
    StackValidationPolicy,
)

import rules

PACK_NAME = "kube-ha"

ENFORCEMENT: dict[str, EnforcementLevel] = {
    "odd-server-count": EnforcementLevel.MANDATORY,
    "pinned-version": EnforcementLevel.MANDATORY,
    "no-world-open-admin-ports": EnforcementLevel.MANDATORY,
    "imdsv2-required": EnforcementLevel.MANDATORY,
    "root-volume-encrypted": EnforcementLevel.MANDATORY,
    # Advisory: an NLB deliberately kept in one zone (an internal test cluster) is a valid choice
    # with a cost trade-off (cross-zone traffic is billed); the program itself always turns it on.
    "nlb-cross-zone": EnforcementLevel.ADVISORY,
    "secret-outputs": EnforcementLevel.MANDATORY,
}

_UNKNOWN_SENTINELS = frozenset({
    sdk_proxy.UNKNOWN_BOOLEAN_VALUE,
    sdk_proxy.UNKNOWN_NUMBER_VALUE,
    sdk_proxy.UNKNOWN_STRING_VALUE,
    sdk_proxy.UNKNOWN_ARRAY_VALUE,
    sdk_proxy.UNKNOWN_ASSET_VALUE,
    sdk_proxy.UNKNOWN_ARCHIVE_VALUE,
    sdk_proxy.UNKNOWN_OBJECT_VALUE,
})

# pulumi-policy unwraps secrets before validations run (pulumi/pulumi-policy#241: a policy cannot
# tell whether a value is secret), although the engine sends the secret markers. The SDK's own
# Secret wrapper survives its unknown-checking proxy, so re-wrapping marked values at the one
# place the servicer deserializes lets the secret-outputs rule see them. policy/requirements.txt
# pins pulumi-policy exactly and tests/test_policy_pack.py drives the real servicer, so a change
# in these internals fails the tests instead of silently passing plain-text outputs.
_original_deserialize = sdk_deserialize.deserialize_properties
_SIG_KEY = sdk_deserialize.SPECIAL_SIG_KEY
_SECRET_SIG = sdk_deserialize.SPECIAL_SECRET_SIG


def _keep_secret_markers(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get(_SIG_KEY) == _SECRET_SIG:
            return Secret(_keep_secret_markers(value.get("value")))
        if _SIG_KEY in value:
            return _original_deserialize({"_": value})["_"]
        return {key: _keep_secret_markers(child) for key, child in value.items()}
    if isinstance(value, list):
        return [_keep_secret_markers(child) for child in value]
    return value


def deserialize_keeping_secrets(props: dict[str, Any], proxy_secrets: bool = False) -> Any:
    if proxy_secrets:
        # Remediation already keeps secrets (in its own proxy); leave that path untouched.
        return _original_deserialize(props, proxy_secrets)
    return {key: _keep_secret_markers(value) for key, value in props.items()}


deserialize_keeping_secrets.keeps_secrets = True  # type: ignore[attr-defined]

_current = getattr(sdk_policy, "deserialize_properties", None)
if _current is not _original_deserialize and not getattr(_current, "keeps_secrets", False):
    raise RuntimeError(
        "pulumi_policy.policy no longer deserializes through deserialize_properties; "
        "update deserialize_keeping_secrets in policy/__main__.py for this pulumi-policy version")
sdk_policy.deserialize_properties = deserialize_keeping_secrets


def to_plain(value: Any) -> Any:
    """SDK props (unknown-checking proxies, SDK secrets) to the plain values rules.py expects."""
    if isinstance(value, Secret):
        return rules.Secret(to_plain(value.value))
    if isinstance(value, str):
        return rules.UNKNOWN if value in _UNKNOWN_SENTINELS else value
    if isinstance(value, Mapping):
        plain = {}
        for key in value:
            try:
                plain[key] = to_plain(value[key])
            except sdk_proxy.UnknownValueError:
                plain[key] = rules.UNKNOWN
        return plain
    if isinstance(value, Sequence):
        items = []
        for index in range(len(value)):
            try:
                items.append(to_plain(value[index]))
            except sdk_proxy.UnknownValueError:
                items.append(rules.UNKNOWN)
        return items
    return value


def _resource_validator(rule: rules.Rule):
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if not rule.applies_to(args.resource_type):
            return
        for message in rule.check(args.resource_type, args.name, to_plain(args.props)):
            report_violation(message, None)

    return validate


def _stack_validator(rule: rules.Rule):
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        for resource in args.resources:
            if not rule.applies_to(resource.resource_type):
                continue
            for message in rule.check(resource.resource_type, resource.name, to_plain(resource.props)):
                report_violation(message, resource.urn)

    return validate


def build_policies() -> list[sdk_policy.Policy]:
    policies: list[sdk_policy.Policy] = []
    for rule in rules.RULES:
        level = ENFORCEMENT[rule.name]
        if rule.stage == "stack":
            policies.append(StackValidationPolicy(
                name=rule.name, description=rule.description,
                validate=_stack_validator(rule), enforcement_level=level))
        else:
            policies.append(ResourceValidationPolicy(
                name=rule.name, description=rule.description,
                validate=_resource_validator(rule), enforcement_level=level))
    return policies


POLICIES = build_policies()

if __name__ == "__main__":
    PolicyPack(
        name=PACK_NAME,
        description="kube-ha guardrails: etcd quorum, pinned RKE2, closed admin ports, IMDSv2, "
                    "encrypted roots, cross-zone NLB, secret kubeconfig and token outputs.",
        enforcement_level=EnforcementLevel.MANDATORY,
        policies=POLICIES,
    )
