"""Python package setup of realrl_policy (ament_python)."""
from setuptools import find_packages, setup

package_name = 'realrl_policy'

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
    description='The policy of realrl: observation to action at the control rate, weights '
                'swapped between steps.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'policy_node = realrl_policy.policy_node:main',
        ],
        'realrl.nodes': [
            'policy_node = realrl_policy.node_config:NODE',
        ],
        'realrl.policies': [
            'mlp = realrl_policy.models:GaussianActor',
            'mlp_chunk = realrl_policy.chunk_models:ChunkMLPActor',
            'cnn = realrl_policy.cnn_actor:CNNActor',
            'flow = realrl_policy.actors.flow:FlowActor',
            'vla_tiny = realrl_policy.actors.vla_tiny:VLATiny',
        ],
    },
)
