"""Python package setup of realrl_sim_peers (ament_python)."""
from setuptools import find_packages, setup

package_name = 'realrl_sim_peers'

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
    description='Simulated controllers to try a realrl set-up against: a mock ros2_control '
                'controller manager and a UR controller speaking RTDE.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'ros2_control_peer = realrl_sim_peers.ros2_control_peer:main',
            'ur_rtde_peer = realrl_sim_peers.ur_rtde_wire:main',
        ],
        'realrl.nodes': [
            'ros2_control_peer = realrl_sim_peers.ros2_control_peer:NODE',
        ],
    },
)
