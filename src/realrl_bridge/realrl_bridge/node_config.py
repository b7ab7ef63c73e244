"""The bridge node's parameters (no rclpy, no zenoh: graphs validate them without either).

    parameters:
      side: edge                          # edge: its robots' 'up' topics go out
      robot_ids: [arm0]
      connect: tls/cloud.example.org:7447
      tls: {ca: certs/ca.pem, cert: certs/sites/lab_a.pem, key: certs/sites/lab_a.key}
      topics:
        transition: {type: realrl_interfaces/msg/Transition, direction: up, priority: data,
                     reliable: true, compression: zlib}
        observation: {type: realrl_interfaces/msg/Observation, direction: up,
                      priority: interactive_high, express: true, compression: jpeg}
        status: {type: realrl_interfaces/msg/DriverStatus, direction: up,
                 priority: data_low, congestion: drop, qos: status, max_rate_hz: 2.0}
      services:
        sender_state: {type: realrl_interfaces/srv/SenderState, path: /replay/sender_state}
        estop_cmd: {type: std_msgs/msg/Bool, direction: down, priority: real_time,
                    express: true, qos: command}
      weights: {topic: /learner/weights, encoding: raw, delta: true, max_mbit_s: 50,
                site_mbit_s: 400}

Only the listed topics cross (an allow-list). A topic ``t`` of robot ``r`` is the ROS topic
``/r/t`` on each side and the Zenoh key ``<key_prefix>/robot/r/topic/t``. A ``reliable``
topic (transitions) crosses with acknowledgement and de-duplication
(``realrl_bridge.transition_link``): the cloud bridge carries the replay node's acks
(``ack_topic``) back to the edge as ``<key_prefix>/robot/r/ack``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from realrl_common.config import ConfigError, build_config, check
from realrl_common.plugins import NodeKind

PRIORITIES = ('real_time', 'interactive_high', 'interactive_low', 'data_high', 'data',
              'data_low', 'background')
"""Zenoh's priorities, highest first."""
QOS_PROFILES = ('data', 'sensor', 'command', 'status', 'latched')
"""Names of realrl_common.qos profiles (DATA_QOS, ...) for the ROS side of a topic."""
COMPRESSIONS = ('none', 'zlib', 'png', 'jpeg')
"""Payload codecs: zlib (lossless, any message), png (lossless) or jpeg (lossy) for the
sensor_msgs/Image fields of a message (rgb8, bgr8 or mono8; others cross unchanged)."""


@dataclass(frozen=True)
class TopicRoute:
    """One allow-listed topic and how it crosses the link."""

    type: str
    """Message type, 'package/msg/Name'."""
    direction: str
    """'up' (edge to cloud) or 'down' (cloud to edge)."""
    priority: str = 'data'
    """Zenoh priority (PRIORITIES): higher ones overtake lower ones on a congested link."""
    congestion: str = 'block'
    """'block': never lose a message (the sender waits); 'drop': the newest matters, drop
    when the link is congested."""
    express: bool = False
    """Send at once, not batched with others (lower latency, more overhead)."""
    qos: str = 'data'
    """The ROS QoS profile of the topic on both sides (QOS_PROFILES)."""
    compression: str = 'none'
    """COMPRESSIONS; the receiver reads the codec from each message, not from its config."""
    jpeg_quality: int = 90
    """1-100, for compression: jpeg."""
    max_rate_hz: float = 0.0
    """At most this many messages a second per robot (0: no limit); the rest are dropped,
    so only a 'drop' topic may have one."""
    reliable: bool = False
    """Acknowledged, resent until acked, de-duplicated: for an 'up' message with robot_id
    and seq fields (realrl_interfaces/msg/Transition)."""

    def __post_init__(self):
        parts = self.type.split('/')
        check(len(parts) == 3 and parts[1] == 'msg' and all(parts),
              f"type must be 'package/msg/Name', got {self.type!r}")
        check(self.direction in ('up', 'down'),
              f"direction must be 'up' (edge to cloud) or 'down', got {self.direction!r}")
        check(self.priority in PRIORITIES,
              f'priority must be one of {list(PRIORITIES)}, got {self.priority!r}')
        check(self.congestion in ('block', 'drop'),
              f"congestion must be 'block' or 'drop', got {self.congestion!r}")
        check(self.qos in QOS_PROFILES, f'qos must be one of {list(QOS_PROFILES)}, got '
                                        f'{self.qos!r}')
        check(self.compression in COMPRESSIONS,
              f'compression must be one of {list(COMPRESSIONS)}, got {self.compression!r}')
        check(1 <= self.jpeg_quality <= 100,
              f'jpeg_quality must be in 1..100, got {self.jpeg_quality}')
        check(self.max_rate_hz >= 0, f'max_rate_hz must be >= 0, got {self.max_rate_hz}')
        check(self.max_rate_hz == 0 or self.congestion == 'drop',
              "max_rate_hz drops messages: set congestion: drop, or remove the rate limit")
        check(not self.reliable or (self.direction == 'up' and self.congestion == 'block'),
              "reliable: true is for an 'up' topic with congestion: block (transitions)")


@dataclass(frozen=True)
class ServiceRoute:
    """A service of the cloud's graph that an edge's nodes call across the link.

    Its request has a ``robot_id`` field: the edge forwards calls for its own robots only
    (key ``<key_prefix>/robot/<robot_id>/service/<name>``), the cloud calls its local
    service and sends the answer back. E.g. the replay node's ``sender_state``, which a
    driver asks where its sequence goes on."""

    type: str
    """Service type, 'package/srv/Name'."""
    path: str
    """The service's name on both sides, e.g. /replay/sender_state."""
    timeout_s: float = 5.0
    """How long an edge call waits for the cloud's answer."""

    def __post_init__(self):
        parts = self.type.split('/')
        check(len(parts) == 3 and parts[1] == 'srv' and all(parts),
              f"type must be 'package/srv/Name', got {self.type!r}")
        check(self.path.startswith('/'), f'path must be absolute, got {self.path!r}')
        check(self.timeout_s > 0, f'timeout_s must be > 0, got {self.timeout_s}')


@dataclass(frozen=True)
class TlsPaths:
    """This side's TLS files (``python -m realrl_bridge.certs``)."""

    ca: str = ''
    cert: str = ''
    key: str = ''


@dataclass(frozen=True)
class WeightsRoute:
    """The learner's weights across the link (cloud -> every edge), for a policy at an edge.

    The cloud bridge reads whole versions from ``topic`` (the learner's WeightChunk
    stream), checks each is a whole actor blob (``actor_blob``) and serves the newest over
    Zenoh (``weight_sync.WeightServer``: 1 MiB checksummed chunks, per-tensor digests, delta,
    paced); a version that arrives while an older one is still on its way replaces it
    (latest wins). The edge bridge pulls each new version, checks every tensor against its
    digest, and publishes it on ``topic`` for its policy node."""

    topic: str = '/learner/weights'
    """The WeightChunk topic on both sides (learner -> cloud bridge; edge bridge -> policy)."""
    stream: str = 'policy'
    """The weights' key chunk (``<key_prefix>/weights/<stream>``)."""
    encoding: str = 'raw'
    """'raw' (exact) or 'bf16' (float32 rounded to bfloat16: half the bytes, lossy)."""
    delta: bool = True
    """Send only the tensors that changed since the version the edge holds."""
    max_mbit_s: float = 0.0
    """The cloud's bandwidth budget for weights, all edges together (0: unpaced)."""
    chunk_bytes: int = 256 * 1024
    """The size of the WeightChunk messages the edge publishes for its policy."""
    site_mbit_s: float = 0.0
    """The edge's budget for those WeightChunks (DDS within its site, shared with the
    robots' observations and actions), Mbit/s; 0: unpaced."""

    def __post_init__(self):
        check(self.topic.startswith('/'),
              f'weights.topic must be absolute like /learner/weights, got {self.topic!r}')
        check(self.stream.replace('_', '').isalnum(),
              f'weights.stream must be a plain name (letters, digits, _), got {self.stream!r}')
        check(self.encoding in ('raw', 'bf16'),
              f"weights.encoding must be 'raw' or 'bf16', got {self.encoding!r}")
        check(self.max_mbit_s >= 0, f'weights.max_mbit_s must be >= 0, got {self.max_mbit_s}')
        check(self.site_mbit_s >= 0,
              f'weights.site_mbit_s must be >= 0 (0: unpaced), got {self.site_mbit_s}')
        check(self.chunk_bytes > 0, f'weights.chunk_bytes must be > 0, got {self.chunk_bytes}')


@dataclass(frozen=True)
class BridgeNodeConfig:
    """A bridge node: one side of the cloud-edge link for a set of robots."""

    connect: str
    """The cloud router's TLS endpoint, 'tls/<host>:<port>'."""
    side: str = 'edge'
    """'edge': sends the 'up' topics, receives 'down'; 'cloud': the other way round. The
    cloud node's certificate must be among the router's cloud names."""
    robot_ids: tuple[str, ...] = ()
    """The robots whose topics cross (an edge: its own robots only; the router's ACL
    refuses others)."""
    tls: TlsPaths = field(default_factory=TlsPaths)
    topics: dict = field(default_factory=dict)
    """Topic name (relative to the robot's namespace) -> TopicRoute fields."""
    key_prefix: str = 'realrl'
    """The deployment's key prefix (the router's ACL uses the same)."""
    services: dict = field(default_factory=dict)
    """Service name (a key chunk) -> ServiceRoute fields: cloud services the edge calls."""
    ack_topic: str = '/replay/ack'
    """The replay node's TransitionAck topic: read by the cloud bridge, published by the
    edge bridge (for its drivers) when a topic is reliable."""
    outbox_limit: int = 10_000
    """An edge's reliable transitions held until acked; when full, new ones are refused and
    stay in the driver's own outbox (which holds the robot when it fills in turn)."""
    resend_after_s: float = 2.0
    """An edge re-sends a reliable transition not acked within this long (the replay node
    acknowledges after its commit, every second or so)."""
    connect_wait_s: float = 60.0
    """How long the node tries to reach the router when it starts."""
    weights: dict = field(default_factory=dict)
    """WeightsRoute fields: carry the learner's weights to the edge's policy ({}: off)."""
    nice: int = -5
    """Scheduling niceness of the whole process, every thread
    (``realrl_common.scheduling.set_process_nice``): the bridge carries observations and
    actions, so it runs at the driver's -5, ahead of training on a shared machine (0: leave
    as is; without CAP_SYS_NICE a warning, no change)."""

    def __post_init__(self):
        check(self.side in ('edge', 'cloud'), f"side must be 'edge' or 'cloud', got "
                                              f'{self.side!r}')
        check(self.connect.startswith('tls/'),
              f"connect must be the router's TLS endpoint 'tls/<host>:<port>', got "
              f'{self.connect!r}')
        check(bool(self.robot_ids), 'robot_ids is empty; list the robots whose topics cross')
        for name in ('ca', 'cert', 'key'):
            check(bool(getattr(self.tls, name)), f'tls.{name} is empty; give the path of the '
                                                 f'file made by python -m realrl_bridge.certs')
        check(bool(self.topics), 'topics is empty; list the topics allowed to cross')
        check(self.outbox_limit >= 1, f'outbox_limit must be >= 1, got {self.outbox_limit}')
        check(self.connect_wait_s >= 0,
              f'connect_wait_s must be >= 0, got {self.connect_wait_s}')
        check(self.resend_after_s > 0,
              f'resend_after_s must be > 0, got {self.resend_after_s}')
        check(-20 <= self.nice <= 19, f'nice must be in -20..19, got {self.nice}')
        check(self.ack_topic.startswith('/'),
              f'ack_topic must be an absolute topic like /replay/ack, got {self.ack_topic!r}')
        for name in self.topics:
            check(name.replace('_', '').isalnum(),
                  f'topics: {name!r} must be a plain relative name (letters, digits, _)')
        self.routes()
        self.service_routes()
        self.weights_route()

    def weights_route(self) -> WeightsRoute | None:
        """The weights section as a WeightsRoute (validated); None when weights do not cross."""
        if not self.weights:
            return None
        if not isinstance(self.weights, dict):
            raise ConfigError('weights: expected a mapping of topic, stream, encoding, ...')
        return build_config(WeightsRoute, self.weights, where='weights')

    def service_routes(self) -> dict[str, ServiceRoute]:
        """The services as ServiceRoute objects (validated)."""
        out = {}
        for name, values in self.services.items():
            check(name.replace('_', '').isalnum(),
                  f'services: {name!r} must be a plain name (letters, digits, _)')
            if not isinstance(values, dict):
                raise ConfigError(f'services.{name}: expected a mapping of type, path')
            out[name] = build_config(ServiceRoute, values, where=f'services.{name}')
        return out

    def routes(self) -> dict[str, TopicRoute]:
        """The topics as TopicRoute objects (validated)."""
        out = {}
        for name, values in self.topics.items():
            if not isinstance(values, dict):
                raise ConfigError(f'topics.{name}: expected a mapping of type, direction, ...')
            out[name] = build_config(TopicRoute, values, where=f'topics.{name}')
        return out


NODE = NodeKind(role='bridge', config=BridgeNodeConfig)


@dataclass(frozen=True)
class RouterNodeConfig:
    """The cloud's Zenoh router as a graph node (``realrl_bridge.link.RouterSpec``).

    parameters:
      listen: tls/0.0.0.0:7447
      tls: {ca: certs/ca.pem, cert: certs/router.pem, key: certs/router.key}
      sites: {lab_a: [arm0, arm1]}        # certificate name -> its robots
      cloud_names: [cloud]                # certificates with full access (the cloud bridge)
    """

    listen: str
    """The TLS endpoint it listens on (its host must be in the router certificate)."""
    tls: TlsPaths = field(default_factory=TlsPaths)
    sites: dict = field(default_factory=dict)
    """Site certificate name -> the robot ids whose keys it may use."""
    cloud_names: tuple[str, ...] = ()
    key_prefix: str = 'realrl'
    nice: int = -5
    """Scheduling niceness of the router process: it forwards every observation and action
    of the sites, like the bridges (0: leave as is)."""

    def __post_init__(self):
        check(self.listen.startswith('tls/'),
              f"listen must be 'tls/<host>:<port>', got {self.listen!r}")
        for name in ('ca', 'cert', 'key'):
            check(bool(getattr(self.tls, name)), f'tls.{name} is empty; give the path of the '
                                                 f'file made by python -m realrl_bridge.certs')
        check(-20 <= self.nice <= 19, f'nice must be in -20..19, got {self.nice}')
        check(bool(self.sites), 'sites is empty; map each site certificate name to its robots')
        for name, robots in self.sites.items():
            check(isinstance(robots, (list, tuple)) and all(isinstance(r, str) for r in robots),
                  f'sites.{name} must be a list of robot ids, got {robots!r}')


ROUTER = NodeKind(role='router', config=RouterNodeConfig)
