"""ROS 2 adapter of the learner: trains in its own thread, publishes weights and status.

in:  the replay store on disk (read-only; created by the replay node)
out: /learner/weights (chunked, versioned, CRC-checked, latched, paced to
     weights_max_mbit_s), /learner/status, and with metrics_path the run's TensorBoard
     event files (tensorboard_log.py)
Training runs in a thread so the executor stays free, and in async mode each version is
sent by a thread of its own (``PublishThread``); rclpy publishers are thread-safe.
With ``ranks: N`` torchrun starts N processes of this executable: rank 0 is this node, the
others run ``rank_worker`` (no ROS) and train with it (``realrl_learner.data_parallel``).
"""
from __future__ import annotations

import os
import sys
import threading
import time

from rclpy.node import Node

from realrl_common.node_main import spin_node
from realrl_common.qos import STATUS_QOS, WEIGHTS_QOS
from realrl_common.ros_params import read_config
from realrl_common.weight_msgs import to_msg
from realrl_common.weights import budget, send_blob
from realrl_interfaces.msg import LearnerStatus, WeightChunk
from realrl_learner.data_parallel import leave, ranks_from_env
from realrl_learner.node_config import LearnerNodeConfig
from realrl_learner.publish_thread import PublishThread
from realrl_learner.rank_worker import open_store, run_rank
from realrl_learner.tensorboard_log import TensorBoardLog, tensorboard_dir_for
from realrl_learner.trainer import Trainer, checkpoint_weights


class LearnerNode(Node):
    """Trains on the replay store in a background thread; publishes weights and
    status."""

    def __init__(self):
        super().__init__('learner', automatically_declare_parameters_from_overrides=True)
        self.cfg = read_config(self, LearnerNodeConfig)
        if self.cfg.nice:
            os.nice(self.cfg.nice)
        self.trainer: Trainer | None = None
        self.tensorboard: TensorBoardLog | None = None  # <run>/tensorboard, beside metrics/
        if self.cfg.metrics_path:
            self.tensorboard = TensorBoardLog(
                tensorboard_dir_for(self.cfg.metrics_path),
                os.path.join(os.path.dirname(self.cfg.metrics_path), 'episodes.jsonl'))
        self._weights_pub = self.create_publisher(WeightChunk, '~/weights', WEIGHTS_QOS)
        self._weights_budget = budget(self.cfg.weights_max_mbit_s, self.cfg.chunk_bytes)
        self._status_pub = self.create_publisher(LearnerStatus, '~/status', STATUS_QOS)
        self._stop_training = threading.Event()
        self._ranks = ranks_from_env()
        self._thread = threading.Thread(target=self._run, name='learner', daemon=True)
        self._thread.start()

    def _run(self):
        publisher = PublishThread(self._publish_weights, None)   # sends beside training
        try:
            resumed = checkpoint_weights(self.cfg.checkpoint_dir, self.cfg.algorithm)
            if resumed is not None:     # the policies get it while the store is opened
                publisher.submit_blob(*resumed)
            reader, give_up_at = None, time.monotonic() + 30.0
            while reader is None and not self._stop_training.wait(0.5):
                reader = open_store(self.cfg.store_path, give_up_at)
            if reader is None:
                return
            self.trainer = Trainer(self.cfg, reader, self.cfg.checkpoint_dir,
                                   self.cfg.metrics_path or None, self._ranks)
            if self.trainer.load_latest():
                self.get_logger().info(f'resumed from checkpoint: '
                                       f'{self.trainer.algorithm.updates} updates, version '
                                       f'{self.trainer.version}')
            publisher.space = self.trainer.space.to_json()
            if self._ranks is None:
                self._train(publisher)
            else:
                self._train_ranked(publisher)
        except Exception as e:  # noqa: BLE001 - the thread must report, not vanish
            if self._stop_training.is_set() or not self.context.ok():
                # Shutting down: the signal ended the ROS context while this thread was
                # publishing. close() still saves the final checkpoint; exiting here with an
                # error would lose it.
                return
            self.get_logger().fatal(f'learner stopped: {type(e).__name__}: {e}')
            # A learner without its training thread must not look alive: exit with an
            # error so the launcher's restart policy applies (it resumes from a checkpoint).
            os._exit(1)
        finally:
            publisher.close()

    def _train(self, publisher: PublishThread):
        t = self.trainer
        last_metrics = 0.0
        while not self._stop_training.is_set():
            now = time.monotonic()
            if self.cfg.mode == 'sync':  # the robots wait for a version after an episode
                if t.sync_round(self._stop_training.is_set):
                    self._publish_weights(*t.next_weights(time.monotonic()))
                else:
                    time.sleep(0.02)
            elif not t.step(now):
                time.sleep(0.01)
            if self.cfg.mode == 'async' and t.publish_due(now) and publisher.idle:
                begun = time.monotonic()
                version, blob = t.next_weights(now)
                packed_s = time.monotonic() - begun
                publisher.submit_blob(version, blob)
                if self.tensorboard is not None:   # packing, and sending the one before
                    self.tensorboard.publish_time(packed_s + publisher.last_s)
            if t.checkpoint_due(now):
                t.save_checkpoint(now)
            last_metrics = self._report_metrics(now, last_metrics)

    def _train_ranked(self, publisher: PublishThread):
        """Rank 0 of several: every round together with the other ranks (rank 0 decides);
        weights are packed and sent by ``publisher``, so no rank waits for it."""
        t = self.trainer
        last_metrics = 0.0
        while True:
            now = time.monotonic()
            publish, stop = t.ranked_round(now, self._stop_training.is_set(), publisher.idle)
            if publish:
                publisher.submit(*t.snapshot_weights(now))
                if self.tensorboard is not None:
                    self.tensorboard.publish_time(publisher.last_s)
            if stop:
                return  # the round saved the final checkpoint
            last_metrics = self._report_metrics(now, last_metrics)

    def _report_metrics(self, now: float, last: float) -> float:
        """Metrics line, TensorBoard and status every metrics_every_s; when they last went."""
        if now - last < self.cfg.metrics_every_s:
            return last
        self.trainer.log_metrics()
        if self.tensorboard is not None:
            self.tensorboard.log(self.trainer, now)
        self._publish_status()
        return now

    def _publish_weights(self, version: int, blob: bytes):
        """Send one version's chunks, paced to weights_max_mbit_s (cut short when the node
        stops: its final checkpoint must not wait for a paced version)."""
        send_blob(version, blob, lambda c: self._weights_pub.publish(to_msg(c)),
                  chunk_bytes=self.cfg.chunk_bytes, bucket=self._weights_budget,
                  stop=self._stop_training.is_set)

    def _publish_status(self):
        t, m = self.trainer, self.trainer.last_metrics
        msg = LearnerStatus(updates=t.algorithm.updates, policy_version=t.version,
                            transitions_seen=t.online.count,
                            critic_loss=float(m.get('train/critic_loss', 0.0)),
                            actor_loss=float(m.get('train/actor_loss', 0.0)),
                            alpha=float(m.get('train/alpha', 0.0)))
        msg.header.stamp = self.get_clock().now().to_msg()
        self._status_pub.publish(msg)

    def close(self):
        self._stop_training.set()
        self._thread.join(timeout=10.0)
        if self.trainer is not None:
            if self.trainer.algorithm.updates > 0 and self._ranks is None:  # ranks: saved
                path = self.trainer.save_checkpoint()
                self.get_logger().info(f'final checkpoint {path}')
            self.trainer.close()
        leave()
        if self.tensorboard is not None:
            self.tensorboard.close()


def main(args=None):
    """Runs the learner node (on rank 0 of several: the others train without ROS)."""
    ranks = ranks_from_env()
    if ranks is not None and not ranks.leader:
        sys.exit(run_rank(sys.argv[1:] if args is None else args, ranks))
    spin_node(LearnerNode, 'learner', args)


if __name__ == '__main__':
    main()
