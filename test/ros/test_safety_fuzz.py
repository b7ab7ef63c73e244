"""Short safety fuzz over real DDS: no bad action reaches the robot, every one is counted."""
import json

import numpy as np
from realrl_interfaces.msg import Action, DriverStatus, Observation
from realrl_common.convert import to_f32
from realrl_common.lifecycle import bring_up
from realrl_common.qos import COMMAND_QOS, SENSOR_QOS, STATUS_QOS
from ros_env import Proc, executable, wait_for


def test_bad_actions_are_rejected_counted_and_never_applied(ros_node, tmp_path):
    node, applied = ros_node, tmp_path / 'applied.jsonl'
    proc = Proc([executable('realrl_driver', 'mujoco_arm_driver'), '--ros-args', '-r',
                 '__ns:=/arm0', '-p', 'replay_wait_s:=0.0', '-p', f'applied_log:={applied}'],
                tmp_path / 'driver.log')
    try:
        observations, statuses = [], []
        node.create_subscription(Observation, '/arm0/observation', observations.append, SENSOR_QOS)
        node.create_subscription(DriverStatus, '/arm0/status', statuses.append, STATUS_QOS)
        pub = node.create_publisher(Action, '/arm0/action', COMMAND_QOS)
        assert bring_up(node, '/arm0/driver', node.spin, alive=lambda: proc.p.poll() is None) == ''
        assert wait_for(lambda: observations, 10, spin=node.spin)
        obs, rng, sent = observations[-1], np.random.default_rng(1), 0
        bad = [[np.nan, 0, 0], [0, -np.inf, 0], [1.5, 0, 0], [0, 0, -1e9], [0.1], [],
               [0.1] * 7]
        for i in range(280):
            pub.publish(Action(robot_id='arm0', episode_id=obs.episode_id, step=obs.step,
                               action=to_f32(bad[i % len(bad)])))
            sent += 1
            node.spin(0.003)  # COMMAND_QOS keeps the last 10: pace, as a live sender does
        for i in range(20):  # valid values, but answering an observation that is not current
            pub.publish(Action(robot_id='arm0', episode_id=obs.episode_id + 1 + i % 2,
                               step=obs.step + 1 + i, action=to_f32(rng.uniform(-1, 1, 3))))
            sent += 1
            node.spin(0.003)
        assert wait_for(lambda: statuses and statuses[-1].actions_rejected == sent, 10,
                        spin=node.spin), statuses[-1] if statuses else proc.output()
        assert statuses[-1].steps == 0 and applied.read_text() == ''
        pub.publish(Action(robot_id='arm0', episode_id=obs.episode_id, step=obs.step,
                           action=to_f32([1.0, -1.0, 0.5])))
        assert wait_for(lambda: statuses[-1].steps == 1, 5, spin=node.spin)
    finally:
        proc.stop()
    assert [json.loads(x) for x in applied.read_text().splitlines()] == [[1.0, -1.0, 0.5]]
    assert '"non_finite": 80' in proc.output() and '"stale": 20' in proc.output()
