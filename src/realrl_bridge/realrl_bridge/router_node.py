"""The cloud's Zenoh router as a node of the graph: mutual TLS, the sites' ACL.

It holds one Zenoh session in router mode (``realrl_bridge.link.router_config``) for as
long as it runs; the ROS node only carries its parameters and its lifetime (so ``realrl``
starts, restarts and stops it like any other node). Parameters:
``realrl_bridge.node_config.RouterNodeConfig``.
"""
from __future__ import annotations

import zenoh
from rclpy.node import Node

from realrl_bridge import link
from realrl_bridge.node_config import RouterNodeConfig
from realrl_common.config import ConfigError
from realrl_common.node_main import spin_node
from realrl_common.ros_params import read_config
from realrl_common.scheduling import set_process_nice


def router_spec(cfg: RouterNodeConfig) -> link.RouterSpec:
    """The RouterSpec of a router node's parameters; ConfigError names a bad one."""
    try:
        return link.RouterSpec(
            listen=cfg.listen, tls=link.TlsFiles(cfg.tls.ca, cfg.tls.cert, cfg.tls.key),
            sites=tuple(link.Site(name, tuple(robots)) for name, robots in cfg.sites.items()),
            cloud_names=tuple(cfg.cloud_names), keys=link.Keys(cfg.key_prefix))
    except ValueError as e:
        raise ConfigError(str(e)) from None


class RouterNode(Node):
    """Thin adapter: a Zenoh router session alive while the node is."""

    def __init__(self):
        super().__init__('router', automatically_declare_parameters_from_overrides=True)
        cfg = read_config(self, RouterNodeConfig)
        spec = router_spec(cfg)
        refused = set_process_nice(cfg.nice)   # before Zenoh starts its threads
        if refused:
            self.get_logger().warning(f'{refused}; the sites\' traffic may wait for the CPU')
        try:
            self._session = zenoh.open(link.to_zenoh(link.router_config(spec)))
        except zenoh.ZError as e:
            raise ConfigError(f'listen: cannot listen on {spec.listen} ({e}); is the port free '
                              f'and the host in the router certificate?') from None
        self.get_logger().info(f'router on {spec.listen} for sites '
                               f'{[s.name for s in spec.sites]}')

    def close(self) -> None:
        """Close the router session."""
        self._session.close()


def main(args=None):
    """The ``router`` entry point."""
    spin_node(RouterNode, 'router', args)


if __name__ == '__main__':
    main()
