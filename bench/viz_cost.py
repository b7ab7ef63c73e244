"""What the drivers' visualization topics cost the control tick, through DDS.

One process plays a driver's tick: the Panda-like arm (7 joints) steps in MuJoCo and renders
its front camera (96x128), then ``VizPublisher.maybe_publish`` sends JointState, /tf (every
link), the markers and the image, with a subscriber to all four in another process (rviz2's
part). The publish is forced due on every tick here; in a driver it runs at ``viz_hz``
(10 Hz by default), so with a 20 Hz clock every other tick pays it.

Figure: median and p99 of the publish time per tick. Baseline, measured in the same loop at
the same time: the tick's own work (step + render), which a driver pays every tick anyway.

Left out: the DriverNode's other messages (observation, transition), the executor, the
subscriber's cost (its own process), and the other helpers' load on this machine, which is
whatever it is, the same for the figure and its baseline.
"""
import os
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
from _util import bench_env, emit, parse, percentile, start_process, stop_process

SUBSCRIBER = textwrap.dedent('''
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from sensor_msgs.msg import Image, JointState
    from tf2_msgs.msg import TFMessage
    from visualization_msgs.msg import MarkerArray
    from realrl_driver.viz.publisher import TF_QOS, VIZ_QOS
    rclpy.init()
    node = rclpy.create_node('viz_listener')
    for cls, topic, qos in ((JointState, '/arm0/joint_states', VIZ_QOS),
                            (TFMessage, '/tf', TF_QOS),
                            (MarkerArray, '/arm0/viz/markers', VIZ_QOS),
                            (Image, '/arm0/camera/front/image_raw', VIZ_QOS)):
        node.create_subscription(cls, topic, lambda m: None, qos)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
''')


def main():
    args = parse(__doc__)
    ticks = 100 if args.quick else 600
    env = bench_env(205)
    os.environ.update(env)
    import rclpy

    from realrl_driver.robots.mujoco_arm.sim import ArmSimConfig, MujocoArmSim
    from realrl_driver.viz.publisher import VizPublisher

    log = Path('/tmp') / f'viz_cost_listener_{os.getpid()}.log'
    listener = start_process([sys.executable, '-c', SUBSCRIBER], env, log)
    rclpy.init()
    node = rclpy.create_node('driver', namespace='arm0')
    sim = MujocoArmSim(ArmSimConfig(model='panda7', control_hz=20.0), seed=0)
    sim.reset()
    viz = VizPublisher(node, 'arm0', 1e6, ('front',))  # due on every tick
    try:
        deadline = time.monotonic() + 60
        while node.count_subscribers('/arm0/joint_states') == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        rng = np.random.default_rng(0)
        work, publish = [], []
        for i in range(ticks + 20):
            t0 = time.perf_counter()
            sim.apply(rng.uniform(-1, 1, sim.action_dim))
            frame = sim.render('front', 128, 96)
            t1 = time.perf_counter()
            viz.maybe_publish(time.monotonic() + i, sim, {'front': frame},
                              node.get_clock().now().to_msg())
            t2 = time.perf_counter()
            if i >= 20:  # after warm-up
                work.append(t1 - t0)
                publish.append(t2 - t1)
            time.sleep(0.02)
    finally:
        viz.destroy()
        node.destroy_node()
        rclpy.try_shutdown()
        stop_process(listener)
    result = {
        'ticks': ticks,
        'viz_publish_ms_p50': round(1e3 * float(np.median(publish)), 3),
        'viz_publish_ms_p99': round(1e3 * percentile(publish, 99), 3),
        'tick_work_ms_p50': round(1e3 * float(np.median(work)), 3),
        'tick_work_ms_p99': round(1e3 * percentile(work, 99), 3),
    }
    result['publish_over_work_p50'] = round(result['viz_publish_ms_p50']
                                            / result['tick_work_ms_p50'], 3)
    print(f"viz publish per tick: median {result['viz_publish_ms_p50']} ms, p99 "
          f"{result['viz_publish_ms_p99']} ms; the tick's own step + render: median "
          f"{result['tick_work_ms_p50']} ms (ratio {result['publish_over_work_p50']})")
    emit(result)


if __name__ == '__main__':
    main()
