"""ROS 2 adapter of the policy: observation -> action for each served robot.

in:  /<robot>/description (latched), /<robot>/observation, /learner/weights (chunks)
out: /<robot>/action (or /<robot>/action_chunk with `chunks`, chunk_serving.py),
     ~/version (latched PolicyVersion)
With weights_file, the checkpoint's actor is served frozen (no /learner/weights), unless
listen_after_file: then new versions follow it (partial ones apply on it).
Weight chunks are queued to a ``WeightsLoader`` thread, which joins, checks and unpacks
each whole version off the control thread; the executor thread then swaps the prepared
actor in (woken by a guard condition). Callbacks of this node never run concurrently, so
an action is always computed by one whole set of weights.
"""
from __future__ import annotations

import torch
from rclpy.node import Node

from realrl_common.config import BAD_CONFIG_EXIT, ConfigError
from realrl_common.convert import from_f32, image_array, to_f32
from realrl_common.descriptions import RobotDescriptions
from realrl_common.embodiment import describe_robot
from realrl_common.node_main import spin_node
from realrl_common.qos import COMMAND_QOS, LATCHED_QOS, SENSOR_QOS, WEIGHTS_QOS
from realrl_common.ros_params import read_config
from realrl_common.scheduling import serve_realtime
from realrl_common.weight_msgs import from_msg
from realrl_interfaces.msg import Action, Observation, PolicyVersion, RobotDescription, WeightChunk
from realrl_policy.chunk_serving import ChunkServer
from realrl_policy.inference import InferenceEngine, Prepared
from realrl_policy.node_config import PolicyNodeConfig
from realrl_policy.weights_file import read_weights_file
from realrl_policy.weights_loader import WeightsLoader


class PolicyNode(Node):
    """Answers each robot's observations with actions from the newest whole weights."""

    def __init__(self):
        super().__init__('policy', automatically_declare_parameters_from_overrides=True)
        self.cfg = read_config(self, PolicyNodeConfig)
        torch.set_num_threads(1)
        try:
            self.engine = InferenceEngine(self.cfg.deterministic, self.cfg.seed,
                                          self.cfg.device)
        except ValueError as e:   # no such GPU here: the node exits with it, not restarted
            raise ConfigError(str(e)) from None
        self._published = -1   # the version ~/version last said
        self._ready = self.create_guard_condition(self._swap_ready)
        self.loader = WeightsLoader(self.engine.prepare, self._ready.trigger)
        self.failures = 0
        self._action_pubs = {}
        for rid in self.cfg.robot_ids:
            self._action_pubs[rid] = self.create_publisher(Action, f'/{rid}/action', COMMAND_QOS)
            self.create_subscription(Observation, f'/{rid}/observation', self._on_observation,
                                     SENSOR_QOS)
        self.descriptions = RobotDescriptions(self, self.cfg.robot_ids, self._on_description)
        if not self.cfg.weights_file or self.cfg.listen_after_file:
            self.create_subscription(WeightChunk, self.cfg.weights_topic, self._on_chunk,
                                     WEIGHTS_QOS)
        self._version_pub = self.create_publisher(PolicyVersion, '~/version', LATCHED_QOS)
        self._waiting_weights = None  # prepared weights that came while a chunk was computed
        self.chunks = (ChunkServer(self, self.engine, self.cfg, self._load_waiting)
                       if self.cfg.chunks != 'off' else None)
        self._publish_version()
        if self.cfg.weights_file:  # frozen weights (realrl eval)
            try:
                whole = read_weights_file(self.cfg.weights_file)
            except ValueError as e:  # the node exits with it (spin_node), not restarted
                raise ConfigError(str(e)) from None
            self._load(whole)
        # Last: the weights loader's thread, started above, keeps normal scheduling.
        serve_realtime(self.get_logger(), self.cfg.realtime_priority)

    def _on_description(self, msg: RobotDescription):
        try:
            self.engine.add_robot(msg.robot_id, msg.state_dim, from_f32(msg.action_low),
                                  from_f32(msg.action_high), describe_robot(msg))
        except ValueError as e:
            if self.cfg.weights_file and not self.cfg.listen_after_file:  # frozen: none will
                self.get_logger().error(f'weights_file {self.cfg.weights_file}: {e}; give a '
                                        f"checkpoint of a run of this robot's kind")
                raise SystemExit(BAD_CONFIG_EXIT) from None  # ends spin_node: not restarted
            self.get_logger().error(f'{e}; the robot gets no actions until weights that fit it')
            return
        self.get_logger().info(f'serving {msg.robot_id} ({msg.kind}): state {msg.state_dim}, '
                               f'action {msg.action_dim} ({msg.action_units})')

    def _on_observation(self, msg: Observation):
        if not self.descriptions.known(msg.robot_id) or msg.robot_id not in self.engine.spaces:
            return  # description not seen yet, or weights that do not fit it
        if self.chunks is not None:
            self.chunks.on_observation(msg)
            return
        try:
            images = ({img.header.frame_id: image_array(img) for img in msg.images}
                      if self.engine.wants_images else None)
            action, version = self.engine.act(msg.robot_id, from_f32(msg.state), images,
                                              msg.episode_id, msg.step)
        except ValueError as e:  # a state that does not fit the robot's description
            self.failures += 1
            self.get_logger().error(f'no action for {msg.robot_id} step {msg.step}: {e} '
                                    f'({self.failures} so far)', throttle_duration_sec=5.0)
            return
        out = Action(robot_id=msg.robot_id, episode_id=msg.episode_id, step=msg.step,
                     action=to_f32(action), policy_version=version)
        out.header.stamp = self.get_clock().now().to_msg()
        self._action_pubs[msg.robot_id].publish(out)
        if version != self._published:   # on a GPU a version takes over after its copies
            self._publish_version()

    def _on_chunk(self, msg: WeightChunk):
        self.loader.put(from_msg(msg))

    def _swap_ready(self):  # executor thread, between two actions
        prepared, errors = self.loader.take()
        for why in errors:
            self.get_logger().error(f'refused weights: {why}')
        if prepared is None:
            return
        if self.chunks is not None and not self.chunks.idle:
            self._waiting_weights = prepared  # swapped in when the inference has finished
            return
        self._swap(prepared)

    def _load_waiting(self):   # the chunk server is idle: between two inferences
        prepared, self._waiting_weights = self._waiting_weights, None
        if prepared is not None:
            self._swap(prepared)
        elif self.engine.advance()[1] != self._published:   # a GPU copy has taken over
            self._publish_version()

    def _load(self, whole):
        prepared = self.engine.prepare(*whole)
        if isinstance(prepared, str):
            self.get_logger().error(f'refused weights: {prepared}')
            return
        self._swap(prepared)

    def _swap(self, prepared: Prepared):
        kind = self.engine.actor.cfg.type if self.engine.actor is not None else None
        why = self.engine.swap(prepared)
        if why:
            self.get_logger().error(f'refused weights: {why}')
            return
        if self.engine.actor.cfg.type != kind:
            self.get_logger().info(f'weights v{self.engine.version}: actor type '
                                   f'{self.engine.actor.cfg.type!r} '
                                   f'({type(self.engine.actor).__name__})')
            if self.chunks is None and callable(getattr(self.engine.actor, 'act_chunk', None)):
                self.get_logger().warning(
                    'a chunk actor served one action per observation (its first row, without '
                    'the instruction or images): set chunks: overlap')
        self._publish_version()

    def close(self):
        """Stop the weights loader and the chunk worker (after the work in flight)."""
        self.loader.close()
        if self.chunks is not None:
            self.chunks.close()

    def _publish_version(self):
        self._published = self.engine.version
        self._version_pub.publish(PolicyVersion(node=self.get_fully_qualified_name(),
                                                version=self.engine.version))


def main(args=None):
    """Runs the policy node."""
    spin_node(PolicyNode, 'policy', args)


if __name__ == '__main__':
    main()
