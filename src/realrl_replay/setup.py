"""Python package setup of realrl_replay (ament_python)."""
from setuptools import find_packages, setup

package_name = 'realrl_replay'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='realrl developers',
    maintainer_email='dev@realrl.invalid',
    description='The replay node of realrl: single writer of the durable Zarr replay store.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'replay_node = realrl_replay.replay_node:main',
        ],
        'realrl.nodes': [
            'replay_node = realrl_replay.node_config:NODE',
        ],
    },
)
