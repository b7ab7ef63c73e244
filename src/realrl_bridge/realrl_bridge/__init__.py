"""The cloud-edge communication plane over Zenoh (cores import no rclpy)."""
