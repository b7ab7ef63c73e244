"""src/tf2_msgs stands in for the distribution's tf2_msgs (no wheel of it exists): its
TFMessage must have the distribution's type hash, or rviz2 and Foxglove on a machine with
ROS Kilted would not match our /tf. The reference is rosbags' Kilted type store, built from
the distribution's own definitions (not from our files)."""
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize('type_name, share', [
    ('tf2_msgs/msg/TFMessage', ROOT / 'install/tf2_msgs/share/tf2_msgs/msg/TFMessage.json'),
    ('sensor_msgs/msg/JointState', ROOT / '.venv/share/sensor_msgs/msg/JointState.json'),
    ('visualization_msgs/msg/MarkerArray',
     ROOT / '.venv/share/visualization_msgs/msg/MarkerArray.json'),
])
def test_type_hash_matches_the_kilted_distribution(type_name, share):
    from rosbags.typesys import Stores, get_typestore
    if not share.exists():
        pytest.skip(f'{share} not built; run scripts/setup.sh')
    ours = json.loads(share.read_text())['type_hashes'][0]
    assert ours['type_name'] == type_name
    assert ours['hash_string'] == get_typestore(Stores.ROS2_KILTED).hash_rihs01(type_name)
