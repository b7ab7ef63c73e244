"""The driver's control clock over real DDS: it reports the scheduling its control thread
actually got, and marks the ticks in which it held for a late action apart from the others."""
import re

from ros_env import Proc, executable, wait_for

from realrl_common.convert import to_f32
from realrl_common.lifecycle import bring_up
from realrl_common.qos import COMMAND_QOS, SENSOR_QOS, STATUS_QOS
from realrl_common.scheduling import thread_scheduling
from realrl_driver.core.clock_stats import read_held_ticks, read_tick_log
from realrl_interfaces.msg import Action, DriverStatus, Observation, RewardLabel


def test_scheduling_read_back_and_held_ticks_marked(ros_node, tmp_path):
    node, ticks = ros_node, tmp_path / 'ticks.jsonl'
    proc = Proc([executable('realrl_driver', 'mujoco_arm_driver'), '--ros-args', '-r',
                 '__ns:=/arm0', '-p', 'replay_wait_s:=0.0', '-p', 'control_hz:=20.0',
                 '-p', 'realtime_priority:=7', '-p', 'nice:=-3', '-p', f'timing_log:={ticks}'],
                tmp_path / 'driver.log')
    try:
        observations, statuses = [], []
        node.create_subscription(Observation, '/arm0/observation', observations.append, SENSOR_QOS)
        node.create_subscription(DriverStatus, '/arm0/status', statuses.append, STATUS_QOS)
        actions = node.create_publisher(Action, '/arm0/action', COMMAND_QOS)
        labels = node.create_publisher(RewardLabel, '/arm0/reward_label', COMMAND_QOS)
        assert bring_up(node, '/arm0/driver', node.spin, alive=lambda: proc.p.poll() is None) == ''
        line = re.compile(r'control thread (\d+) of arm0: (\S+) priority (\d+), nice (-?\d+) '
                          r'\(asked realtime_priority 7, nice -3\)(; NOT granted: [\w, ]+)?')
        assert wait_for(lambda: line.search(proc.output()), 10, spin=node.spin), proc.output()
        m = line.search(proc.output())
        got = thread_scheduling(int(m.group(1)))  # read back by us, while it runs
        assert (got['policy'], got['rt_priority'], got['nice']) == \
            (m.group(2), int(m.group(3)), int(m.group(4)))
        granted = got['policy'] == 'SCHED_FIFO' and got['rt_priority'] == 7 and got['nice'] == -3
        assert granted == (m.group(5) is None), m.group(0)
        # unanswered, the loop holds on every tick; then three steps answered at once
        assert wait_for(lambda: len(observations) >= 10, 10, spin=node.spin)
        for step in range(3):
            assert wait_for(lambda: observations[-1].step == step, 5, spin=node.spin)
            o = observations[-1]
            if step:
                labels.publish(RewardLabel(robot_id='arm0', episode_id=o.episode_id,
                                           step=step, reward=-1.0))
            actions.publish(Action(robot_id='arm0', episode_id=o.episode_id, step=step,
                                   action=to_f32([0.1, 0.0, 0.0])))
        assert wait_for(lambda: statuses and statuses[-1].steps == 3, 5, spin=node.spin)
    finally:
        proc.stop()
    stamps, held = read_tick_log(str(ticks)), read_held_ticks(str(ticks))
    assert set(held) <= set(stamps)
    # every tick either applied one of the 3 actions, opened the episode, or held
    assert len(stamps) - len(held) == 1 + 3 and len(held) >= 10
