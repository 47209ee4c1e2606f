"""kube-ha: a highly available Kubernetes cluster, one Pulumi stack per environment."""

import pulumi

from components.cluster import build_cluster, node_summary
from components.config import load_config

config = load_config()
cluster = build_cluster(config)

pulumi.export("registrationAddress", cluster.registration.address)
pulumi.export("apiUrl", cluster.registration.api_url)
pulumi.export("servers", node_summary(cluster.server_targets, cluster.servers.node_names))
pulumi.export("agents", node_summary(cluster.agent_targets, cluster.agents.node_names))
pulumi.export("kubeconfig", cluster.check.kubeconfig)
for key, value in cluster.extra_outputs.items():
    pulumi.export(key, value)
