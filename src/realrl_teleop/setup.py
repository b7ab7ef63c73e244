"""Python package setup of realrl_teleop (ament_python)."""
from setuptools import find_packages, setup

package_name = 'realrl_teleop'

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
    description='Teleop of realrl: keyboard, gamepad and SpaceMouse interventions.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'teleop_node = realrl_teleop.teleop_node:main',
        ],
        'realrl.nodes': [
            'teleop_node = realrl_teleop.node_config:NODE',
        ],
    },
)
