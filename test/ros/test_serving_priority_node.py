"""A reward node asked for ``realtime_priority`` runs its executor thread, the one that takes
observations and publishes labels, SCHED_FIFO (read back from /proc), leaves its other
threads (DDS) alone, says what it got, and still labels every observation right."""
import os
import re

import numpy as np
from ros_env import Proc, executable, wait_for

from realrl_common.convert import to_f32
from realrl_common.qos import COMMAND_QOS, LATCHED_QOS, SENSOR_QOS
from realrl_common.scheduling import thread_scheduling
from realrl_interfaces.msg import Observation, RewardLabel, RobotDescription

LINE = re.compile(r'serving thread (\d+): (\S+) priority (\d+) \(asked realtime_priority 3\)')


def test_reward_node_serves_from_a_fifo_thread_and_labels_right(ros_node, tmp_path):
    node = ros_node
    labels = []
    node.create_subscription(RewardLabel, '/arm0/reward_label', labels.append, COMMAND_QOS)
    desc = node.create_publisher(RobotDescription, '/arm0/description', LATCHED_QOS)
    obs = node.create_publisher(Observation, '/arm0/observation', SENSOR_QOS)
    desc.publish(RobotDescription(robot_id='arm0', state_dim=6, action_dim=3,
                                  state_names=['ee_pos', 'target_pos'], state_starts=[0, 3],
                                  state_stops=[3, 6]))
    proc = Proc([executable('realrl_reward', 'reward_node'), '--ros-args',
                 '-p', 'robot_ids:=[arm0]', '-p', 'realtime_priority:=3'],
                tmp_path / 'reward.log')
    try:
        assert wait_for(lambda: LINE.search(proc.output()), 30), proc.output()
        tid, policy, got = LINE.search(proc.output()).groups()
        granted = 'NOT granted' not in proc.output()
        if granted:  # root or CAP_SYS_NICE: the kernel's own record agrees with the log
            assert (policy, int(got)) == ('SCHED_FIFO', 3)
            assert thread_scheduling(int(tid))['policy'] == 'SCHED_FIFO'
            others = [thread_scheduling(int(t)) for t in
                      os.listdir(f'/proc/{proc.p.pid}/task') if int(t) != int(tid)]
            assert others and all(o['policy'] == 'SCHED_OTHER' for o in others)
        else:
            assert policy == 'SCHED_OTHER'
        def labelled(step: int, ee: list) -> bool:  # (re)sends the observation until then
            if any(x.step == step for x in labels):
                return True
            state = np.array([*ee, 0.0, 0.0, 0.0])
            obs.publish(Observation(robot_id='arm0', episode_id=1, step=step,
                                    state=to_f32(state)))
            return False

        # far (reward -0.5), then within the success radius (-0.01, a success)
        for step, ee in enumerate(([0.5, 0.0, 0.0], [0.01, 0.0, 0.0])):
            assert wait_for(lambda: labelled(step, ee), 20, step=0.2, spin=node.spin), \
                proc.output()
        far, near = (next(x for x in labels if x.step == s) for s in (0, 1))
        assert abs(far.reward + 0.5) < 1e-5 and not far.success
        assert abs(near.reward + 0.01) < 1e-5 and near.success
    finally:
        proc.stop()
