"""Short safety fuzz over real DDS: no bad action reaches the robot, every one is counted,
and the valid ones, from the policy and from teleop (intervention), are applied as the guard
defines them: exactly at a bound unchanged, inside the tolerance band set onto the bound."""
import json

import numpy as np
from ros_env import Proc, executable, wait_for

from realrl_common.convert import to_f32
from realrl_common.lifecycle import bring_up
from realrl_common.qos import COMMAND_QOS, SENSOR_QOS, STATUS_QOS
from realrl_interfaces.msg import Action, DriverStatus, Observation, RewardLabel

IN_BAND = float(np.nextafter(np.float32(1), np.float32(2)))  # 1 + 1.2e-7: inside the 1e-6 band
JUST_BEYOND = float(np.float32(1.0 + 2e-6))  # beyond the band, as float32 carries it


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
        teleop = node.create_publisher(Action, '/arm0/action', COMMAND_QOS)  # a second writer
        labels = node.create_publisher(RewardLabel, '/arm0/reward_label', COMMAND_QOS)
        assert bring_up(node, '/arm0/driver', node.spin, alive=lambda: proc.p.poll() is None) == ''
        assert wait_for(lambda: observations, 10, spin=node.spin)
        obs, rng, sent = observations[-1], np.random.default_rng(1), 0
        bad = [[np.nan, 0, 0], [0, -np.inf, 0], [1.5, 0, 0], [0, 0, -1e9], [0.1], [],
               [0.1] * 7]

        def flood(msg):
            """COMMAND_QOS keeps the last 10: after every 8 sent, wait until the driver has
            taken them (its status counts every action received), as a paced sender would;
            so the exact counts below hold on a loaded machine too."""
            nonlocal sent
            pub.publish(msg)
            sent += 1
            node.spin(0.001)
            if sent % 8 == 0:
                assert wait_for(lambda: statuses and statuses[-1].actions_received >= sent, 10,
                                spin=node.spin), statuses[-1] if statuses else proc.output()

        for i in range(280):
            flood(Action(robot_id='arm0', episode_id=obs.episode_id, step=obs.step,
                         action=to_f32(bad[i % len(bad)])))
        for i in range(20):  # valid values, but answering an observation that is not current
            flood(Action(robot_id='arm0', episode_id=obs.episode_id + 1 + i % 2,
                         step=obs.step + 1 + i, action=to_f32(rng.uniform(-1, 1, 3))))
        assert wait_for(lambda: statuses and statuses[-1].actions_rejected == sent, 10,
                        spin=node.spin), statuses[-1] if statuses else proc.output()
        assert statuses[-1].steps == 0 and applied.read_text() == ''
        pub.publish(Action(robot_id='arm0', episode_id=obs.episode_id, step=obs.step,
                           action=to_f32([1.0, -1.0, 0.5])))  # exactly at the bounds
        assert wait_for(lambda: statuses[-1].steps == 1, 5, spin=node.spin)

        def next_step(step):
            """The observation of `step` once it is out, labelled so that the loop goes on."""
            assert wait_for(lambda: observations[-1].step == step, 5, spin=node.spin)
            o = observations[-1]
            labels.publish(RewardLabel(robot_id='arm0', episode_id=o.episode_id, step=o.step,
                                       reward=-1.0))
            return o

        def act(writer, o, a, intervention, step=None):
            writer.publish(Action(robot_id='arm0', episode_id=o.episode_id,
                                  step=o.step if step is None else step, action=to_f32(a),
                                  intervention=intervention))
            node.spin(0.003)

        o = next_step(1)  # teleop: bad values at and past the band's edge, then one inside it
        for writer, a, flag in ((teleop, [JUST_BEYOND, 0, 0], True),
                                (pub, [0, -JUST_BEYOND, 0], False),
                                (teleop, [np.nan, 0, 0], True), (teleop, [0.2, 0.2], True)):
            act(writer, o, a, flag)
        act(teleop, o, [0.1, 0.1, 0.1], True, step=o.step - 1)  # stale
        sent += 5
        act(teleop, o, [IN_BAND, -IN_BAND, 0.25], True)
        assert wait_for(lambda: statuses[-1].steps == 2, 5, spin=node.spin), proc.output()
        o = next_step(2)  # a person's action outranks the policy's for the same step; if
        act(pub, o, [0.5, 0.5, -1.0], True)  # the driver stepped on it before the policy's
        act(pub, o, [0.1, 0.1, 0.1], False)  # came, that one is stale and counted so
        assert wait_for(lambda: statuses[-1].steps == 3, 5, spin=node.spin), proc.output()
        o = next_step(3)  # the policy, inside the band below the lower bound
        act(pub, o, [float(np.float32(-1 - 5e-7)), 0.0, 1.0], False)
        # one writer's actions arrive in order: at step 4 all before it have been counted
        assert wait_for(lambda: statuses[-1].steps == 4, 5, spin=node.spin), proc.output()
        late_policy = statuses[-1].actions_rejected - sent
        assert late_policy in (0, 1), statuses[-1]
    finally:
        proc.stop()
    assert [json.loads(x) for x in applied.read_text().splitlines()] == [
        [1.0, -1.0, 0.5], [1.0, -1.0, 0.25], [0.5, 0.5, -1.0], [-1.0, 0.0, 1.0]]
    out = proc.output()
    rejected = json.loads(out.split(' rejected: ', 1)[1].split(' actions lost: ')[0])
    assert rejected == {'non_finite': 81, 'out_of_range': 82, 'wrong_length': 121,
                        'stale': 21 + late_policy}
    counters = json.loads(out.split('counters: ', 1)[1].split(' rejected: ')[0])
    assert counters['clipped_into_bounds'] == 2
