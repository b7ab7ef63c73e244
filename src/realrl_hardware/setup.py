"""Python package setup of realrl_hardware (ament_python)."""
from setuptools import find_packages, setup

package_name = 'realrl_hardware'

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
    description='The hardware manager: robots discovered, health-checked and leased.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'hardware_manager = realrl_hardware.hardware_manager_node:main',
        ],
        'realrl.nodes': [
            'hardware_manager = realrl_hardware.node_config:NODE',
        ],
    },
)
