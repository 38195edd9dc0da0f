"""This host's TCP connections, counted per port (netlink sock_diag, else /proc/net/tcp): the load
balancer waits on them to drain a replica, the metrics collector samples them."""
