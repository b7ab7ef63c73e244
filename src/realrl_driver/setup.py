from glob import glob

from setuptools import find_packages, setup

package_name = 'realrl_driver'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    package_data={package_name: ['arm_models/*.xml']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/arm_models', glob('realrl_driver/arm_models/*.xml')),
    ],
    install_requires=['setuptools'],
    zip_safe=False,
    maintainer='realrl developers',
    maintainer_email='dev@realrl.invalid',
    description='Robot drivers of realrl.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'mujoco_arm_driver = realrl_driver.mujoco_arm_driver:main',
            'gym_driver = realrl_driver.gym_driver:main',
            'camera_node = realrl_driver.camera_node:main',
            'ur_rtde_driver = realrl_driver.ur_rtde_driver:main',
            'ros2_control_driver = realrl_driver.ros2_control_driver:main',
            'ros2_control_peer = realrl_driver.ros2_control_peer:main',
        ],
    },
)
