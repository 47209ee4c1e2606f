"""The tags every AWS resource of a cluster carries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping


@dataclass(frozen=True)
class Tags:
    """Cluster, stack and role tags, so a resource found in the console names its cluster and purpose."""

    cluster: str
    """Cluster name: `kube-ha:aws.name`, or `<project>-<stack>`."""
    stack: str
    """The Pulumi stack that manages the resource."""
    extra: Mapping[str, str] = field(default_factory=dict)
    """The user's `kube-ha:aws.tags`."""

    def __call__(self, role: str, name: str) -> dict[str, str]:
        """Tags for one resource: `role` such as server or network, `name` the console's Name column."""
        return {
            **self.extra,
            "Name": f"{self.cluster}-{name}",
            "kube-ha:cluster": self.cluster,
            "kube-ha:stack": self.stack,
            "kube-ha:role": role,
        }
