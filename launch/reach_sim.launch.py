"""ros2 launch form of the simulated training demo (config/reach_sim.yaml).

    ros2 launch launch/reach_sim.launch.py run_dir:=runs/my_run [config:=config/other.yaml]

The graph and every parameter come from the same YAML file that `realrl train` reads,
through the same validator. Lifecycle nodes are configured, then activated, once
started. `realrl train` adds what ros2 launch has no notion of: stopping at success,
progress, the learning curve and resuming.
"""
from pathlib import Path

from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition

from launch import LaunchDescription
from realrl_bringup.graph import load_graph

ROOT = Path(__file__).resolve().parent.parent


def _transition(node, transition_id):
    return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node),
                                       transition_id=transition_id))


def _graph_actions(context):
    run_dir = Path(LaunchConfiguration('run_dir').perform(context)).resolve()
    graph = load_graph(LaunchConfiguration('config').perform(context), {'run_dir': str(run_dir)})
    actions = []
    for spec in graph.nodes:
        common = dict(package=spec.package, executable=spec.executable, name=spec.name,
                      namespace=spec.namespace or '', parameters=[spec.parameters],
                      output='screen', respawn=spec.restart == 'on_failure')
        if not spec.lifecycle:
            actions.append(Node(**common))
            continue
        node = LifecycleNode(**common)
        actions += [
            node,
            RegisterEventHandler(OnStateTransition(
                target_lifecycle_node=node, goal_state='inactive',
                entities=[_transition(node, Transition.TRANSITION_ACTIVATE)])),
            _transition(node, Transition.TRANSITION_CONFIGURE),
        ]
    return actions


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument('config', default_value=str(ROOT / 'config' / 'reach_sim.yaml'),
                              description='graph description (YAML)'),
        DeclareLaunchArgument('run_dir', default_value=str(ROOT / 'runs' / 'launch'),
                              description='run folder: replay store, checkpoints, metrics'),
        OpaqueFunction(function=_graph_actions),
    ])
