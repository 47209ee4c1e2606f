"""kube-ha's components: configuration, the registration address, the server and agent pools."""
