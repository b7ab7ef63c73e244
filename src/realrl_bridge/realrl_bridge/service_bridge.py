"""Cloud services called from an edge across the link (part of the bridge node; rclpy).

The edge bridge offers the service (same name, same type) in its site's graph; a call for
one of its robots (the request's ``robot_id``) becomes a Zenoh query on
``<prefix>/robot/<robot_id>/service/<name>`` carrying the serialized request; the cloud
bridge's queryable calls its graph's service and replies with the serialized response. A
call for another robot, or one the cloud does not answer within ``timeout_s``, gets the
response type's defaults (e.g. SenderState ``known: false``) and a warning.
"""
from __future__ import annotations

import importlib
import threading

import zenoh
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.serialization import deserialize_message, serialize_message

from realrl_bridge.link import Keys
from realrl_bridge.node_config import ServiceRoute
from realrl_common.config import ConfigError


def service_class(type_name: str):
    """'package/srv/Name' -> the service class; a ConfigError names what is missing."""
    package, _, name = type_name.split('/')
    try:
        return getattr(importlib.import_module(f'{package}.srv'), name)
    except (ImportError, AttributeError):
        raise ConfigError(f'service type {type_name!r} is not installed (is its package '
                          f'built and sourced?)') from None


class EdgeService:
    """The edge's stand-in for a cloud service.

    A call stays open until the cloud answers (asked again every ``timeout_s`` while the
    link is down): it never answers with made-up values, since a driver that asked where its
    sequence goes on must not start again at 1 because the link was down. Calls run one at
    a time in their own callback group, so the bridge node (a multi-threaded executor)
    keeps forwarding meanwhile. A call for a robot of another site gets the response
    type's defaults at once."""

    def __init__(self, node, session: zenoh.Session, keys: Keys, robot_ids, name: str,
                 route: ServiceRoute):
        self.cls = service_class(route.type)
        self._node, self._session, self._keys = node, session, keys
        self._robot_ids, self._name, self._route = tuple(robot_ids), name, route
        self._stop = threading.Event()
        self.service = node.create_service(self.cls, route.path, self._call,
                                           callback_group=MutuallyExclusiveCallbackGroup())

    def _call(self, request, response):
        rid = request.robot_id
        if rid not in self._robot_ids:
            self._node.get_logger().warning(f'{self._route.path}: {rid!r} is not a robot of '
                                            f'this site; not forwarded')
            return response
        key, payload = self._keys.robot(rid, 'service', self._name), serialize_message(request)
        while not self._stop.is_set():
            try:
                replies = list(self._session.get(key, payload=payload,
                                                 timeout=self._route.timeout_s))
            except zenoh.ZError:
                break      # the session is closing
            for reply in replies:
                if reply.ok is not None:
                    return deserialize_message(reply.ok.payload.to_bytes(), self.cls.Response)
            self._node.get_logger().warning(
                f'{self._route.path} for {rid}: no answer from the cloud yet; asking again',
                throttle_duration_sec=10.0)
            self._stop.wait(0.5)
        return response   # only when the node stops

    def close(self) -> None:
        """Stop asking."""
        self._stop.set()


def answer_in_cloud(node, session: zenoh.Session, keys: Keys, robot_ids, name: str,
                    route: ServiceRoute) -> list:
    """Queryables that call the cloud graph's service; returns them (to undeclare)."""
    cls = service_class(route.type)
    client = node.create_client(cls, route.path)

    def on_query(query: zenoh.Query) -> None:
        if query.payload is None:
            query.reply_err(b'no request')
            return
        request = deserialize_message(query.payload.to_bytes(), cls.Request)
        done = threading.Event()
        future = client.call_async(request)     # completed by the node's executor
        future.add_done_callback(lambda _: done.set())
        if done.wait(route.timeout_s) and future.result() is not None:
            query.reply(query.key_expr, serialize_message(future.result()))
        else:
            future.cancel()
            query.reply_err(f'{route.path} did not answer'.encode())
    return [session.declare_queryable(keys.robot(rid, 'service', name), on_query)
            for rid in robot_ids]
