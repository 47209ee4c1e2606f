"""The lab: kube-ha's own program and scripts run for real on lab hosts (network namespaces with their
own files, processes and sshd) on this machine. See docs/lab.md.

- hosts.py: the hosts, their bridge and teardown; hostinit.py: each host's PID 1.
- systemctl_standin: the hosts' systemctl, which really starts and stops daemons and logs every call.
- engine.py: the program under Pulumi mocks with every remote command run over SSH, with state.
- stack.py: the installer server, the lab's stack config, and what tests observe.
- standin/: the RKE2 stand-in (another file set, with its own tests).
"""
