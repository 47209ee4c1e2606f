"""Provider `aws`: EC2 machines, a VPC and a network load balancer, handed to the node pools as plain
SSH targets and a registration endpoint. Nothing outside this package knows the machines are on AWS."""
