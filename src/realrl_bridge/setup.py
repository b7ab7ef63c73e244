"""Python package setup of realrl_bridge (ament_python)."""
from setuptools import find_packages, setup

package_name = 'realrl_bridge'

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
    description='Cloud-edge communication plane over Zenoh: mutual TLS, per-site ACL, '
                'paced resumable weight sync, WAN emulation.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'bridge = realrl_bridge.bridge_node:main',
            'bridge_certs = realrl_bridge.certs:main',
            'router = realrl_bridge.router_node:main',
        ],
        'realrl.nodes': [
            'bridge = realrl_bridge.node_config:NODE',
            'router = realrl_bridge.node_config:ROUTER',
        ],
    },
)
