"""SIGTERM (or SIGINT) ends a node with status 0, even while a callback runs.

rclpy's signal handler shuts the ROS context down from its own thread, so a callback that
publishes, or a message being taken, at that moment fails with RCLError ("context is
invalid"). The launcher counted those as crashes (the driver's exit status 1, now and then,
in a run's exit_codes). The first test makes the race certain: a node SIGTERMs itself inside
its timer callback, then publishes. The second stops real drivers mid-stream, three times.
"""
import os
import signal
import subprocess
import sys

from lifecycle_msgs.msg import Transition as LcTransition
from lifecycle_msgs.srv import ChangeState, GetState
from ros_env import Proc, executable, wait_for
from test_driver_node import call

from realrl_common.convert import to_f32
from realrl_common.qos import COMMAND_QOS, SENSOR_QOS
from realrl_interfaces.msg import Action, Observation, RewardLabel

NODE = '''
import os, signal, sys, time
from rclpy.node import Node
from std_msgs.msg import String
from realrl_common.node_main import RCLError, spin_node

class Node_(Node):
    def __init__(self):
        super().__init__('stopped_in_callback')
        self.pub = self.create_publisher(String, 'chatter', 10)
        self.ticks = 0
        self.create_timer(0.01, self.tick)

    def tick(self):
        self.ticks += 1
        if self.ticks == 10:
            if sys.argv[1] == 'broken':  # an rcl failure while ROS is up is still a crash
                raise RCLError('failed for a reason of its own')
            os.kill(os.getpid(), signal.SIGTERM)
            end = time.monotonic() + 20
            while time.monotonic() < end:  # the context goes down during these
                self.pub.publish(String(data='x'))
            print('the context outlived 20 s of publishing', flush=True)

spin_node(Node_, 'stopped_in_callback')
'''


def test_a_signal_during_a_callback_is_a_clean_stop_and_a_real_error_is_not(ros_domain):
    run = lambda mode: subprocess.run([sys.executable, '-c', NODE, mode],  # noqa: E731
                                      capture_output=True, text=True, timeout=60,
                                      env=os.environ.copy())
    stopped = run('signal')
    assert 'the context outlived' not in stopped.stdout  # the race was hit
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    assert 'Traceback' not in stopped.stderr
    broken = run('broken')
    assert broken.returncode == 1 and 'failed for a reason of its own' in broken.stderr


STACKS_NODE = '''
import os, signal
from rclpy.node import Node
from realrl_common.node_main import spin_node

class Node_(Node):
    def __init__(self):
        super().__init__('asked_for_stacks')
        self.ticks = 0
        self.create_timer(0.01, self.tick)

    def tick(self):
        self.ticks += 1
        if self.ticks == 10:
            os.kill(os.getpid(), signal.SIGUSR1)
        if self.ticks == 50:
            print('still ticking', flush=True)
            os.kill(os.getpid(), signal.SIGTERM)

spin_node(Node_, 'asked_for_stacks')
'''


def test_sigusr1_prints_every_threads_stack_and_the_node_goes_on(ros_domain):
    done = subprocess.run([sys.executable, '-c', STACKS_NODE], capture_output=True, text=True,
                          timeout=60, env=os.environ.copy())
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'still ticking' in done.stdout
    assert 'Current thread' in done.stderr and 'in tick' in done.stderr, done.stderr[-3000:]


def lifecycle(node, robot: str, transition_id: int) -> bool:
    """One lifecycle transition of /<robot>/driver (its state asked first: it is up)."""
    get = node.create_client(GetState, f'/{robot}/driver/get_state')
    call(node, get, GetState.Request(), timeout=30.0, attempts=10)
    client = node.create_client(ChangeState, f'/{robot}/driver/change_state')
    req = ChangeState.Request()
    req.transition.id = transition_id
    return call(node, client, req).success


def test_drivers_sigtermed_mid_stream_exit_0(ros_node, tmp_path):
    """Three drivers, started together, each SIGTERMed at another point of its stream."""
    node = ros_node
    robots = ('arm0', 'arm1', 'arm2')
    latest, pubs = {}, {}
    for rid in robots:
        node.create_subscription(Observation, f'/{rid}/observation',
                                 lambda m, r=rid: latest.__setitem__(r, m), SENSOR_QOS)
        pubs[rid] = (node.create_publisher(Action, f'/{rid}/action', COMMAND_QOS),
                     node.create_publisher(RewardLabel, f'/{rid}/reward_label', COMMAND_QOS))
    procs = {rid: Proc([executable('realrl_driver', 'mujoco_arm_driver'), '--ros-args',
                        '-r', f'__ns:=/{rid}', '-p', f'robot_id:={rid}',
                        '-p', 'replay_wait_s:=0.0', '-p', 'control_hz:=50.0',
                        '-p', 'episode_max_steps:=10'], tmp_path / f'{rid}.log')
             for rid in robots}
    try:
        for rid, proc in procs.items():
            for transition in (LcTransition.TRANSITION_CONFIGURE,
                               LcTransition.TRANSITION_ACTIVATE):
                assert lifecycle(node, rid, transition), proc.output()
        answered = {rid: 0 for rid in robots}
        running = list(robots)
        while running:
            node.spin(0.005)
            for rid, obs in list(latest.items()):
                action, label = pubs[rid]
                action.publish(Action(robot_id=rid, episode_id=obs.episode_id, step=obs.step,
                                      action=to_f32([0.2, -0.1, 0.0]), policy_version=1))
                label.publish(RewardLabel(robot_id=rid, episode_id=obs.episode_id,
                                          step=obs.step, reward=-1.0, success=False))
                answered[rid] += 1
                del latest[rid]
            # each one stopped after a different number of answered steps, mid-stream
            if answered[running[0]] >= 5 + 7 * (3 - len(running)):
                procs[running.pop(0)].p.send_signal(signal.SIGTERM)
        for rid, proc in procs.items():
            assert wait_for(lambda: proc.p.poll() is not None, 20), proc.output()
            assert proc.p.returncode == 0, f'{rid}: exit {proc.p.returncode}\n' + proc.output()
            assert 'counters: ' in proc.output()  # close() ran: the robot held
    finally:
        for proc in procs.values():
            proc.stop()
