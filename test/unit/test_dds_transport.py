"""`realrl train` gives its graph Fast DDS's LARGE_DATA transports unless the user chose."""
from realrl_bringup.dds_transport import BUILTIN_TRANSPORTS, LARGE_DATA, graph_env


def test_the_graph_gets_large_data_transports_and_a_users_choice_wins():
    base = {'PATH': '/bin', 'ROS_DOMAIN_ID': '7'}
    env = graph_env(base)
    assert env == {**base, BUILTIN_TRANSPORTS: LARGE_DATA}
    assert BUILTIN_TRANSPORTS not in base                  # the caller's mapping is untouched
    assert graph_env({**base, BUILTIN_TRANSPORTS: 'DEFAULT'})[BUILTIN_TRANSPORTS] == 'DEFAULT'
    assert graph_env({**base, BUILTIN_TRANSPORTS: ''})[BUILTIN_TRANSPORTS] == LARGE_DATA
