"""The learner's weights reach a policy node at an edge site across a real Zenoh link.

Two DDS domains (the cloud's and the site's), a TLS router with the sites' ACL, a cloud and
an edge bridge process with ``weights`` on, and a real policy node on the site's domain.
This process plays the learner on the cloud's domain: it publishes real actor blobs as
WeightChunk messages, and reads the edge policy's latched PolicyVersion. A version that is
not a whole actor blob (its chunks' CRC is right: it was cut short before chunking) is
refused by the cloud bridge with an error naming it, and the policy keeps the version it
has; the next good version arrives.
"""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import pytest
import yaml
from ros_env import Proc, executable, next_domain_id, wait_for

from realrl_common.qos import LATCHED_QOS, WEIGHTS_QOS
from realrl_common.weight_msgs import to_msg
from realrl_common.weights import chunk_blob
from realrl_interfaces.msg import PolicyVersion, WeightChunk

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'unit' / 'bridge'))
from _zenoh_fixtures import tls_router  # noqa: E402

from realrl_bridge import certs, link  # noqa: E402

TOPICS = {'status': {'type': 'realrl_interfaces/msg/DriverStatus', 'direction': 'up',
                     'congestion': 'drop', 'qos': 'status'}}


def bridge_params(path: Path, side: str, folder, name: str, endpoint: str) -> Path:
    files = folder.site(name)
    path.write_text(yaml.safe_dump({'bridge': {'ros__parameters': {
        'side': side, 'connect': endpoint, 'robot_ids': ['arm0'],
        'tls': {'ca': str(folder.ca.cert), 'cert': str(files.cert), 'key': str(files.key)},
        'topics': TOPICS, 'weights': {'topic': '/learner/weights', 'chunk_bytes': 4096,
                                      'site_mbit_s': 8}}}}))     # the edge's chunks paced
    return path


def actor_blob(seed: int) -> bytes:
    import torch

    from realrl_policy.models import ActorConfig, build_actor
    from realrl_policy.weights_blob import pack_actor
    torch.manual_seed(seed)
    return pack_actor(build_actor(ActorConfig(hidden_sizes=(16, 16)), 3, 2))


@pytest.mark.ros
def test_learner_weights_reach_the_edge_policy_and_a_cut_blob_is_refused(tmp_path):
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    cloud_domain, site_domain = next_domain_id(), next_domain_id()
    folder = certs.make_folder(tmp_path / 'certs', ['lab_a', 'cloud'])
    router = contextlib.ExitStack()  # closed last, in the finally
    _, endpoint = router.enter_context(tls_router(
        folder, sites=(link.Site('lab_a', ('arm0',)),), cloud_names=('cloud',)))
    procs, context, site_context = [], None, None
    try:
        env = {**os.environ, 'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'}
        bridge = executable('realrl_bridge', 'bridge')
        for side, name, domain in (('cloud', 'cloud', cloud_domain),
                                   ('edge', 'lab_a', site_domain)):
            params = bridge_params(tmp_path / f'{side}.yaml', side, folder, name, endpoint)
            procs.append(Proc([bridge, '--ros-args', '--params-file', str(params)],
                              tmp_path / f'{side}.log', env={**env,
                                                             'ROS_DOMAIN_ID': str(domain)}))
        policy_params = tmp_path / 'policy.yaml'
        policy_params.write_text(yaml.safe_dump({'policy': {'ros__parameters': {
            'robot_ids': ['arm0']}}}))
        procs.append(Proc([executable('realrl_policy', 'policy_node'), '--ros-args',
                           '--params-file', str(policy_params)], tmp_path / 'policy.log',
                          env={**env, 'ROS_DOMAIN_ID': str(site_domain)}))
        cloud_bridge = procs[0]

        # this process: the learner on the cloud's domain, an observer on the site's
        context = rclpy.Context()
        rclpy.init(context=context, domain_id=cloud_domain)
        learner = rclpy.create_node('learner', context=context)
        site_context = rclpy.Context()
        rclpy.init(context=site_context, domain_id=site_domain)
        observer = rclpy.create_node('observer', context=site_context)
        versions = []
        observer.create_subscription(PolicyVersion, '/policy/version',
                                     lambda m: versions.append(m.version), LATCHED_QOS)
        pub = learner.create_publisher(WeightChunk, '/learner/weights', WEIGHTS_QOS)

        def publish(version: int, blob: bytes) -> None:
            for c in chunk_blob(version, blob, 1024):   # several chunks per version
                pub.publish(to_msg(c))

        executor = SingleThreadedExecutor(context=site_context)
        executor.add_node(observer)

        def spin(step):
            executor.spin_once(timeout_sec=step)

        def logs() -> str:
            return ''.join(p.output()[-3000:] for p in procs)

        good = actor_blob(1)
        assert len(good) > 1024
        publish(1, good)
        assert wait_for(lambda: versions and versions[-1] == 1, 60, step=0.2, spin=spin), logs()

        cut = actor_blob(2)[:-600]         # the blob cut short; its chunks' CRC fits the cut
        publish(2, cut)
        assert wait_for(lambda: 'weights v2 refused' in cloud_bridge.output(), 30, step=0.2,
                        spin=spin), logs()
        assert 'not a whole .npz archive' in cloud_bridge.output()
        publish(3, actor_blob(3))
        assert wait_for(lambda: versions and versions[-1] == 3, 60, step=0.2, spin=spin), logs()
        assert 2 not in versions           # the cut version was never applied
        assert 'refused weights' not in procs[2].output()   # the policy got only whole blobs
        for p in procs:
            assert p.p.poll() is None, logs()
    finally:
        for ctx in (context, site_context):
            if ctx is not None:
                rclpy.try_shutdown(context=ctx)
        codes = [p.stop(timeout=15) for p in procs]   # a bridge joins its Zenoh threads first
        router.close()
    assert all(c in (0, -2) for c in codes), [(c, p.output()[-6000:]) for c, p in
                                              zip(codes, procs) if c not in (0, -2)]
