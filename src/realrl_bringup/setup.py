"""Python package setup of realrl_bringup (ament_python)."""
from setuptools import find_packages, setup

package_name = 'realrl_bringup'

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
    description='Starting realrl graphs: the realrl command, graph descriptions, launch files.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'realrl = realrl_bringup.cli:main',
            'record_node = realrl_bringup.recording.record_node:main',
        ],
        'realrl.nodes': [
            'record_node = realrl_bringup.recording.record_config:NODE',
        ],
    },
)
