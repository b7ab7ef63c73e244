"""The peg-insertion arm as the driver sees it (no ROS imports but in ``main``)."""
from __future__ import annotations

from realrl_driver.robots.mujoco_arm.peg_config import MujocoPegDriverConfig
from realrl_driver.robots.mujoco_arm.peg_task import PegInsertionSim


class MujocoPegRobot(PegInsertionSim):
    """The simulated peg-insertion arm: a robot that can hold its pose and scores itself."""

    capabilities = ('reset', 'hold', 'estop', 'cameras')
    action_units = 'peg tip displacement (x, y, z) per step, in units of peg.max_ee_step_m'

    def hold(self) -> None:
        self.data.ctrl[:] = self.data.qpos  # position actuators keep the current pose


def make_peg_arm(cfg: MujocoPegDriverConfig) -> MujocoPegRobot:
    """The peg-insertion arm of cfg at the driver's control rate."""
    return MujocoPegRobot(cfg.peg, cfg.control_hz, cfg.seed)


def main(args=None):
    """Runs the driver node of the peg-insertion arm."""
    from realrl_driver.core.driver_node import run_robot  # rclpy only where a node runs
    run_robot('mujoco_peg', args)


if __name__ == '__main__':
    main()
