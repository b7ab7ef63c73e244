"""Python package setup of realrl_learner (ament_python)."""
from setuptools import find_packages, setup

package_name = 'realrl_learner'

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
    description='The learner of realrl: RL algorithms (SAC, RLPD) on the replay store, '
                'versioned weights out, checkpoints.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'learner_node = realrl_learner.learner_node:main',
        ],
        'realrl.nodes': [
            'learner_node = realrl_learner.node_config:NODE',
        ],
        'realrl.algorithms': [
            'sac = realrl_learner.sac:SAC',
            'rlpd = realrl_learner.algorithms.rlpd:RLPD',
            'bc = realrl_learner.algorithms.bc:BC',
            'hg_dagger = realrl_learner.algorithms.hg_dagger:HGDAgger',
            'sac_flow = realrl_learner.algorithms.sac_flow:SACFlow',
        ],
    },
)
