"""Python package setup of realrl_driver (ament_python)."""
from glob import glob

from setuptools import find_packages, setup

package_name = 'realrl_driver'
MODELS = 'realrl_driver/robots/mujoco_arm/arm_models'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    package_data={package_name: ['robots/mujoco_arm/arm_models/*.xml']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/arm_models', glob(MODELS + '/*.xml')),
    ],
    install_requires=['setuptools'],
    zip_safe=False,
    maintainer='realrl developers',
    maintainer_email='dev@realrl.invalid',
    description='Robot drivers of realrl.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'mujoco_arm_driver = realrl_driver.robots.mujoco_arm.robot:main',
            'mujoco_peg_driver = realrl_driver.robots.mujoco_arm.peg_robot:main',
            'gym_driver = realrl_driver.robots.gym.robot:main',
            'ur_rtde_driver = realrl_driver.robots.ur_rtde.robot:main',
            'ros2_control_driver = realrl_driver.robots.ros2_control.driver_node:main',
            'camera_node = realrl_driver.cameras.node:main',
        ],
        # What realrl finds by itself (realrl_common.plugins): no central list names these.
        'realrl.nodes': [
            'mujoco_arm_driver = realrl_driver.robots.mujoco_arm.config:NODE',
            'mujoco_peg_driver = realrl_driver.robots.mujoco_arm.peg_config:NODE',
            'gym_driver = realrl_driver.robots.gym.config:NODE',
            'ur_rtde_driver = realrl_driver.robots.ur_rtde.config:NODE',
            'ros2_control_driver = realrl_driver.robots.ros2_control.config:NODE',
            'camera_node = realrl_driver.cameras.node_config:NODE',
        ],
        'realrl.robots': [
            'mujoco_arm = realrl_driver.robots.mujoco_arm.config:ROBOT',
            'mujoco_peg = realrl_driver.robots.mujoco_arm.peg_config:ROBOT',
            'gym = realrl_driver.robots.gym.config:ROBOT',
            'ur_rtde = realrl_driver.robots.ur_rtde.config:ROBOT',
            'ros2_control = realrl_driver.robots.ros2_control.config:ROBOT',
        ],
    },
)
