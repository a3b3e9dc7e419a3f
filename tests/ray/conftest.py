import pytest

from harness.ray_cluster import two_node_cluster, wait_for_nodes


@pytest.fixture(scope="module")
def cluster():
    """A two-node cluster of its own for each test module (one kills a node)."""
    with two_node_cluster() as started:
        wait_for_nodes(started, 2)
        yield started
