"""Python package setup of realrl_reward (ament_python)."""
from setuptools import find_packages, setup

package_name = 'realrl_reward'

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
    description='Reward nodes of realrl: label observations with reward and success.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'reward_node = realrl_reward.reward_node:main',
        ],
        'realrl.nodes': [
            'reward_node = realrl_reward.node_config:NODE',
        ],
        'realrl.rewards': [
            'reach = realrl_reward.reach_reward:REWARD',
            'classifier = realrl_reward.classifier_reward:REWARD',
        ],
    },
)
